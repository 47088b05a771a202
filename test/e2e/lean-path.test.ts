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
  ServerReadyRequestSchema,
} from "../../gen/inference/grpc_predict_v2_pb.js";
import { InputSchema } from "../../gen/mlflow_pb.js";
import { GetModelRequestSchema, ListModelsRequestSchema, ModelService, PredictRequestSchema } from "../../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType } from "../../gen/mlflow/serving/v1/tensor_pb.js";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { modelValue } from "../helpers/metrics.js";
import { reference } from "../helpers/reference.js";
import { DTYPES, IRIS, MULTI, type RunningServer, SLOW, startServer } from "../helpers/server.js";
import { until, untilModel } from "../helpers/wait.js";

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

/**
 * One block of header fields as received, as [name, value] pairs (names lower-cased,
 * repeated fields kept), sorted: their order within a block means nothing. The one
 * field normalised is `date`, which legitimately differs between two answers.
 */
type Fields = Array<[string, string]>;
function fields(raw: string[]): Fields {
  const out: Fields = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    out.push([name, name === "date" ? "<date>" : raw[i + 1]!]);
  }
  return out.sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : x > y ? 1 : 0) : a < b ? -1 : 1));
}

/**
 * Everything an HTTP/2 client receives on one stream, in frame order: the header
 * block (and whether it ended the stream: a trailers-only answer), the body (DATA
 * frames joined: their split means nothing), the trailer block, a reset.
 */
type Frame = { headers: Fields; endStream: boolean } | { data: string } | { trailers: Fields } | { reset: number };
interface Exchange {
  frames: Frame[];
  /** With `holdBody`: whether the answer was complete before the request body was sent. */
  answeredBeforeBody?: boolean;
}

interface ExchangeOptions {
  /**
   * Send the headers now and the body `HOLD_MS` later, unless the answer is complete
   * first (`answeredBeforeBody` says which).
   */
  holdBody?: boolean;
  /** Cancel the stream (RST_STREAM CANCEL) once this resolves. */
  cancel?: Promise<void>;
}

/** Ten times the deadline the header-deadline case sets (50 ms): it has passed by then on any machine. */
const HOLD_MS = 500;

function h2Exchange(url: string, headers: http2.OutgoingHttpHeaders, body: Buffer | string, options: ExchangeOptions = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const req = session.request(headers, { endStream: false });
    const frames: Frame[] = [];
    const exchange: Exchange = { frames };
    let bodySent = false;
    const sendBody = () => {
      if (bodySent || req.destroyed) return;
      bodySent = true;
      req.end(body);
    };
    req.on("response", (_h: unknown, flags: number, raw: string[]) => frames.push({ headers: fields(raw), endStream: (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0 }));
    req.on("trailers", (_h: unknown, _flags: number, raw: string[]) => frames.push({ trailers: fields(raw) }));
    req.on("data", (chunk: Buffer) => {
      const last = frames.at(-1);
      if (last && "data" in last) last.data += chunk.toString("hex");
      else frames.push({ data: chunk.toString("hex") });
    });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(fallback);
      if (options.holdBody) exchange.answeredBeforeBody = !bodySent;
      session.destroy();
      resolve(exchange);
    };
    // The answer is complete when the server ends its side (trailers come first), as
    // for gRPC clients; connect-es does not read the rest of a refused oversized
    // request, so waiting for the whole stream to close could wait forever.
    req.on("end", finish);
    req.on("close", () => {
      if (req.rstCode && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) frames.push({ reset: req.rstCode });
      finish();
    });
    req.on("error", () => undefined); // a reset shows in the frames
    const fallback = options.holdBody ? setTimeout(sendBody, HOLD_MS) : undefined;
    if (!options.holdBody) sendBody();
    void options.cancel?.then(() => req.close(http2.constants.NGHTTP2_CANCEL));
  });
}

/** A gRPC call: what its client receives. */
function call(url: string, path: string, body: Buffer, headers: Record<string, string> = {}, options: ExchangeOptions = {}): Promise<Exchange> {
  return h2Exchange(url, { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers }, body, options);
}

/** The gRPC status of an answer, from the trailers or from a trailers-only header block. */
function grpcStatus(answer: Exchange): string | undefined {
  for (const frame of answer.frames) {
    const block = "trailers" in frame ? frame.trailers : "headers" in frame && frame.endStream ? frame.headers : [];
    const status = block.find(([name]) => name === "grpc-status");
    if (status) return status[1];
  }
  return undefined;
}

