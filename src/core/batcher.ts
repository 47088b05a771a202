import { InferenceError } from "./errors.js";
import type { GraphTensorInfo } from "./served-model.js";
import { type Tensor, type TensorData, allocateTensorData, elementCount } from "./tensor.js";

/** Per-model batching and queueing settings. */
export interface BatcherOptions {
  /** Most rows (dim 0) one merged run may hold. Default 32. */
  maxBatchSize: number;
  /**
   * Longest a request waits for others to join its batch, in ms, and only while
   * another batch of the model is running: an idle model runs a lone request at once.
   */
  maxBatchDelayMs: number;
  /** Requests that may wait per model; past it, requests fail at once as overloaded. */
  maxQueue: number;
  /** Batches of the model that may run at once (the number of workers). */
  concurrency: number;
}

export const DEFAULT_BATCHER_OPTIONS: Omit<BatcherOptions, "concurrency"> = { maxBatchSize: 32, maxBatchDelayMs: 1, maxQueue: 1024 };

/** What the batcher needs to know of a request. */
export interface BatchRequest {
  inputs: Record<string, Tensor>;
  /** Requests with different keys (e.g. other params) never share a batch. */
  key: string;
  /** Epoch ms after which the request is dropped unrun (deadline exceeded). */
  deadline?: number;
  /** Aborted when the client goes away; the request is dropped unrun (cancelled). */
  signal?: AbortSignal;
}

/** Counters for tests and metrics. */
export interface BatchStats {
  batches: number;
  requests: number;
  largestBatchRows: number;
}

export interface Batcher {
  submit(request: BatchRequest): Promise<Record<string, Tensor>>;
  /** Resolves once every request submitted so far has been answered (before the model's sessions go). */
  drain(): Promise<void>;
  readonly stats: BatchStats;
}

interface Pending extends BatchRequest {
  rows: number;
  shapeKey: string;
  /** Date.now() when it joined the queue. */
  queuedAt: number;
  resolve(outputs: Record<string, Tensor>): void;
  reject(error: unknown): void;
  cleanup(): void;
}

/** Whether every input and output has a free dim 0 that batching can merge along. */
export function canBatch(inputs: readonly GraphTensorInfo[], outputs: readonly GraphTensorInfo[]): boolean {
  return [...inputs, ...outputs].every((t) => t.shape.length >= 1 && t.shape[0] === -1);
}

/** setTimeout fires at once for longer delays: a deadline further away gets no timer. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Concatenates tensors of equal dtype and trailing shape along dim 0. */
function concat(parts: Tensor[]): Tensor {
  if (parts.length === 1) return parts[0]!;
  const first = parts[0]!;
  const rows = parts.reduce((n, t) => n + t.shape[0]!, 0);
  const shape = [rows, ...first.shape.slice(1)];
  if (first.dtype === "string") return { dtype: "string", shape, data: parts.flatMap((t) => t.data as string[]) };
  const data = allocateTensorData(first.dtype, elementCount(shape)) as Exclude<TensorData, string[]>;
  let at = 0;
  for (const t of parts) {
    (data as Uint8Array).set(t.data as Uint8Array, at); // same typed-array kind throughout
    at += t.data.length;
  }
  return { dtype: first.dtype, shape, data };
}

/** Rows [start, start + count) of a tensor, sharing its buffer. */
function sliceRows(t: Tensor, start: number, count: number): Tensor {
  const width = elementCount(t.shape.slice(1));
  const shape = [count, ...t.shape.slice(1)];
  const data = Array.isArray(t.data)
    ? t.data.slice(start * width, (start + count) * width)
    : (t.data as Uint8Array).subarray(start * width, (start + count) * width);
  return { dtype: t.dtype, shape, data: data as TensorData };
}

/**
 * A dynamic batcher for one model. Requests queue (bounded); whenever fewer than
 * `concurrency` batches run, the oldest request leaves with the requests behind it
 * that have the same key and trailing shapes, up to maxBatchSize rows, merged along
 * dim 0 into one run whose outputs are split back to each caller. Unbatchable models
 * get the same queue, one request per run.
 */
/** What the batcher reports (metrics). */
export interface BatchObserver {
  batch(requests: number, rows: number, seconds: number): void;
  queue(depth: number): void;
  /** Batches of the model running now (a run started or ended). */
  running(count: number): void;
}

