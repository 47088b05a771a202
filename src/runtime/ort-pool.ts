import { Worker } from "node:worker_threads";
import type { LoadedGraph, SessionSettings, WireTensor, WorkerRequest, WorkerResponse } from "./messages.js";
import { workerUrl } from "../locations.js";
import { transferListOf } from "./transfer.js";

/** Options of the onnxruntime worker pool. */
export interface OrtPoolOptions {
  /** Number of worker threads; each holds one session per loaded model. */
  workers: number;
  /** Session settings applied to every model. */
  settings: SessionSettings;
}

/** Raised by the pool for anything that went wrong in onnxruntime or a worker. */
export class RuntimeFailure extends Error {
  override name = "RuntimeFailure";
}

/** A pool of worker threads running onnxruntime sessions. */
export interface OrtPool {
  /** Number of workers. */
  readonly size: number;
  /** Loads a model into every worker, with its own session settings over the pool's; resolves with the graph's inputs and outputs. */
  load(modelId: string, onnxPath: string, settings?: Partial<SessionSettings>): Promise<LoadedGraph>;
  /** Releases a model's sessions in every worker. */
  unload(modelId: string): Promise<void>;
  /**
   * Runs a model once on every worker, each with its own copy of the inputs: a
   * session's first run allocates and plans (~1 ms here against ~0.1 ms later), so
   * warming up keeps that off the first requests.
   */
  warmUp(modelId: string, inputs: Record<string, WireTensor>): Promise<void>;
  /** Runs a model once on the least busy worker. Input buffers are transferred: callers must not reuse them. */
  run(modelId: string, inputs: Record<string, WireTensor>): Promise<Record<string, WireTensor>>;
  /** Stops all workers; pending calls are rejected. */
  close(): Promise<void>;
  /** The worker threads now running. */
  workers(): readonly Worker[];
  /**
   * Makes worker `index` exit at once, as a crash would, for tests and failure drills
   * (terminate() from outside aborts the process when it hits a native run).
   */
  simulateCrash(index: number): void;
}

interface Pending {
  resolve(response: WorkerResponse & { ok: true }): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  startedAt: number;
  /** Exited; a replacement is on its way. */
  dead: boolean;
}

/** A worker that dies sooner than this after starting counts as crash-looping. */
const QUICK_EXIT_MS = 5_000;
/** How long close() waits for a worker's runs before terminating it anyway. */
const CLOSE_TIMEOUT_MS = 60_000;
/** Longest wait before replacing a crash-looping worker. */
const MAX_RESPAWN_DELAY_MS = 30_000;

/**
 * Creates the pool. A small pool of our own rather than piscina: a model must be
 * loaded into every worker (piscina has no broadcast), a crashed worker must be
 * replaced with the models it held, and runs are sent to workers as they come instead
 * of waiting in the main thread. Measured here (MLP, 2 workers, 2026-11-28): the same
 * round trip as piscina 5.3 at one run at a time (~155-195 us) and batch-32 rows/s,
 * 1.4-1.6x its batch-1 runs/s with 64 runs in flight.
 */
