import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
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
import { DTYPES, IRIS, MULTI, type RunningServer, startServer } from "../helpers/server.js";

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
  grpcEncoding: string | undefined;
}

/** A gRPC call; the body is sent `delayMs` after the headers. */
function call(url: string, path: string, body: Buffer, headers: Record<string, string> = {}, delayMs = 0): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
    const answer: Answer = { status: undefined, contentType: undefined, body: "", grpcStatus: undefined, grpcMessage: undefined, grpcEncoding: undefined };
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      answer.status = h[":status"];
      answer.contentType = h["content-type"];
      answer.grpcEncoding = h["grpc-encoding"] as string | undefined;
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
    if (delayMs > 0) setTimeout(() => req.end(body), delayMs);
    else req.end(body);
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
  ["a message and the first bytes of another", "/MLflow/predict", Buffer.concat([encode(InputSchema, { value: "{}" }), Buffer.from([0, 0])])],
  ["over the size limit", "/MLflow/predict", encode(InputSchema, { value: "x".repeat(MAX_MESSAGE_BYTES + 10) })],
  ["over the size limit, from a client that accepts gzip", "/MLflow/predict", encode(InputSchema, { value: "x".repeat(MAX_MESSAGE_BYTES + 10) }), { "grpc-accept-encoding": "identity,deflate,gzip" }],
  ["two messages, from a client that accepts gzip", "/MLflow/predict", Buffer.concat([encode(InputSchema, { value: "{}" }), encode(InputSchema, { value: "{}" })]), { "grpc-accept-encoding": "gzip" }],
  ["a malformed grpc-timeout", "/MLflow/predict", encode(InputSchema, { value: "{}" }), { "grpc-timeout": "soon" }],
  ["an unknown method", "/MLflow/train", encode(InputSchema, { value: "{}" })],
];

/** What a Connect client sees of a unary call. */
interface ConnectAnswer {
  status: number | undefined;
  headers: Record<string, string | undefined>;
  body: string;
}

/** The headers whose values a Connect client acts on (trailers travel as trailer-* headers). */
const connectHeaders = (h: http.IncomingHttpHeaders | http2.IncomingHttpHeaders) =>
  Object.fromEntries(
    Object.entries(h)
      .filter(([k]) => ["content-type", "content-encoding", "content-length", "grpc-accept-encoding"].includes(k) || k.startsWith("trailer-"))
      .map(([k, v]) => [k, String(v)]),
  );

function connectCall(url: string, path: string, body: Buffer | string, headers: Record<string, string>, version: 1 | 2): Promise<ConnectAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const answer: ConnectAnswer = { status: undefined, headers: {}, body: "" };
    if (version === 1) {
      const req = http.request(`${url}${path}`, { method: "POST", headers: { "content-length": String(Buffer.byteLength(body)), ...headers }, agent: false }, (res) => {
        answer.status = res.statusCode;
        answer.headers = connectHeaders(res.headers);
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ ...answer, body: Buffer.concat(chunks).toString("hex") }));
      });
      req.on("error", reject);
      req.end(body);
      return;
    }
    const session = http2.connect(url);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": path, ...headers });
    req.on("response", (h) => {
      answer.status = h[":status"];
      answer.headers = connectHeaders(h);
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      session.destroy();
      resolve({ ...answer, body: Buffer.concat(chunks).toString("hex") });
    });
    req.on("error", reject);
    req.end(body);
  });
}

const json = { "content-type": "application/json" };
const proto = { "content-type": "application/proto" };
const protoOf = <T extends DescMessage>(schema: T, init: MessageInitShape<T>) => Buffer.from(toBinary(schema, create(schema, init)));