export function createBatcher(
  model: string,
  batchable: boolean,
  run: (inputs: Record<string, Tensor>) => Promise<Record<string, Tensor>>,
  options: BatcherOptions,
  observer: BatchObserver = { batch() {}, queue() {}, running() {} },
): Batcher {
  const queue: Pending[] = [];
  const stats: BatchStats = { batches: 0, requests: 0, largestBatchRows: 0 };
  let running = 0;
  let timer: NodeJS.Timeout | undefined;
  let drained: Array<() => void> = [];
  const idle = () => running === 0 && queue.length === 0;
  const notifyIdle = () => {
    if (!idle()) return;
    drained.forEach((resolve) => resolve());
    drained = [];
  };

  function drop(p: Pending, error: InferenceError): void {
    const at = queue.indexOf(p);
    if (at < 0) return;
    queue.splice(at, 1);
    observer.queue(queue.length);
    p.cleanup();
    p.reject(error);
    notifyIdle();
  }

  function take(): Pending[] {
    const first = queue.shift()!;
    const batch = [first];
    if (!batchable) return batch;
    let rows = first.rows;
    for (let i = 0; i < queue.length && rows < options.maxBatchSize; ) {
      const p = queue[i]!;
      if (p.key === first.key && p.shapeKey === first.shapeKey && rows + p.rows <= options.maxBatchSize) {
        batch.push(p);
        rows += p.rows;
        queue.splice(i, 1);
      } else i++;
    }
    return batch;
  }

  function schedule(): void {
    while (running < options.concurrency && queue.length > 0) {
      // Wait a little for company only while the model is busy anyway.
      const waited = Date.now() - queue[0]!.queuedAt;
      const full = queue.reduce((n, p) => n + p.rows, 0) >= options.maxBatchSize;
      if (batchable && running > 0 && !full && waited < options.maxBatchDelayMs) {
        timer ??= setTimeout(() => {
          timer = undefined;
          schedule();
        }, options.maxBatchDelayMs - waited);
        return;
      }
      void dispatch(take());
    }
  }

  async function dispatch(batch: Pending[]): Promise<void> {
    running++;
    observer.running(running);
    batch.forEach((p) => p.cleanup());
    const rows = batch.reduce((n, p) => n + p.rows, 0);
    stats.batches++;
    stats.requests += batch.length;
    stats.largestBatchRows = Math.max(stats.largestBatchRows, rows);
    observer.queue(queue.length);
    const started = performance.now();
    try {
      const names = Object.keys(batch[0]!.inputs);
      const inputs = Object.fromEntries(names.map((n) => [n, concat(batch.map((p) => p.inputs[n]!))]));
      const outputs = await run(inputs);
      observer.batch(batch.length, rows, (performance.now() - started) / 1000);
      if (batch.length === 1) {
        batch[0]!.resolve(outputs);
      } else {
        if (Object.values(outputs).some((t) => t.shape[0] !== rows)) {
          throw new InferenceError("internal", `model "${model}" answered a batch of ${rows} rows with outputs of another length`);
        }
        let start = 0;
        for (const p of batch) {
          p.resolve(Object.fromEntries(Object.entries(outputs).map(([n, t]) => [n, sliceRows(t, start, p.rows)])));
          start += p.rows;
        }
      }
    } catch (error) {
      // A failed run fails every request in it; none is left waiting.
      for (const p of batch) p.reject(error);
    } finally {
      running--;
      observer.running(running);
      schedule();
      notifyIdle();
    }
  }

  return {
    stats,
    drain: () => (idle() ? Promise.resolve() : new Promise<void>((resolve) => drained.push(resolve))),
    submit(request) {
      if (queue.length >= options.maxQueue) {
        return Promise.reject(new InferenceError("overloaded", `model "${model}" is overloaded: ${queue.length} requests are waiting; retry later`));
      }
      return new Promise((resolve, reject) => {
        const inputs = Object.values(request.inputs);
        const rows = inputs[0]?.shape[0] ?? 1;
        // Inputs whose dim 0 differ cannot be merged with anything: a key of their own.
        const uniform = inputs.every((t) => t.shape.length > 0 && t.shape[0] === rows);
        const shapeKey = uniform
          ? Object.entries(request.inputs)
              .map(([n, t]) => `${n}:${t.dtype}:${t.shape.slice(1).join("x")}`)
              .join("|")
          : `unbatchable-${Math.random()}`;
        let deadlineTimer: NodeJS.Timeout | undefined;
        let left = false; // dispatched or dropped
        let watched = false; // deadline timer and abort listener set
        const expired = () => new InferenceError("deadline", `the request's deadline passed before model "${model}" could run it`);
        // Connect aborts the call's signal at its deadline too: tell the two apart by the clock.
        const onAbort = () =>
          drop(pending, request.deadline !== undefined && Date.now() >= request.deadline - 10 ? expired() : new InferenceError("cancelled", "the client cancelled the request"));
        const pending: Pending = {
          ...request,
          rows,
          shapeKey,
          queuedAt: Date.now(),
          resolve,
          reject,
          cleanup: () => {
            left = true;
            if (!watched) return;
            clearTimeout(deadlineTimer);
            request.signal?.removeEventListener("abort", onAbort);
          },
        };
        if (request.deadline !== undefined && request.deadline <= Date.now()) return reject(expired());
        if (request.signal?.aborted) return reject(new InferenceError("cancelled", "the client cancelled the request"));
        queue.push(pending);
        observer.queue(queue.length);
        schedule();
        // Only a request left waiting needs watching (an idle model ran it just now).
        if (left) return;
        watched = true;
        if (request.deadline !== undefined && request.deadline - Date.now() <= MAX_TIMER_MS) deadlineTimer = setTimeout(() => drop(pending, expired()), request.deadline - Date.now());
        request.signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
  };
}
