import { modelValue } from "./metrics.js";

/**
 * Resolves once `condition` holds: synchronising on state the server exposes (a
 * metric, a counter, a status) instead of sleeping for a guessed time. The condition is
 * checked again every few milliseconds (each check of an async condition is a round
 * trip anyway). It rejects, naming what it waited for, after `timeoutMs`, or as soon as
 * one of the `calls` settles first (then the state it waits for may never come: a
 * call that should have waited answered).
 */
export async function until(what: string, condition: () => boolean | Promise<boolean>, options: { timeoutMs?: number; calls?: Array<Promise<unknown>> } = {}): Promise<void> {
  const giveUp = Date.now() + (options.timeoutMs ?? 30_000);
  let early: unknown;
  for (const call of options.calls ?? []) {
    call.then(
      (value) => (early ??= { answered: value }),
      (error: unknown) => (early ??= { failed: String(error) }),
    );
  }
  for (;;) {
    const holds = await condition();
    // Checked first: a call that settled may have brought the state about (e.g. a queue
    // emptied because the run it waited for ended), which is not what is waited for.
    if (early !== undefined) throw new Error(`a call settled before ${what}: ${JSON.stringify(early, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`);
    if (holds) return;
    if (Date.now() > giveUp) throw new Error(`gave up after ${options.timeoutMs ?? 30_000} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Whether a promise has settled by now (after the microtasks already queued). */
export async function settled(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol("pending");
  const result = await Promise.race([promise.then(() => true, () => true), new Promise((resolve) => setImmediate(() => resolve(marker)))]);
  return result !== marker;
}

/**
 * Resolves once a model has `running` runs on a worker and `queued` requests waiting,
 * as its public gauges (mlflow_connect_runs_in_progress, mlflow_connect_queue_depth)
 * say; fails early when one of `calls` settles first.
 */
export function untilModel(baseUrl: string, model: string, state: { running?: number; queued?: number }, calls: Array<Promise<unknown>> = []): Promise<void> {
  const what = `model "${model}" has ${state.running ?? "any number of"} runs in progress and ${state.queued ?? "any number of"} requests queued`;
  return until(
    what,
    async () =>
      (state.running === undefined || (await modelValue(baseUrl, "mlflow_connect_runs_in_progress", model)) === state.running) &&
      (state.queued === undefined || (await modelValue(baseUrl, "mlflow_connect_queue_depth", model)) === state.queued),
    { calls },
  );
}
