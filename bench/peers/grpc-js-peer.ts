/**
 * The peer: what the original mlflow-grpc wrapper did, with @grpc/grpc-js. One
 * onnxruntime session on the main thread, no batching, JSON string in and out:
 * `{"inputs": [[...]]}` for a one-input model, `{"predictions": ...}` back.
 * Usage: node grpc-js-peer.js MODEL_DIR PORT
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import * as ort from "onnxruntime-node";

const [modelDir, port] = process.argv.slice(2) as [string, string];
const session = await ort.InferenceSession.create(`${modelDir}/model.onnx`);
const inputName = session.inputNames[0]!;
const proto = grpc.loadPackageDefinition(protoLoader.loadSync(new URL("../../../proto/mlflow.proto", import.meta.url).pathname)) as unknown as {
  MLflow: { service: grpc.ServiceDefinition };
};

const server = new grpc.Server();
server.addService(proto.MLflow.service, {
  predict(call: grpc.ServerUnaryCall<{ value: string }, { value: string }>, callback: grpc.sendUnaryData<{ value: string }>) {
    try {
      const rows = (JSON.parse(call.request.value) as { inputs: number[][] }).inputs;
      const tensor = new ort.Tensor("float32", Float32Array.from(rows.flat()), [rows.length, rows[0]!.length]);
      session.run({ [inputName]: tensor }).then(
        (out) => {
          const predictions = Object.fromEntries(
            Object.entries(out).map(([name, t]) => [name, Array.from(t.data as ArrayLike<number | bigint>, Number)]),
          );
          callback(null, { value: JSON.stringify({ predictions }) });
        },
        (error: Error) => callback({ code: grpc.status.INTERNAL, details: error.message }),
      );
    } catch (error) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: (error as Error).message });
    }
  },
});
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) throw error;
  process.stdout.write(`peer listening on ${port}\n`);
});