export function createOrtPool(options: OrtPoolOptions): OrtPool {
  let nextId = 1;
  let closing = false;
  const loaded = new Map<string, { onnxPath: string; settings: SessionSettings }>(); // replayed into replacement workers
  const slots: Slot[] = [];

  function send(slot: Slot, msg: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<WorkerResponse & { ok: true }> {
    if (slot.dead) return Promise.reject(new RuntimeFailure("onnxruntime worker stopped"));
    return new Promise((resolve, reject) => {
      slot.pending.set(msg.id, { resolve, reject });
      slot.worker.postMessage(msg, transfer);
    });
  }

  const quickExits: number[] = [];

  function spawn(index: number): Slot {
    const worker = new Worker(workerUrl);
    const slot: Slot = { worker, pending: new Map(), startedAt: Date.now(), dead: false };
    worker.on("message", (response: WorkerResponse) => {
      const pending = slot.pending.get(response.id);
      if (!pending) return;
      slot.pending.delete(response.id);
      if (response.ok) pending.resolve(response);
      else pending.reject(new RuntimeFailure(response.message));
    });
    let crash: Error | undefined;
    worker.on("error", (error) => {
      crash = error;
    });
    worker.on("exit", (code) => {
      slot.dead = true;
      const error = new RuntimeFailure(
        closing ? "the model server is shutting down" : `onnxruntime worker stopped (exit code ${code}${crash ? `: ${crash.message}` : ""})`,
      );
      for (const pending of slot.pending.values()) pending.reject(error);
      slot.pending.clear();
      if (closing) return;
      // Replace the worker and give it every model the pool holds, so later calls
      // succeed; a worker that keeps dying at once is replaced ever more slowly.
      quickExits[index] = Date.now() - slot.startedAt < QUICK_EXIT_MS ? (quickExits[index] ?? 0) + 1 : 0;
      const delay = quickExits[index] ? Math.min(MAX_RESPAWN_DELAY_MS, 100 * 2 ** quickExits[index]!) : 0;
      setTimeout(() => {
        if (closing) return;
        const replacement = spawn(index);
        slots[index] = replacement;
        for (const [modelId, { onnxPath, settings }] of loaded) {
          void send(replacement, { type: "load", id: nextId++, modelId, onnxPath, settings }).catch(() => {});
        }
      }, delay).unref();
    });
    return slot;
  }

  for (let i = 0; i < Math.max(1, options.workers); i++) slots.push(spawn(i));

  return {
    get size() {
      return slots.length;
    },
    async load(modelId, onnxPath, overrides = {}) {
      const settings = { ...options.settings, ...overrides };
      // Every worker finishes (or fails) its session creation before this settles:
      // terminating a worker in the middle of one aborts the process.
      const results = await Promise.allSettled(
        slots.map((slot) => send(slot, { type: "load", id: nextId++, modelId, onnxPath, settings })),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) {
        await this.unload(modelId).catch(() => undefined);
        throw failed.reason;
      }
      loaded.set(modelId, { onnxPath, settings });
      return (results[0] as PromiseFulfilledResult<WorkerResponse & { ok: true }>).value.graph!;
    },
    async unload(modelId) {
      loaded.delete(modelId);
      // A dead worker holds no session, and its replacement will not load this model.
      await Promise.all(slots.filter((slot) => !slot.dead).map((slot) => send(slot, { type: "unload", id: nextId++, modelId })));
    },
    async warmUp(modelId, inputs) {
      await Promise.all(slots.filter((slot) => !slot.dead).map((slot) => send(slot, { type: "run", id: nextId++, modelId, inputs })));
    },
    async run(modelId, inputs) {
      if (closing) throw new RuntimeFailure("the model server is shutting down");
      let slot: Slot | undefined;
      for (const s of slots) if (!s.dead && (!slot || s.pending.size < slot.pending.size)) slot = s;
      if (!slot) throw new RuntimeFailure("no onnxruntime worker is running (they are being restarted)");
      const response = await send(slot, { type: "run", id: nextId++, modelId, inputs }, transferListOf(inputs));
      return response.outputs!;
    },
    workers() {
      return slots.filter((s) => !s.dead).map((s) => s.worker);
    },
    simulateCrash(index) {
      slots[index]?.worker.postMessage({ type: "crash", id: nextId++ } satisfies WorkerRequest);
    },
    async close() {
      closing = true;
      // Each worker exits by itself once its runs are done (a run nobody waits for any
      // more may still be inside onnxruntime); terminate() only if one does not.
      await Promise.all(
        slots.map(async (slot) => {
          if (slot.dead) return;
          const exited = new Promise((resolve) => slot.worker.once("exit", resolve));
          slot.worker.postMessage({ type: "close", id: nextId++ } satisfies WorkerRequest);
          const timer = setTimeout(() => void slot.worker.terminate(), CLOSE_TIMEOUT_MS);
          await exited;
          clearTimeout(timer);
        }),
      );
    },
  };
}
