import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type MessageInitShape, create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { GRPCInferenceService, ModelInferRequestSchema } from "../../gen/inference/grpc_predict_v2_pb.js";
import { MLflow } from "../../gen/mlflow_pb.js";
import { ModelService, PredictRequestSchema } from "../../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType, TensorSchema } from "../../gen/mlflow/serving/v1/tensor_pb.js";
import { reference } from "../helpers/reference.js";
import { DTYPES, IRIS, MULTI, type RunningServer, startServer } from "../helpers/server.js";

/**
 * Attacks on the request parsers, each through the real clients of every front that
 * parses it. Each must be refused as the client's mistake (400 / INVALID_ARGUMENT, with
 * a message naming what is wrong), quickly, without the server's memory growing with
 * what the request names rather than what it holds; and the server must serve normally
 * afterwards. The figures before the parsers were hardened are in the comments.
 */

const { iris } = reference;
/** Generous bounds for a shared, noisy machine; the old parsers took 15-25 s and gigabytes here. */
const MAX_SECONDS = 5;
const MAX_GROWTH_MIB = 300;

interface Answer {
  /** HTTP status, or the Connect code's name for RPCs ("InvalidArgument", "OK"). */
  code: number | string;
  message: string;
}

/** Runs one attack, bounding its time and the growth of the process' peak RSS (server and client share it). */
async function measured(what: string, attack: () => Promise<Answer>): Promise<Answer> {
  const peakBefore = process.resourceUsage().maxRSS;
  const started = performance.now();
  const answer = await attack();
  const seconds = (performance.now() - started) / 1000;
  const growthMiB = (process.resourceUsage().maxRSS - peakBefore) / 1024;
  assert.ok(seconds < MAX_SECONDS, `${what}: answered in ${seconds.toFixed(2)} s`);
  assert.ok(growthMiB < MAX_GROWTH_MIB, `${what}: peak RSS grew by ${growthMiB.toFixed(0)} MiB`);
  return answer;
}

function expectRefusal(what: string, answer: Answer, code: number | string, phrase: string | RegExp): void {
  assert.equal(answer.code, code, `${what}: ${answer.message}`);
  if (typeof phrase === "string") assert.ok(answer.message.includes(phrase), `${what}: "${answer.message.slice(0, 300)}" lacks "${phrase}"`);
  else assert.match(answer.message, phrase, what);
}

async function post(url: string, body: string, type = "application/json"): Promise<Answer> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": type }, body });
  const json = (await res.json()) as { message?: string; error?: string };
  return { code: res.status, message: json.message ?? json.error ?? JSON.stringify(json) };
}

async function rpc(call: () => Promise<unknown>): Promise<Answer> {
  try {
    await call();
    return { code: "OK", message: "" };
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: Code[e.code]!, message: e.rawMessage };
  }
}

function transports(url: string): Record<string, Transport> {
  return {
    gRPC: createGrpcTransport({ baseUrl: url }),
    "gRPC-Web": createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" }),
    Connect: createConnectTransport({ baseUrl: url, httpVersion: "1.1" }),
    "Connect binary": createConnectTransport({ baseUrl: url, httpVersion: "1.1", useBinaryFormat: true }),
  };
}

// --- Request bodies, built once.

/** The first row names [15001, 10000] (150 M elements): the old parser allocated that before seeing row 1 is a scalar. */
const raggedData = (leaf: unknown) => [new Array(10_000).fill(leaf), ...new Array(15_000).fill(leaf)];
/** One record of 100,000 distinct keys (~1.5 MB): the old parser looked each up with Array.includes (16 s). */
const wideRecord = JSON.stringify({ dataframe_records: [Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i]))] });
/** 300 records of 300 keys each: 300 x 90,000 cells backed by no byte (16 s, 209 MB before). */
const sparseRecords = JSON.stringify({
  dataframe_records: Array.from({ length: 300 }, (_, r) => Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`c${r}_${i}`, 1]))),
});
const PROTOTYPE_KEYS = ["constructor", "__proto__", "toString", "hasOwnProperty"];
const irisRow = [5.1, 3.5, 1.4, 0.2];
const oipIris = (extra: Record<string, unknown> = {}) => JSON.stringify({ inputs: [{ name: "input", datatype: "FP32", shape: [1, 4], data: irisRow }], ...extra });
const oipOne = (name: string, datatype: string, value: unknown) => JSON.stringify({ inputs: [{ name, datatype, shape: [1], data: [value] }] });
const deepObject = (depth: number) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
const CSV_HEADER = iris.columns.map((c) => c).join(",");

