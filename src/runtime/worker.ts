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
const sessions = new Map<string, ort.InferenceSession>();

function describeValue(meta: ort.InferenceSession.ValueMetadata): GraphValueInfo {
  if (!meta.isTensor) return { name: meta.name, dtype: "unsupported", shape: [] };
  // Symbolic dimensions ("batch") and unknown ones are free: -1, as in MLflow signatures.
  return { name: meta.name, dtype: meta.type, shape: meta.shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1)) };
}

async function handle(msg: WorkerRequest): Promise<[WorkerResponse, ArrayBuffer[]]> {
  switch (msg.type) {
    case "load": {
      const session = await ort.InferenceSession.create(msg.onnxPath, {
        intraOpNumThreads: msg.settings.intraOpNumThreads,
        interOpNumThreads: msg.settings.interOpNumThreads,
        executionMode: msg.settings.interOpNumThreads > 1 ? "parallel" : "sequential",
        graphOptimizationLevel: "all",
      });
      await sessions.get(msg.modelId)?.release();
      sessions.set(msg.modelId, session);
      const graph = { inputs: session.inputMetadata.map(describeValue), outputs: session.outputMetadata.map(describeValue) };
      return [{ id: msg.id, ok: true, graph }, []];
    }
    case "unload": {
      await sessions.get(msg.modelId)?.release();
      sessions.delete(msg.modelId);
      return [{ id: msg.id, ok: true }, []];
    }
    case "run": {
      const session = sessions.get(msg.modelId);
      if (!session) throw new Error(`model ${msg.modelId} is not loaded in this worker`);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(msg.inputs)) {
        feeds[name] = new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.shape);
      }
      const results = await session.run(feeds);
      const outputs: Record<string, WireTensor> = {};
      for (const [name, t] of Object.entries(results)) {
        outputs[name] = { dtype: t.type, shape: t.dims, data: t.data as WireTensor["data"] };
        t.dispose();
      }
      return [{ id: msg.id, ok: true, outputs }, transferListOf(outputs)];
    }
  }
}

port.on("message", (msg: WorkerRequest) => {
  handle(msg).then(
    ([response, transfer]) => port.postMessage(response, transfer),
    (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      port.postMessage({ id: msg.id, ok: false, message } satisfies WorkerResponse);
    },
  );
});
