import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { type DescMessage, type MessageInitShape, create, toBinary } from "@bufbuild/protobuf";
import { HealthCheckRequestSchema } from "../../gen/grpc/health/v1/health_pb.js";
import {
  ModelInferRequestSchema,
  ModelMetadataRequestSchema,
  ModelReadyRequestSchema,
  ServerLiveRequestSchema,
  ServerMetadataRequestSchema,
} from "../../gen/inference/grpc_predict_v2_pb.js";
import { InputSchema } from "../../gen/mlflow_pb.js";
import { GetModelRequestSchema, ListModelsRequestSchema, PredictRequestSchema } from "../../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType } from "../../gen/mlflow/serving/v1/tensor_pb.js";
import { reference } from "../helpers/reference.js";
import { IRIS, MULTI, type RunningServer, startServer } from "../helpers/server.js";

const { iris } = reference;
const MAX_MESSAGE_BYTES = 64 * 1024;

function frame(message: Uint8Array, flags = 0): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = flags;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}
const encode = <T extends DescMessage>(schema: T, init: MessageInitShape<T>) => frame(toBinary(schema, create(schema, init)));

/** What a gRPC client sees of a call: status line, content type, body bytes, trailers. */
interface Answer {
  status: number | undefined;
  contentType: string | undefined;
  body: string;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
}

function call(url: string, path: string, body: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
    const answer: Answer = { status: undefined, contentType: undefined, body: "", grpcStatus: undefined, grpcMessage: undefined };
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      answer.status = h[":status"];
      answer.contentType = h["content-type"];
      // A trailers-only answer carries the status in the headers.
      answer.grpcStatus ??= h["grpc-status"] as string | undefined;
      answer.grpcMessage ??= h["grpc-message"] as string | undefined;
    });
    req.on("trailers", (t) => {
      answer.grpcStatus = t["grpc-status"] as string | undefined;
      answer.grpcMessage = t["grpc-message"] as string | undefined;
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    // The answer is complete when the server ends its side (trailers come first), as
    // for gRPC clients; connect-es does not read the rest of a refused oversized
    // request, so waiting for the whole stream to close could wait forever.
    req.on("end", () => {
      answer.body = Buffer.concat(chunks).toString("hex");
      session.destroy();
      resolve(answer);
    });
    req.on("error", reject);
    req.end(body);
  });
}

const irisPredict = { modelName: "iris", inputs: { input: { dtype: DataType.FLOAT32, shape: [2n, 4n], floatData: iris.rows.slice(0, 2).flat() } } };

