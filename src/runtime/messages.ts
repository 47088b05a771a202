/**
 * The one message contract between the pool (main thread) and its workers.
 * Tensors travel as plain objects; numeric buffers go in transfer lists.
 */

/** A tensor on the wire. Same fields as the core's Tensor; the runtime does not import the core. */
export interface WireTensor {
  dtype: string;
  shape: readonly number[];
  data: ArrayBufferView | string[];
}

/** Input or output of the ONNX graph as onnxruntime reports it; free dimensions are -1. */
export interface GraphValueInfo {
  name: string;
  dtype: string;
  shape: number[];
}

/** What a worker learns when it loads a model. */
export interface LoadedGraph {
  inputs: GraphValueInfo[];
  outputs: GraphValueInfo[];
}

/** Per-model onnxruntime session settings. */
export interface SessionSettings {
  /** Threads one session may use inside one operator. */
  intraOpNumThreads: number;
  /** Threads for running independent operators in parallel (1: sequential execution). */
  interOpNumThreads: number;
  /** Default: parallel when interOpNumThreads > 1. */
  executionMode?: "sequential" | "parallel";
  /** Default: all. */
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
}

export type WorkerRequest =
  | { type: "load"; id: number; modelId: string; onnxPath: string; settings: SessionSettings }
  | { type: "unload"; id: number; modelId: string }
  | { type: "run"; id: number; modelId: string; inputs: Record<string, WireTensor> }
  /** Ends the worker at once, as a crash would (tests and failure drills). */
  | { type: "crash"; id: number }
  /** Ends the worker once its runs are done: terminating a thread inside a native run aborts the process. */
  | { type: "close"; id: number };

export type WorkerResponse =
  | { id: number; ok: true; graph?: LoadedGraph; outputs?: Record<string, WireTensor> }
  | { id: number; ok: false; message: string };
