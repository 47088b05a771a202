/**
 * Worker thread entry: owns onnxruntime sessions and runs them. onnxruntime-node's
 * session creation and run() are synchronous native calls, so they happen here and
 * never on the main thread's event loop.
 */
import { parentPort } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import type { GraphValueInfo, WireTensor, WorkerRequest, WorkerResponse } from "./messages.js";
import { transferListOf } from "./transfer.js";

const port = parentPort!;
/** Sessions by model id; a promise, so that runs sent right behind a load wait for it (e.g. in a replacement worker). */
const sessions = new Map<string, Promise<ort.InferenceSession>>();
/**
 * Runs in progress per model. Messages are handled concurrently (run() awaits), so an
 * unload that arrives behind a run must wait for it before releasing the session.
 */
const running = new Map<string, Set<Promise<unknown>>>();

function describeValue(meta: ort.InferenceSession.ValueMetadata): GraphValueInfo {
  if (!meta.isTensor) return { name: meta.name, dtype: "unsupported", shape: [] };
  // Symbolic dimensions ("batch") and unknown ones are free: -1, as in MLflow signatures.
  return { name: meta.name, dtype: meta.type, shape: meta.shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1)) };
}

async function handle(msg: WorkerRequest): Promise<[WorkerResponse, ArrayBuffer[]]> {
  switch (msg.type) {
    case "load": {
      const creating = ort.InferenceSession.create(msg.onnxPath, {
        intraOpNumThreads: msg.settings.intraOpNumThreads,
        interOpNumThreads: msg.settings.interOpNumThreads,
        executionMode: msg.settings.executionMode ?? (msg.settings.interOpNumThreads > 1 ? "parallel" : "sequential"),
        graphOptimizationLevel: msg.settings.graphOptimizationLevel ?? "all",
      });
      sessions.set(msg.modelId, creating);
      let session: ort.InferenceSession;
      try {
        session = await creating;
      } catch (error) {
        sessions.delete(msg.modelId);
        throw error;
      }
      const graph = { inputs: session.inputMetadata.map(describeValue), outputs: session.outputMetadata.map(describeValue) };
      return [{ id: msg.id, ok: true, graph }, []];
    }
    case "unload": {
      const session = sessions.get(msg.modelId);
      sessions.delete(msg.modelId);
      await Promise.allSettled(running.get(msg.modelId) ?? []);
      running.delete(msg.modelId);
      await (await session?.catch(() => undefined))?.release();
      return [{ id: msg.id, ok: true }, []];
    }
    case "run": {
      const loaded = sessions.get(msg.modelId);
      if (!loaded) throw new Error(`model ${msg.modelId} is not loaded in this worker`);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(msg.inputs)) feeds[name] = toOrtTensor(t);
      // Registered before the first await, so an unload queued behind this run sees it.
      const run = loaded.then((session) => session.run(feeds));
      const inFlight = running.get(msg.modelId) ?? new Set<Promise<unknown>>();
      running.set(msg.modelId, inFlight.add(run));
      const results = await run.finally(() => inFlight.delete(run));
      const outputs: Record<string, WireTensor> = {};
      for (const [name, t] of Object.entries(results)) {
        outputs[name] = { dtype: t.type, shape: t.dims, data: fromOrtData(t) };
        t.dispose();
      }
      return [{ id: msg.id, ok: true, outputs }, transferListOf(outputs)];
    }
    case "crash":
    case "close":
      throw new Error("unreachable: handled on arrival");
  }
}

/**
 * An onnxruntime tensor of a wire tensor. float16 is the exception: where the runtime
 * has a global Float16Array (Node 24+), onnxruntime-common turns Uint16Array bits into
 * a Float16Array, which onnxruntime-node 1.30's native binding reads as zero bytes
 * ("not enough space: expected 4, got 0"). The binding itself takes the raw bits, so a
 * float16 feed is handed over as the plain {type, dims, data, location} it reads.
 */
function toOrtTensor(t: WireTensor): ort.Tensor {
  if (t.dtype === "float16") return { type: "float16", dims: t.shape, data: t.data, location: "cpu" } as unknown as ort.Tensor;
  return new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.shape);
}

/** A result's data as wire storage: float16 as its raw bits, even where onnxruntime-common made it a Float16Array view. */
function fromOrtData(t: ort.Tensor): WireTensor["data"] {
  const data = t.data as ArrayBufferView & { length: number };
  if (t.type === "float16" && !(data instanceof Uint16Array)) return new Uint16Array(data.buffer, data.byteOffset, data.length);
  return data as WireTensor["data"];
}

port.on("message", (msg: WorkerRequest) => {
  if (msg.type === "crash") process.exit(70); // in a worker thread this ends the thread only
  if (msg.type === "close") {
    const all = [...running.values()].flatMap((set) => [...set]);
    void Promise.allSettled(all).then(() => process.exit(0));
    return;
  }
  handle(msg).then(
    ([response, transfer]) => port.postMessage(response, transfer),
    (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      port.postMessage({ id: msg.id, ok: false, message } satisfies WorkerResponse);
    },
  );
});