/** Every unary RPC the server has, good and bad, and the transport-level error cases. */
const CASES: Array<[string, string, Buffer, Record<string, string>?]> = [
  ["seed predict", "/MLflow/predict", encode(InputSchema, { value: JSON.stringify({ inputs: iris.rows }) })],
  ["seed predict, bad JSON", "/MLflow/predict", encode(InputSchema, { value: "{" })],
  ["seed predict, bad shape", "/MLflow/predict", encode(InputSchema, { value: '{"inputs": [[1, 2, 3]]}' })],
  ["seed predict, message with a grpc-message that needs encoding", "/MLflow/predict", encode(InputSchema, { value: '{"inputs": [["é%", 1, 2, 3]]}' })],
  ["typed Predict", "/mlflow.serving.v1.ModelService/Predict", encode(PredictRequestSchema, irisPredict)],
  ["typed Predict, raw", "/mlflow.serving.v1.ModelService/Predict", encode(PredictRequestSchema, { modelName: "iris", inputs: { input: { dtype: DataType.FLOAT32, shape: [1n, 4n], rawData: new Uint8Array(new Float32Array(iris.rows[0]!).buffer) } } })],
  ["typed Predict, unknown model", "/mlflow.serving.v1.ModelService/Predict", encode(PredictRequestSchema, { ...irisPredict, modelName: "nope" })],
  ["typed Predict, bad params", "/mlflow.serving.v1.ModelService/Predict", encode(PredictRequestSchema, { modelName: "multi", inputs: {}, params: { scale: "x" } })],
  ["GetModel", "/mlflow.serving.v1.ModelService/GetModel", encode(GetModelRequestSchema, { name: "multi" })],
  ["ListModels", "/mlflow.serving.v1.ModelService/ListModels", encode(ListModelsRequestSchema, {})],
  ["ServerLive", "/inference.GRPCInferenceService/ServerLive", encode(ServerLiveRequestSchema, {})],
  ["ServerMetadata", "/inference.GRPCInferenceService/ServerMetadata", encode(ServerMetadataRequestSchema, {})],
  ["ModelReady", "/inference.GRPCInferenceService/ModelReady", encode(ModelReadyRequestSchema, { name: "iris" })],
  ["ModelMetadata, unknown model", "/inference.GRPCInferenceService/ModelMetadata", encode(ModelMetadataRequestSchema, { name: "nope" })],
  ["ModelInfer", "/inference.GRPCInferenceService/ModelInfer", encode(ModelInferRequestSchema, { modelName: "iris", id: "x", inputs: [{ name: "input", datatype: "FP32", shape: [1n, 4n], contents: { fp32Contents: iris.rows[0]! } }] })],
  ["ModelInfer, wrong datatype", "/inference.GRPCInferenceService/ModelInfer", encode(ModelInferRequestSchema, { modelName: "iris", inputs: [{ name: "input", datatype: "FP64", shape: [1n, 4n], contents: { fp64Contents: iris.rows[0]! } }] })],
  ["Health Check", "/grpc.health.v1.Health/Check", encode(HealthCheckRequestSchema, { service: "" })],
  ["Health Check, unknown service", "/grpc.health.v1.Health/Check", encode(HealthCheckRequestSchema, { service: "nope" })],
  ["not protobuf", "/MLflow/predict", frame(Buffer.from([0x0a, 0x10, 0x01]))],
  ["no message", "/MLflow/predict", Buffer.alloc(0)],
  ["an incomplete envelope", "/MLflow/predict", frame(Buffer.from([0x0a, 0x00])).subarray(0, 6)],
  ["two messages", "/MLflow/predict", Buffer.concat([encode(InputSchema, { value: "{}" }), encode(InputSchema, { value: "{}" })])],
  ["over the size limit", "/MLflow/predict", encode(InputSchema, { value: "x".repeat(MAX_MESSAGE_BYTES + 10) })],
  ["a malformed grpc-timeout", "/MLflow/predict", encode(InputSchema, { value: "{}" }), { "grpc-timeout": "soon" }],
  ["an unknown method", "/MLflow/train", encode(InputSchema, { value: "{}" })],
];

describe("the lean unary path answers exactly what connect-es answers", () => {
  let lean: RunningServer;
  let full: RunningServer;
  before(async () => {
    [lean, full] = await Promise.all([
      startServer([IRIS, MULTI], { maxMessageBytes: MAX_MESSAGE_BYTES }),
      startServer([IRIS, MULTI], { maxMessageBytes: MAX_MESSAGE_BYTES, fastPath: false }),
    ]);
  });
  after(() => Promise.all([lean.close(), full.close()]));

  for (const [what, path, body, headers] of CASES) {
    it(what, async () => {
      const [a, b] = await Promise.all([call(lean.url, path, body, headers), call(full.url, path, body, headers)]);
      assert.deepEqual(a, b);
      if (!what.includes("unknown method")) assert.ok(a.grpcStatus !== undefined, "a gRPC answer");
    });
  }

  it("refuses a second message as soon as its header arrives, without buffering the rest", async () => {
    const session = http2.connect(lean.url);
    try {
      const req = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/grpc", te: "trailers" });
      const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => req.on("trailers", resolve));
      req.on("data", () => undefined);
      req.write(frame(new Uint8Array(0)));
      const second = Buffer.alloc(5);
      second.writeUInt32BE(MAX_MESSAGE_BYTES, 1); // announces a large second message
      req.write(second);
      req.write(Buffer.alloc(1024)); // and starts sending it; the client never ends its side
      const t = await trailers;
      assert.equal(t["grpc-status"], "12");
      assert.equal(t["grpc-message"], "protocol error: received extra input message for unary method");
      req.close();
    } finally {
      session.destroy();
    }
  });

  it("really takes the lean path when on, and never when off", async () => {
    const before = [lean.app.leanCalls(), full.app.leanCalls()];
    await call(lean.url, "/mlflow.serving.v1.ModelService/ListModels", encode(ListModelsRequestSchema, {}));
    await call(full.url, "/mlflow.serving.v1.ModelService/ListModels", encode(ListModelsRequestSchema, {}));
    assert.deepEqual([lean.app.leanCalls() - before[0]!, full.app.leanCalls() - before[1]!], [1, 0]);
  });
});