/** A PredictRequest whose inputs map holds the key "__proto__": protobuf-es clients cannot build one, so it rides as raw field bytes. */
function predictWithProtoKey(): MessageInitShape<typeof PredictRequestSchema> {
  const tensor = toBinary(TensorSchema, create(TensorSchema, { dtype: DataType.FLOAT32, shape: [1n, 4n], floatData: irisRow }));
  const entry = new BinaryWriter().tag(1, WireType.LengthDelimited).string("__proto__").tag(2, WireType.LengthDelimited).bytes(tensor).finish();
  const message = create(PredictRequestSchema, { modelName: "iris" });
  // Unknown-field data is written as is after the tag: it carries its own length prefix.
  message.$unknown = [{ no: 3, wireType: WireType.LengthDelimited, data: new BinaryWriter().bytes(entry).finish() }];
  return message;
}

const oipInput = (init: Partial<MessageInitShape<typeof ModelInferRequestSchema>>) =>
  create(ModelInferRequestSchema, { modelName: "iris", ...init } as MessageInitShape<typeof ModelInferRequestSchema>);
const fp32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

type RpcAttack = [what: string, call: (t: Transport) => Promise<unknown>, code: string, phrase: string | RegExp, transports?: string[]];

/** Every RPC attack: service call, expected code and message phrase, and the transports that can send it (default all). */
function rpcAttacks(): RpcAttack[] {
  const seed = (value: string) => (t: Transport) => createClient(MLflow, t).predict({ value });
  const typed = (init: MessageInitShape<typeof PredictRequestSchema>) => (t: Transport) => createClient(ModelService, t).predict(init);
  const oip = (init: Partial<MessageInitShape<typeof ModelInferRequestSchema>>) => (t: Transport) => createClient(GRPCInferenceService, t).modelInfer(oipInput(init));
  const irisTensor = (init: { shape: bigint[]; floatData?: number[]; rawData?: Uint8Array }): MessageInitShape<typeof PredictRequestSchema> => ({
    modelName: "iris",
    inputs: { input: { dtype: DataType.FLOAT32, ...init } },
  });
  return [
    ["MLflow/predict: ragged lists named by their first row", seed(JSON.stringify({ inputs: raggedData(1) })), "InvalidArgument", "ragged nested lists at [1] (expected 10000 items)"],
    ["MLflow/predict: one record of 100,000 keys", seed(wideRecord), "InvalidArgument", 'missing column "sepal length (cm)"'],
    ["MLflow/predict: 300 sparse records", seed(sparseRecords), "InvalidArgument", 'missing column "sepal length (cm)"'],
    ...PROTOTYPE_KEYS.map((k): RpcAttack => [
      `MLflow/predict: instances named "${k}"`,
      seed(`{"instances": [{"${k}": 1}]}`),
      "InvalidArgument",
      `has no input "${k}"`,
    ]),
    ["MLflow/predict: 1e300 into float32", seed('{"inputs": [[1e300, 3.5, 1.4, 0.2]]}'), "InvalidArgument", "expected float32, got 1e+300, out of range"],
    ["ModelService/Predict: float16 70000", typed({ modelName: "dtypes", inputs: { float16: { dtype: DataType.FLOAT16, shape: [1n], floatData: [70000] } } }), "InvalidArgument", "70000 is out of range for float16"],
    ["ModelService/Predict: int8 300", typed({ modelName: "dtypes", inputs: { int8: { dtype: DataType.INT8, shape: [1n], intData: [300] } } }), "InvalidArgument", "300 is out of range for int8"],
    ["ModelService/Predict: a shape of 2^52 elements with 4 values", typed(irisTensor({ shape: [1n << 26n, 1n << 26n], floatData: irisRow })), "InvalidArgument", "has 4 values for shape [67108864, 67108864]"],
    ["ModelService/Predict: raw_data of 16 bytes for 2^52 elements", typed(irisTensor({ shape: [1n << 26n, 1n << 26n], rawData: fp32(irisRow) })), "InvalidArgument", "raw data has 16 bytes"],
    ["ModelService/Predict: a shape of rank 100,000", typed(irisTensor({ shape: new Array<bigint>(100_000).fill(1n), floatData: irisRow })), "InvalidArgument", "rank 100000, more than 32"],
    // Binary only: Connect JSON drops unknown fields (it has its own attack below, sent with fetch).
    ["ModelService/Predict: an input map key \"__proto__\"", typed(predictWithProtoKey()), "InvalidArgument", 'has no input "__proto__"', ["gRPC", "gRPC-Web", "Connect binary"]],
    [
      "ModelInfer: raw_input_contents and contents both",
      oip({ inputs: [{ name: "input", datatype: "FP32", shape: [1n, 4n], contents: { fp32Contents: [9, 9, 9, 9] } }], rawInputContents: [fp32(irisRow)] }),
      "InvalidArgument",
      'input "input" has contents although the request uses raw_input_contents',
    ],
    ["ModelInfer: FP16 70000", oip({ modelName: "dtypes", inputs: [{ name: "float16", datatype: "FP16", shape: [1n], contents: { fp32Contents: [70000] } }] }), "InvalidArgument", "70000 is out of range for float16"],
    ["ModelInfer: UINT8 256", oip({ modelName: "dtypes", inputs: [{ name: "uint8", datatype: "UINT8", shape: [1n], contents: { uintContents: [256] } }] }), "InvalidArgument", "256 is out of range for uint8"],
    ["ModelInfer: an input named \"__proto__\"", oip({ inputs: [{ name: "__proto__", datatype: "FP32", shape: [1n, 4n], contents: { fp32Contents: irisRow } }] }), "InvalidArgument", 'has no input "__proto__"'],
    ["ModelInfer: one input twice", oip({ inputs: [0, 1].map(() => ({ name: "input", datatype: "FP32", shape: [1n, 4n], contents: { fp32Contents: irisRow } })) }), "InvalidArgument", 'input "input" is sent twice'],
    [
      "ModelInfer: one output asked for 20,000 times",
      oip({ inputs: [{ name: "input", datatype: "FP32", shape: [1n, 4n], contents: { fp32Contents: irisRow } }], outputs: new Array(20_000).fill({ name: "probabilities" }) }),
      "InvalidArgument",
      'output "probabilities" is requested twice',
    ],
    ["ModelInfer: raw BYTES of 2^52 elements", oip({ inputs: [{ name: "input", datatype: "BYTES", shape: [1n << 26n, 1n << 26n] }], rawInputContents: [new Uint8Array([1, 0, 0, 0, 65])] }), "InvalidArgument", "has 1 raw elements for shape"],
    // Old: a 1 MiB name in the message made the gRPC trailer too large: INTERNAL (NGHTTP2_FRAME_SIZE_ERROR).
    ["ModelInfer: an input name of 1 MiB", oip({ inputs: [{ name: "x".repeat(2 ** 20), datatype: "FP32", shape: [1n, 4n], contents: { fp32Contents: irisRow } }] }), "InvalidArgument", /^model "iris" has no input "x{90,}\.\.\." \(its columns: .{0,900}$/],
  ];
}

/** Every REST attack: path, body, content type, expected status and message phrase. */
function restAttacks(): Array<[string, string, string, string, number, string | RegExp]> {
  const json = "application/json";
  return [
    // Old: 25 s and 2.3 GB, then a 500 (the BYTES storage of 150 M elements).
    ["OIP REST: BYTES lists ragged against their first row", "/v2/models/iris/infer", JSON.stringify({ inputs: [{ name: "input", datatype: "BYTES", shape: [1, 4], data: raggedData("a") }] }), json, 400, "ragged nested lists at [1] (expected 10000 items)"],
    ["OIP REST: FP32 lists ragged against their first row", "/v2/models/iris/infer", JSON.stringify({ inputs: [{ name: "input", datatype: "FP32", shape: [1, 4], data: raggedData(1) }] }), json, 400, "ragged nested lists at [1]"],
    ["/invocations: ragged inputs", "/invocations", JSON.stringify({ inputs: raggedData(1) }), json, 400, "ragged nested lists at [1] (expected 10000 items)"],
    ["/invocations: one record of 100,000 keys", "/invocations", wideRecord, json, 400, 'missing column "sepal length (cm)"'],
    ["/invocations: 300 sparse records", "/invocations", sparseRecords, json, 400, 'missing column "sepal length (cm)"'],
    ["/invocations: CSV with a header of 400,000 columns", "/invocations", `${Array.from({ length: 400_000 }, (_, i) => `c${i}`).join(",")}\n${new Array(400_000).fill(1).join(",")}\n`, "text/csv", 400, 'missing column "sepal length (cm)"'],
    ["/invocations: 4 MiB of CSV, the last cell bad", "/invocations", `${CSV_HEADER}\n${"5.1,3.5,1.4,0.2\n".repeat(250_000)}5.1,3.5,1.4,x\n`, "text/csv", 400, 'input "petal width (cm)": expected float64, got string "x" at [250000]'],
    ["/invocations: CSV rows of another width than the header", "/invocations", `${CSV_HEADER}\n1,2\n`, "text/csv", 400, "record 2 has 2 fields, the header has 4"],
    ...PROTOTYPE_KEYS.map((k): [string, string, string, string, number, string] => [`/invocations: instances named "${k}"`, "/invocations", `{"instances": [{"${k}": 1}]}`, json, 400, `has no input "${k}"`]),
    ["/invocations: 1e300 into float32", "/invocations", '{"inputs": [[1e300, 3.5, 1.4, 0.2]]}', json, 400, "expected float32, got 1e+300, out of range at [0, 0]"],
    ["OIP REST: FP32 1e300", "/v2/models/iris/infer", JSON.stringify({ inputs: [{ name: "input", datatype: "FP32", shape: [1, 4], data: [1e300, 1, 1, 1] }] }), json, 400, "expected float32, got 1e+300, out of range"],
    ["OIP REST: FP16 70000", "/v2/models/dtypes/infer", oipOne("float16", "FP16", 70000), json, 400, "expected float16, got 70000, out of range"],
    ["OIP REST: INT64 1e20", "/v2/models/dtypes/infer", oipOne("int64", "INT64", 1e20), json, 400, "expected int64, got 100000000000000000000, out of range"],
    ["OIP REST: UINT8 256", "/v2/models/dtypes/infer", oipOne("uint8", "UINT8", 256), json, 400, "expected uint8, got 256, out of range"],
    // Old: 11 s and 545 MB for 0.5 MB of request (the output copied 20,000 times).
    ["OIP REST: one output asked for 20,000 times", "/v2/models/iris/infer", oipIris({ outputs: new Array(20_000).fill({ name: "probabilities" }) }), json, 400, 'output "probabilities" is requested twice'],
    ["OIP REST: outputs not a list", "/v2/models/iris/infer", oipIris({ outputs: "label" }), json, 400, '"outputs" must be a list'],
    ["OIP REST: parameters not an object", "/v2/models/iris/infer", oipIris({ parameters: "x" }), json, 400, '"parameters" must be an object'],
    // Old: 500 (JSON.stringify of the value for the message overflowed the stack).
    ["OIP REST: a param nested 100,000 deep", "/v2/models/multi/infer", `{"inputs": [{"name": "a", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}, {"name": "b", "datatype": "INT64", "shape": [1], "data": [1]}], "parameters": {"scale": ${deepObject(100_000)}}}`, json, 400, 'param "scale" expects double, got an object'],
    ["OIP REST: data nested 100,000 deep", "/v2/models/iris/infer", `{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": ${"[".repeat(100_000)}1${"]".repeat(100_000)}}]}`, json, 400, "nested deeper than 32 levels"],
    ["OIP REST: a shape of strings", "/v2/models/iris/infer", JSON.stringify({ inputs: [{ name: "input", datatype: "FP32", shape: ["1", [4]], data: irisRow }] }), json, 400, 'input "input" has no shape, a list of numbers'],
    ["OIP REST: an input named \"constructor\"", "/v2/models/iris/infer", JSON.stringify({ inputs: [{ name: "constructor", datatype: "FP32", shape: [1, 4], data: irisRow }] }), json, 400, 'has no input "constructor"'],
    ["OIP REST: 4 MiB of FP32 data, the last value bad", "/v2/models/iris/infer", JSON.stringify({ inputs: [{ name: "input", datatype: "FP32", shape: [250_000, 4], data: [...new Array(999_999).fill(1.5), "x"] }] }), json, 400, 'expected float32, got string "x" at [999999]'],
    // The typed API's Connect JSON: JSON.parse keeps "__proto__" as a key, protobuf-es makes it the map's prototype.
    ["Connect JSON ModelService/Predict: an input map key \"__proto__\"", "/mlflow.serving.v1.ModelService/Predict", `{"modelName": "iris", "inputs": {"__proto__": {"dtype": "DATA_TYPE_FLOAT32", "shape": ["1", "4"], "floatData": [5.1, 3.5, 1.4, 0.2]}}}`, json, 400, 'has no input "__proto__"'],
  ];
}

/** Checks that the server answers health checks and predicts normally on every front. */
async function assertServesNormally(url: string, byName: Record<string, Transport>): Promise<void> {
  assert.equal((await fetch(`${url}/ping`)).status, 200);
  const rest = await fetch(`${url}/invocations`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ inputs: iris.rows }) });
  assert.deepEqual(((await rest.json()) as { predictions: { label: number[] } }).predictions.label, iris.label);
  const oipRest = await post(`${url}/v2/models/iris/infer`, oipIris({ parameters: JSON.parse('{"__proto__": {"x": 1}, "toString": 1}') }));
  assert.equal(oipRest.code, 200, oipRest.message);
  for (const [name, transport] of Object.entries(byName)) {
    const seed = await createClient(MLflow, transport).predict({ value: JSON.stringify({ inputs: iris.rows }) });
    assert.deepEqual((JSON.parse(seed.value) as { predictions: { label: number[] } }).predictions.label, iris.label, name);
    const typed = await createClient(ModelService, transport).predict({ modelName: "iris", inputs: { input: { dtype: DataType.FLOAT32, shape: [1n, 4n], floatData: irisRow } } });
    assert.equal(typed.outputs.label?.int64Data[0], BigInt(iris.label[0]!), name);
    const oip = await createClient(GRPCInferenceService, transport).modelInfer(oipInput({ inputs: [{ name: "input", datatype: "FP32", shape: [1n, 4n] }], rawInputContents: [fp32(irisRow)] }));
    assert.equal(oip.rawOutputContents.length, 2, name);
  }
}