/** Connect unary calls, JSON and protobuf, good and bad; each also runs over HTTP/1.1 and HTTP/2. */
const CONNECT_CASES: Array<[string, string, Buffer | string, Record<string, string>]> = [
  ["seed predict, JSON", "/MLflow/predict", JSON.stringify({ value: JSON.stringify({ inputs: iris.rows }) }), json],
  ["seed predict, JSON with charset", "/MLflow/predict", JSON.stringify({ value: JSON.stringify({ inputs: iris.rows }) }), { "content-type": "application/json; charset=utf-8" }],
  ["seed predict, protobuf", "/MLflow/predict", protoOf(InputSchema, { value: JSON.stringify({ inputs: iris.rows }) }), proto],
  ["seed predict, bad shape", "/MLflow/predict", JSON.stringify({ value: '{"inputs": [[1, 2, 3]]}' }), json],
  ["typed Predict, JSON", "/mlflow.serving.v1.ModelService/Predict", JSON.stringify({ modelName: "iris", inputs: { input: { dtype: "DATA_TYPE_FLOAT32", shape: ["2", "4"], floatData: iris.rows.slice(0, 2).flat() } } }), json],
  ["typed Predict, protobuf raw", "/mlflow.serving.v1.ModelService/Predict", protoOf(PredictRequestSchema, { modelName: "iris", inputs: { input: { dtype: DataType.FLOAT32, shape: [1n, 4n], rawData: new Uint8Array(new Float32Array(iris.rows[0]!).buffer) } } }), proto],
  ["typed Predict, unknown model", "/mlflow.serving.v1.ModelService/Predict", JSON.stringify({ modelName: "nope" }), json],
  ["typed Predict, bad params", "/mlflow.serving.v1.ModelService/Predict", JSON.stringify({ modelName: "multi", params: { scale: "x" } }), json],
  ["GetModel", "/mlflow.serving.v1.ModelService/GetModel", JSON.stringify({ name: "multi" }), json],
  ["GetModel, gzip answer", "/mlflow.serving.v1.ModelService/GetModel", JSON.stringify({ name: "dtypes" }), { ...json, "accept-encoding": "gzip" }],
  ["GetModel, brotli answer", "/mlflow.serving.v1.ModelService/GetModel", JSON.stringify({ name: "dtypes" }), { ...json, "accept-encoding": "br, gzip" }],
  ["GetModel, accept-encoding of nothing known", "/mlflow.serving.v1.ModelService/GetModel", JSON.stringify({ name: "dtypes" }), { ...json, "accept-encoding": "zstd" }],
  ["ListModels, empty protobuf body", "/mlflow.serving.v1.ModelService/ListModels", Buffer.alloc(0), proto],
  ["ModelInfer", "/inference.GRPCInferenceService/ModelInfer", JSON.stringify({ modelName: "iris", inputs: [{ name: "input", datatype: "FP32", shape: ["1", "4"], contents: { fp32Contents: iris.rows[0] } }] }), json],
  ["Health Check, unknown service", "/grpc.health.v1.Health/Check", JSON.stringify({ service: "nope" }), json],
  ["unknown JSON fields are ignored", "/grpc.health.v1.Health/Check", JSON.stringify({ service: "", extra: 1 }), json],
  ["invalid JSON", "/MLflow/predict", "{", json],
  ["empty JSON body", "/MLflow/predict", "", json],
  ["a JSON field of the wrong type", "/MLflow/predict", JSON.stringify({ value: 5 }), json],
  ["not protobuf", "/MLflow/predict", Buffer.from([0x0a, 0x10, 0x01]), proto],
  ["over the size limit", "/MLflow/predict", JSON.stringify({ value: "x".repeat(MAX_MESSAGE_BYTES + 10) }), json],
  ["a malformed connect-timeout-ms", "/MLflow/predict", JSON.stringify({ value: "{}" }), { ...json, "connect-timeout-ms": "soon" }],
  ["a streaming content type, on the full path", "/MLflow/predict", "{}", { "content-type": "application/connect+json" }],
  ["an unknown content type, on the full path", "/MLflow/predict", "{}", { "content-type": "text/plain" }],
  ["a gzip request body, on the full path", "/MLflow/predict", gzipSync(JSON.stringify({ value: "{}" })), { ...json, "content-encoding": "gzip" }],
];