/** The slow model asked for an n x n matrix with n = -1: onnxruntime fails the run. */
const slowRequest = (n: number) => ({ modelName: "slow", inputs: { n: { dtype: DataType.INT64, shape: [1n], int64Data: [BigInt(n)] } } });
const failingRun = { modelName: "slow", inputs: { n: { dtype: DataType.INT64, shape: [1n], int64Data: [-1n] } } };
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
  ["ServerReady", "/inference.GRPCInferenceService/ServerReady", encode(ServerReadyRequestSchema, {})],
  ["ServerMetadata", "/inference.GRPCInferenceService/ServerMetadata", encode(ServerMetadataRequestSchema, {})],
  ["ModelReady", "/inference.GRPCInferenceService/ModelReady", encode(ModelReadyRequestSchema, { name: "iris" })],
  ["ModelMetadata", "/inference.GRPCInferenceService/ModelMetadata", encode(ModelMetadataRequestSchema, { name: "iris" })],
  ["ModelMetadata, unknown model", "/inference.GRPCInferenceService/ModelMetadata", encode(ModelMetadataRequestSchema, { name: "nope" })],
  ["ModelInfer", "/inference.GRPCInferenceService/ModelInfer", encode(ModelInferRequestSchema, { modelName: "iris", id: "x", inputs: [{ name: "input", datatype: "FP32", shape: [1n, 4n], contents: { fp32Contents: iris.rows[0]! } }] })],
  ["ModelInfer, wrong datatype", "/inference.GRPCInferenceService/ModelInfer", encode(ModelInferRequestSchema, { modelName: "iris", inputs: [{ name: "input", datatype: "FP64", shape: [1n, 4n], contents: { fp64Contents: iris.rows[0]! } }] })],
  ["typed Predict, a model run that fails (INTERNAL)", "/mlflow.serving.v1.ModelService/Predict", encode(PredictRequestSchema, failingRun)],
  ["ModelInfer, a model run that fails (INTERNAL)", "/inference.GRPCInferenceService/ModelInfer", encode(ModelInferRequestSchema, { modelName: "slow", inputs: [{ name: "n", datatype: "INT64", shape: [1n], contents: { int64Contents: [-1n] } }] })],
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
  ["an unknown method, on the full path", "/MLflow/train", encode(InputSchema, { value: "{}" })],
  ["a compressed request, on the full path", "/MLflow/predict", frame(gzipSync(toBinary(InputSchema, create(InputSchema, { value: JSON.stringify({ inputs: iris.rows }) }))), 1), { "grpc-encoding": "gzip" }],
];

/** What an HTTP/1.1 client receives: status, the whole header block, the body, trailers. */
interface H1Exchange {
  status: number | undefined;
  headers: Fields;
  body: string;
  trailers: Fields;
  answeredBeforeBody?: boolean;
  /** The client went away before an answer (cancel). */
  cancelled?: boolean;
}

function h1Exchange(url: string, path: string, body: Buffer | string, headers: Record<string, string>, options: ExchangeOptions = {}): Promise<H1Exchange> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bodySent = false;
    const req = http.request(`${url}${path}`, { method: "POST", headers: { "content-length": String(Buffer.byteLength(body)), ...headers }, agent: false }, (res) => {
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(fallback);
        const answer: H1Exchange = { status: res.statusCode, headers: fields(res.rawHeaders), body: Buffer.concat(chunks).toString("hex"), trailers: fields(res.rawTrailers) };
        if (options.holdBody) answer.answeredBeforeBody = !bodySent;
        req.destroy();
        resolve(answer);
      });
    });
    const sendBody = () => {
      bodySent = true;
      req.end(body);
    };
    req.on("error", (error) => (req.destroyed && !bodySent) || options.cancel ? resolve({ status: undefined, headers: [], body: "", trailers: [], cancelled: true }) : reject(error));
    const fallback = options.holdBody ? setTimeout(sendBody, HOLD_MS) : undefined;
    if (options.holdBody) req.flushHeaders();
    else sendBody();
    void options.cancel?.then(() => req.destroy());
  });
}

/** The status and JSON body of a Connect answer over HTTP/1.1 or HTTP/2. */
function connectAnswer(answer: H1Exchange | Exchange): { status: number | undefined; json: unknown } {
  if ("status" in answer) return { status: answer.status, json: JSON.parse(Buffer.from(answer.body, "hex").toString()) };
  const head = answer.frames.find((f): f is { headers: Fields; endStream: boolean } => "headers" in f);
  const data = answer.frames.filter((f): f is { data: string } => "data" in f).map((f) => f.data).join("");
  return { status: Number(head?.headers.find(([n]) => n === ":status")?.[1]), json: JSON.parse(Buffer.from(data, "hex").toString()) };
}