describe("adversarial requests to the parsers", () => {
  let lean: RunningServer;
  let full: RunningServer;
  let clients: Array<[path: string, transports: Record<string, Transport>]>;
  before(async () => {
    [lean, full] = await Promise.all([startServer([IRIS, DTYPES, MULTI]), startServer([IRIS, DTYPES, MULTI], { fastPath: false })]);
    clients = [
      ["lean", transports(lean.url)],
      ["full", transports(full.url)],
    ];
  });
  after(() => Promise.all([lean.close(), full.close()]));

  for (const [what, path, body, type, status, phrase] of restAttacks()) {
    it(`refuses ${what} with ${status}, fast and in bounded memory`, async () => {
      expectRefusal(what, await measured(what, () => post(`${lean.url}${path}`, body, type)), status, phrase);
    });
  }

  it('takes a record\'s "constructor" key as a column the model does not have, and predicts', async () => {
    const record = Object.fromEntries([["constructor", 1], ...iris.columns.map((c, i) => [c, irisRow[i]])]);
    const answer = await post(`${lean.url}/invocations`, JSON.stringify({ dataframe_records: [record] }));
    assert.equal(answer.code, 200, answer.message);
  });

  for (const [what, call, code, phrase, only] of rpcAttacks()) {
    it(`refuses ${what} with ${code} on gRPC, gRPC-Web and Connect, on the lean and the full path`, async () => {
      for (const [path, byName] of clients) {
        for (const [name, transport] of Object.entries(byName)) {
          if (only && !only.includes(name)) continue;
          const where = `${what} (${name}, ${path} path)`;
          expectRefusal(where, await measured(where, () => rpc(() => call(transport))), code, phrase);
        }
      }
    });
  }

  it("answers health checks and predicts normally afterwards, on every front and path", async () => {
    await assertServesNormally(lean.url, clients[0]![1]);
    await assertServesNormally(full.url, clients[1]![1]);
  });
});
