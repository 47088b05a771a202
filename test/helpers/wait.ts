/**
 * Resolves once `condition` holds: synchronising on state the server exposes (a
 * metric, a counter, a status) instead of sleeping for a guessed time. The condition is
 * checked again every few milliseconds (each check of an async condition is a round
 * trip anyway); after `timeoutMs` it rejects, naming what it waited for, so a server
 * that never gets there fails the test instead of hanging it.
 */
export async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const giveUp = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > giveUp) throw new Error(`gave up after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Whether a promise has settled by now (after the microtasks already queued). */
export async function settled(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol("pending");
  const result = await Promise.race([promise.then(() => true, () => true), new Promise((resolve) => setImmediate(() => resolve(marker)))]);
  return result !== marker;
}