describe("the lean unary path answers exactly what connect-es answers", () => {
  let lean: RunningServer;
  let full: RunningServer;
  before(async () => {
    [lean, full] = await Promise.all([
      startServer([IRIS, MULTI, DTYPES], { maxMessageBytes: MAX_MESSAGE_BYTES }),
      startServer([IRIS, MULTI, DTYPES], { maxMessageBytes: MAX_MESSAGE_BYTES, fastPath: false }),
    ]);
  });
  after(() => Promise.all([lean.close(), full.close()]));

  for (const [what, path, body, headers] of CASES) {
    it(what, async () => {
      const before = lean.app.leanCalls();
      const [a, b] = await Promise.all([call(lean.url, path, body, headers), call(full.url, path, body, headers)]);
      assert.deepEqual(a, b);
      if (what.includes("unknown method")) return;
      assert.ok(a.grpcStatus !== undefined, "a gRPC answer");
      assert.equal(lean.app.leanCalls() - before, 1, "answered on the lean path");
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

  it("runs the deadline from the request's headers, not from the end of its body", async () => {
    const body = encode(InputSchema, { value: JSON.stringify({ inputs: iris.rows }) });
    const headers = { "grpc-timeout": "200m" };
    const [a, b] = await Promise.all([call(lean.url, "/MLflow/predict", body, headers, 400), call(full.url, "/MLflow/predict", body, headers, 400)]);
    assert.deepEqual(a, b);
    assert.equal(a.grpcStatus, "4", "DEADLINE_EXCEEDED");
  });

  it("compresses answers as connect-es does when the client accepts gzip", async () => {
    const rows = Array.from({ length: 200 }, (_, i) => iris.rows[i % iris.rows.length]!).flat(); // an answer over 1 KiB
    const body = encode(PredictRequestSchema, { modelName: "iris", inputs: { input: { dtype: DataType.FLOAT32, shape: [BigInt(rows.length / 4), 4n], rawData: new Uint8Array(new Float32Array(rows).buffer) } } });
    const headers = { "grpc-accept-encoding": "identity,deflate,gzip" };
    const path = "/mlflow.serving.v1.ModelService/Predict";
    const [a, b] = await Promise.all([call(lean.url, path, body, headers), call(full.url, path, body, headers)]);
    assert.deepEqual(a, b);
    assert.equal(a.body.slice(0, 2), "01", "a compressed envelope");
  });

  for (const [what, path, body, headers] of CONNECT_CASES) {
    for (const version of [1, 2] as const) {
      it(`Connect over HTTP/${version === 1 ? "1.1" : "2"}: ${what}`, async () => {
        const before = lean.app.leanCalls();
        const [a, b] = await Promise.all([connectCall(lean.url, path, body, headers, version), connectCall(full.url, path, body, headers, version)]);
        assert.deepEqual(a, b);
        if (!what.includes("full path")) assert.equal(lean.app.leanCalls() - before, 1, "answered on the lean path");
      });
    }
  }

  it("keeps answering on the lean path once shutdown began (a call received during the drain is served)", async () => {
    const closing = await startServer([IRIS]);
    try {
      closing.app.core.beginShutdown(); // readiness is NOT_SERVING; what was received is still answered
      const before = closing.app.leanCalls();
      const a = await connectCall(closing.url, "/MLflow/predict", JSON.stringify({ value: JSON.stringify({ inputs: iris.rows }) }), json, 1);
      const b = await call(closing.url, "/MLflow/predict", encode(InputSchema, { value: JSON.stringify({ inputs: iris.rows }) }));
      assert.equal(a.status, 200);
      assert.equal(b.grpcStatus, "0");
      assert.equal(closing.app.leanCalls() - before, 2);
    } finally {
      await closing.close();
    }
  });

  it("really takes the lean path when on, and never when off", async () => {
    const before = [lean.app.leanCalls(), full.app.leanCalls()];
    await call(lean.url, "/mlflow.serving.v1.ModelService/ListModels", encode(ListModelsRequestSchema, {}));
    await call(full.url, "/mlflow.serving.v1.ModelService/ListModels", encode(ListModelsRequestSchema, {}));
    assert.deepEqual([lean.app.leanCalls() - before[0]!, full.app.leanCalls() - before[1]!], [1, 0]);
  });
});
