import { write, writeSync } from "node:fs";

/** Where pino writes the server's JSON log lines (pino takes any object with write()). */
export interface LogDestination {
  write(line: string): void;
  /** Resolves once every line so far is written, or after timeoutMs, or at once when logging stopped. */
  flush(timeoutMs: number): Promise<void>;
}

/** Most bytes queued while the reader is slow; past it new lines are dropped, and counted. */
const MAX_QUEUED_BYTES = 16 << 20;
/** How long to wait before writing again to a full non-blocking pipe (EAGAIN). */
const RETRY_MS = 10;

/**
 * Log lines to a file descriptor (stdout) that never block the event loop and never
 * hold the process at exit. pino's own destination (sonic-boom 4.2) flushes
 * synchronously on exit and retries every write error but EAGAIN forever, 100 ms
 * apart, inside Atomics.wait: a server whose stdout reader was gone (EPIPE) was seen
 * stuck there for 17 minutes after its shutdown. Here writes are asynchronous and
 * batched; any error but EAGAIN (EPIPE: the reader is gone) stops logging for good;
 * a slow reader makes lines queue up to MAX_QUEUED_BYTES, then drop. At exit, lines
 * still queued are written synchronously once, only when no write is pending (a
 * pending one means the reader is slow: a synchronous write could block for ever),
 * and dropped at the first error; a clean shutdown awaits flush() first.
 */
export function createLogDestination(fd: number): LogDestination {
  let queue: Buffer[] = [];
  let queued = 0;
  let writing = false;
  let broken = false;
  let dropped = 0;
  let flushed: Array<() => void> = [];

  const idle = (): boolean => broken || (!writing && queued === 0);
  const settle = (): void => {
    if (!idle()) return;
    process.off("exit", flushAtExit);
    flushed.forEach((resolve) => resolve());
    flushed = [];
  };
  const stop = (): void => {
    broken = true;
    queue = [];
    queued = 0;
    settle();
  };
  const take = (): Buffer => {
    const chunk = queue.length === 1 ? queue[0]! : Buffer.concat(queue, queued);
    queue = [];
    queued = 0;
    return chunk;
  };
  const requeue = (rest: Buffer): void => {
    queue.unshift(rest);
    queued += rest.length;
  };

  function next(): void {
    if (broken || writing) return;
    if (queued === 0) return settle();
    const chunk = take();
    writing = true;
    write(fd, chunk, 0, chunk.length, null, (error, written) => {
      writing = false;
      if (error) {
        if (error.code !== "EAGAIN") return stop();
        requeue(chunk);
        setTimeout(next, RETRY_MS).unref();
        return;
      }
      if (written < chunk.length) requeue(chunk.subarray(written));
      else if (dropped > 0) {
        const note = { level: 40, time: Date.now(), msg: `${dropped} log lines were dropped: the log reader was too slow` };
        dropped = 0;
        requeue(Buffer.from(`${JSON.stringify(note)}\n`));
      }
      next();
    });
  }

  function flushAtExit(): void {
    if (broken || writing || queued === 0) return;
    try {
      let chunk = take();
      while (chunk.length > 0) chunk = chunk.subarray(writeSync(fd, chunk));
    } catch {
      // EPIPE, EAGAIN: nobody reads, or not now; the process is leaving either way.
    }
  }

  return {
    write(line) {
      if (broken) return;
      if (queued > MAX_QUEUED_BYTES) {
        dropped++;
        return;
      }
      const bytes = Buffer.from(line);
      if (queued === 0 && !writing) process.on("exit", flushAtExit);
      queue.push(bytes);
      queued += bytes.length;
      next();
    },
    flush(timeoutMs) {
      if (idle()) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        flushed.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