/** A Connect unary call over HTTP/1.1 or HTTP/2: what its client receives. */
function connectCall(url: string, path: string, body: Buffer | string, headers: Record<string, string>, version: 1 | 2, options: ExchangeOptions = {}): Promise<H1Exchange | Exchange> {
  return version === 1 ? h1Exchange(url, path, body, headers, options) : h2Exchange(url, { ":method": "POST", ":path": path, ...headers }, body, options);
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
  ["typed Predict, a model run that fails (INTERNAL)", "/mlflow.serving.v1.ModelService/Predict", JSON.stringify({ modelName: "slow", inputs: { n: { dtype: "DATA_TYPE_INT64", shape: ["1"], int64Data: ["-1"] } } }), json],
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
    // slow: its one request may wait (queue of 1), to fill the queue and to cancel a queued call.
    const config = { maxMessageBytes: MAX_MESSAGE_BYTES, modelBatching: { slow: { maxQueue: 1 } } };
    [lean, full] = await Promise.all([startServer([IRIS, MULTI, DTYPES, SLOW], config), startServer([IRIS, MULTI, DTYPES, SLOW], { ...config, fastPath: false })]);
  });
  after(() => Promise.all([lean.close(), full.close()]));

  /**
   * Runs `exchange` against both servers; requires the same wire answer and the
   * expected number of lean calls (counted once `settle` resolves: a call that ends
   * without an answer is counted when the server notices).
   */
  async function differential<T>(what: string, exchange: (url: string) => Promise<T>, settle?: () => Promise<void>): Promise<T> {
    const before = [lean.app.leanCalls(), full.app.leanCalls()];
    const [a, b] = await Promise.all([exchange(lean.url), exchange(full.url)]);
    assert.deepEqual(a, b);
    await settle?.();
    const onFull = what.includes("full path");
    assert.deepEqual([lean.app.leanCalls() - before[0]!, full.app.leanCalls() - before[1]!], [onFull ? 0 : 1, 0], onFull ? "left to the full path" : "answered on the lean path");
    return a;
  }

  for (const [what, path, body, headers] of CASES) {
    it(`gRPC: ${what}`, async () => {
      const answer = await differential(what, (url) => call(url, path, body, headers));
      if (!what.includes("unknown method")) assert.ok(grpcStatus(answer) !== undefined, "a gRPC answer");
    });
  }

  it("gRPC: an error is a header block then a trailer block on both paths, a success headers, message, trailers", async () => {
    const error = await differential("", (url) => call(url, "/MLflow/predict", encode(InputSchema, { value: "{" })));
    assert.deepEqual(error.frames.map((f) => Object.keys(f)[0]), ["headers", "trailers"]);
    assert.equal((error.frames[0] as { endStream: boolean }).endStream, false);
    const ok = await differential("", (url) => call(url, "/MLflow/predict", encode(InputSchema, { value: JSON.stringify({ inputs: iris.rows }) })));
    assert.deepEqual(ok.frames.map((f) => Object.keys(f)[0]), ["headers", "data", "trailers"]);
  });

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

  it("gRPC: runs the deadline from the request's headers, not from the end of its body", async () => {
    // The body comes ten times the deadline after the headers; iris answers at once once it has it.
    const body = encode(InputSchema, { value: JSON.stringify({ inputs: iris.rows }) });
    const answer = await differential("", (url) => call(url, "/MLflow/predict", body, { "grpc-timeout": "50m" }, { holdBody: true }));
    assert.equal(grpcStatus(answer), "4", "DEADLINE_EXCEEDED");
  });

  for (const version of [1, 2] as const) {
    it(`Connect over HTTP/${version === 1 ? "1.1" : "2"}: answers deadline_exceeded when the deadline passes while the request waits for a busy model`, async () => {
      const busy = await occupy(); // the one worker runs; the queue has room for one
      try {
        const answer = await differential("", (url) => connectCall(url, PREDICT, slowPredict(10).connect, { ...json, "connect-timeout-ms": "100" }, version));
        assert.deepEqual(connectAnswer(answer), { status: 504, json: { code: "deadline_exceeded", message: 'the request\'s deadline passed before model "slow" could run it' } });
      } finally {
        await busy.done();
      }
    });
  }

  it("compresses answers as connect-es does when the client accepts gzip", async () => {
    const rows = Array.from({ length: 200 }, (_, i) => iris.rows[i % iris.rows.length]!).flat(); // an answer over 1 KiB
    const body = encode(PredictRequestSchema, { modelName: "iris", inputs: { input: { dtype: DataType.FLOAT32, shape: [BigInt(rows.length / 4), 4n], rawData: new Uint8Array(new Float32Array(rows).buffer) } } });
    const answer = await differential("", (url) => call(url, "/mlflow.serving.v1.ModelService/Predict", body, { "grpc-accept-encoding": "identity,deflate,gzip" }));
    assert.equal((answer.frames[1] as { data: string }).data.slice(0, 2), "01", "a compressed envelope");
  });

  for (const [what, path, body, headers] of CONNECT_CASES) {
    for (const version of [1, 2] as const) {
      it(`Connect over HTTP/${version === 1 ? "1.1" : "2"}: ${what}`, async () => {
        await differential(what, (url) => connectCall(url, path, body, headers, version));
      });
    }
  }

  /**
   * Keeps the slow model of both servers busy: one long run each (its queue, of one, is
   * left empty); done() waits for the runs to end.
   */
  async function occupy(): Promise<{ done(): Promise<void> }> {
    const runs = [lean, full].map((s) => createClient(ModelService, createGrpcTransport({ baseUrl: s.url })).predict(slowRequest(2500)));
    await Promise.all([lean, full].map((s) => untilModel(s.url, "slow", { running: 1 }, runs)));
    return { done: async () => void (await Promise.all(runs)) };
  }

  /** A typed Predict of the slow model asking for n, as gRPC and Connect bodies. */
  const slowPredict = (n: number) => ({
    grpc: encode(PredictRequestSchema, slowRequest(n)),
    connect: JSON.stringify({ modelName: "slow", inputs: { n: { dtype: "DATA_TYPE_INT64", shape: ["1"], int64Data: [String(n)] } } }),
  });
  const PREDICT = "/mlflow.serving.v1.ModelService/Predict";

  it("refuses a request past a full queue with the same RESOURCE_EXHAUSTED on both paths (gRPC, Connect over HTTP/1.1 and HTTP/2)", async () => {
    const busy = await occupy();
    const queued = [lean, full].map((s) => createClient(ModelService, createGrpcTransport({ baseUrl: s.url })).predict(slowRequest(10)));
    try {
      await Promise.all([lean, full].map((s) => untilModel(s.url, "slow", { queued: 1 }, queued)));
      const { grpc, connect } = slowPredict(10);
      assert.equal(grpcStatus(await differential("", (url) => call(url, PREDICT, grpc))), "8");
      for (const version of [1, 2] as const) {
        const { status, json: body } = connectAnswer(await differential("", (url) => connectCall(url, PREDICT, connect, json, version)));
        assert.deepEqual([status, (body as { code: string }).code], [429, "resource_exhausted"]);
      }
    } finally {
      await Promise.allSettled(queued);
      await busy.done();
    }
  });

  it("counts a call its client cancels while it waits as canceled, and never runs it, on both paths (gRPC, Connect over HTTP/1.1 and HTTP/2)", async () => {
    const { grpc, connect } = slowPredict(10);
    const metric = (server: RunningServer, name: string, labels: Record<string, string> = {}) => modelValue(server.url, name, "slow", labels);
    const exchanges: Array<[string, (url: string, cancel: Promise<void>) => Promise<unknown>]> = [
      ["grpc", (url, cancel) => call(url, PREDICT, grpc, {}, { cancel })],
      ["connect", (url, cancel) => connectCall(url, PREDICT, connect, json, 1, { cancel })],
      ["connect", (url, cancel) => connectCall(url, PREDICT, connect, json, 2, { cancel })],
    ];
    for (const [protocol, exchange] of exchanges) {
      const labels = { protocol, method: "mlflow.serving.v1.ModelService/Predict", code: "canceled" };
      const before = await Promise.all([lean, full].map(async (s) => [await metric(s, "mlflow_connect_requests_total", labels), await metric(s, "mlflow_connect_batch_requests_sum")]));
      const busy = await occupy();
      try {
        // Cancelled once its server has queued it; the server counts it once it notices.
        const counted = async () => {
          for (const [i, server] of [lean, full].entries()) {
            await until(`${server === lean ? "the lean" : "the full"} path counted the call as canceled`, async () => (await metric(server, "mlflow_connect_requests_total", labels)) === before[i]![0]! + 1);
            await untilModel(server.url, "slow", { queued: 0 });
          }
        };
        await differential("", (url) => exchange(url, untilModel(url, "slow", { queued: 1 })), counted);
      } finally {
        await busy.done();
      }
      const ran = await Promise.all([lean, full].map(async (s, i) => (await metric(s, "mlflow_connect_batch_requests_sum")) - before[i]![1]!));
      assert.deepEqual(ran, [1, 1], `${protocol}: only the busy request ran`);
    }
  });

  it("keeps answering on the lean path once shutdown began (a call received during the drain is served)", async () => {
    const closing = await startServer([IRIS]);
    try {
      closing.app.core.beginShutdown(); // readiness is NOT_SERVING; what was received is still answered
      const before = closing.app.leanCalls();
      const a = (await connectCall(closing.url, "/MLflow/predict", JSON.stringify({ value: JSON.stringify({ inputs: iris.rows }) }), json, 1)) as H1Exchange;
      const b = await call(closing.url, "/MLflow/predict", encode(InputSchema, { value: JSON.stringify({ inputs: iris.rows }) }));
      assert.equal(a.status, 200);
      assert.equal(grpcStatus(b), "0");
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
