import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { GRPCInferenceService, InferTensorContentsSchema } from "../../gen/inference/grpc_predict_v2_pb.js";
import { curlPost } from "../helpers/curl.js";
import { PROBABILITY_TOLERANCE, reference } from "../helpers/reference.js";
import { makeRepository } from "../helpers/repository.js";
import { DTYPES, GREETER, IRIS, MULTI, ROOT, type RunningServer, SLOW, startServer } from "../helpers/server.js";
import { DEBIAN_PYTHON, commandExists, pythonHas, toolSkip } from "../helpers/tools.js";

const exec = promisify(execFile);
const { iris, multi } = reference;

function assertIrisProbabilities(values: number[], rows = iris.rows.length): void {
  assert.equal(values.length, rows * 3);
  values.forEach((p, k) => assert.ok(Math.abs(p - iris.probabilities[Math.floor(k / 3)]![k % 3]!) < PROBABILITY_TOLERANCE, `element ${k}`));
}

/** One example value pair per OIP datatype, with what comes back over JSON. */
const DATATYPE_VALUES: Record<string, unknown[]> = {
  BOOL: [true, false],
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  INT64: [-9007199254740991, 9007199254740991],
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  UINT64: [0, 9007199254740991],
  FP16: [0.5, -65504],
  FP32: [0.25, -1.5],
  FP64: [1e-300, -2.5],
  BYTES: ["héllo", ""],
};
const DTYPE_OF: Record<string, string> = {
  BOOL: "bool", INT8: "int8", INT16: "int16", INT32: "int32", INT64: "int64", UINT8: "uint8", UINT16: "uint16", UINT32: "uint32",
  UINT64: "uint64", FP16: "float16", FP32: "float32", FP64: "float64", BYTES: "string",
};

describe("Open Inference Protocol", () => {
  let server: RunningServer;
  let repo: string;
  before(async () => {
    repo = makeRepository({ "iris/1": IRIS, "iris/2": IRIS, greeter: GREETER, multi: MULTI, dtypes: DTYPES, slow: SLOW });
    server = await startServer([repo]);
  });
  after(() => server.close());

  it("serves a repository folder: every model under its name, the newest version", async () => {
    const res = await fetch(`${server.url}/v2/repository/index`, { method: "POST" });
    assert.deepEqual(await res.json(), [
      { name: "dtypes", version: "", state: "READY", reason: "" },
      { name: "greeter", version: "", state: "READY", reason: "" },
      { name: "iris", version: "2", state: "READY", reason: "" },
      { name: "multi", version: "", state: "READY", reason: "" },
      { name: "slow", version: "", state: "READY", reason: "" },
    ]);
  });

  it("answers health, server and model metadata over gRPC (connect-node)", async () => {
    const client = createClient(GRPCInferenceService, createGrpcTransport({ baseUrl: server.url }));
    assert.equal((await client.serverLive({})).live, true);
    assert.equal((await client.serverReady({})).ready, true);
    assert.equal((await client.modelReady({ name: "iris" })).ready, true);
    assert.equal((await client.modelReady({ name: "iris", version: "1" })).ready, false);
    assert.deepEqual((await client.serverMetadata({})).extensions, ["model_repository"]);
    const meta = await client.modelMetadata({ name: "iris" });
    assert.deepEqual([meta.name, meta.versions, meta.platform], ["iris", ["2"], "onnxruntime_onnx"]);
    assert.deepEqual(meta.inputs.map((t) => [t.name, t.datatype, t.shape]), iris.columns.map((c) => [c, "FP64", [-1n]]));
    assert.deepEqual(meta.outputs.map((t) => [t.name, t.datatype, t.shape]), [["label", "INT64", [-1n]], ["probabilities", "FP32", [-1n, 3n]]]);
    // Without a signature, the graph is the metadata.
    const slow = await client.modelMetadata({ name: "slow" });
    assert.deepEqual(slow.inputs.map((t) => [t.name, t.datatype, t.shape]), [["n", "INT64", [1n]]]);
  });

  it("ModelInfer with typed contents, requested outputs and the request id", async () => {
    for (const transport of [createGrpcTransport({ baseUrl: server.url }), createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })]) {
      const client = createClient(GRPCInferenceService, transport);
      const res = await client.modelInfer({
        modelName: "iris",
        id: "req-1",
        inputs: [{ name: "input", datatype: "FP32", shape: [BigInt(iris.rows.length), 4n], contents: { fp32Contents: iris.rows.flat() } }],
        outputs: [{ name: "probabilities" }, { name: "label" }],
      });
      assert.deepEqual([res.modelName, res.modelVersion, res.id], ["iris", "2", "req-1"]);
      assert.deepEqual(res.outputs.map((o) => [o.name, o.datatype, o.shape]), [["probabilities", "FP32", [BigInt(iris.rows.length), 3n]], ["label", "INT64", [BigInt(iris.rows.length)]]]);
      assertIrisProbabilities(res.outputs[0]!.contents!.fp32Contents);
      assert.deepEqual(res.outputs[1]!.contents!.int64Contents.map(Number), iris.label);
    }
  });

  it("round-trips raw_input_contents into raw_output_contents for every datatype", async () => {
    const client = createClient(GRPCInferenceService, createGrpcTransport({ baseUrl: server.url }));
    const floats = new Float32Array(iris.rows.flat());
    const res = await client.modelInfer({
      modelName: "iris",
      inputs: [{ name: "input", datatype: "FP32", shape: [BigInt(iris.rows.length), 4n] }],
      rawInputContents: [new Uint8Array(floats.buffer)],
    });
    const byName = Object.fromEntries(res.outputs.map((o, i) => [o.name, res.rawOutputContents[i]!]));
    assertIrisProbabilities([...new Float32Array(byName.probabilities!.slice().buffer)]);
    assert.deepEqual([...new BigInt64Array(byName.label!.slice().buffer)].map(Number), iris.label);
    assert.equal(res.outputs[0]!.contents, undefined);

    // Every datatype through the identity model: the same bytes come back (BYTES length-prefixed).
    const raw: Record<string, Uint8Array> = {};
    for (const datatype of Object.keys(DATATYPE_VALUES)) {
      if (datatype === "BYTES") {
        const parts = ["héllo", ""].map((s) => new TextEncoder().encode(s));
        raw[datatype] = new Uint8Array(parts.flatMap((p) => [...new Uint8Array(new Uint32Array([p.length]).buffer), ...p]));
      } else {
        const size = { BOOL: 1, INT8: 1, UINT8: 1, INT16: 2, UINT16: 2, FP16: 2, INT32: 4, UINT32: 4, FP32: 4 }[datatype] ?? 8;
        raw[datatype] = datatype === "BOOL" ? new Uint8Array([1, 0]) : Uint8Array.from({ length: 2 * size }, (_, i) => (i * 29 + 7) & 0x3f);
      }
    }
    const all = await client.modelInfer({
      modelName: "dtypes",
      inputs: Object.keys(raw).map((d) => ({ name: DTYPE_OF[d]!, datatype: d, shape: [2n] })),
      rawInputContents: Object.values(raw),
    });
    all.outputs.forEach((o, i) => assert.deepEqual(all.rawOutputContents[i], raw[o.datatype], o.name));
    assert.equal(all.outputs.length, 13);
  });

  it("refuses bad inputs with the spec's errors over gRPC", async () => {
    const client = createClient(GRPCInferenceService, createGrpcTransport({ baseUrl: server.url }));
    const input = (over: object) => ({ name: "input", datatype: "FP32", shape: [1n, 4n], contents: create(InferTensorContentsSchema, { fp32Contents: [1, 2, 3, 4] }), ...over });
    const cases: Array<[string, object, Code, RegExp]> = [
      ["an unknown model", { modelName: "nope", inputs: [input({})] }, Code.NotFound, /model "nope" is not served here/],
      ["an unknown version", { modelName: "iris", modelVersion: "1", inputs: [input({})] }, Code.NotFound, /no version "1"/],
      ["a wrong datatype", { modelName: "iris", inputs: [input({ datatype: "BYTES", contents: { bytesContents: [1, 2, 3, 4].map((n) => new Uint8Array([48 + n])) } })] }, Code.InvalidArgument, /input "input" expects dtype float32, got string/],
      ["an unknown datatype", { modelName: "iris", inputs: [input({ datatype: "FP8" })] }, Code.InvalidArgument, /unknown datatype "FP8"/],
      ["shape and data that disagree", { modelName: "iris", inputs: [input({ shape: [2n, 4n] })] }, Code.InvalidArgument, /has 4 values for shape \[2, 4\]/],
      ["a missing input", { modelName: "multi", inputs: [{ name: "a", datatype: "FP64", shape: [1n, 2n], contents: { fp64Contents: [1, 2] } }] }, Code.InvalidArgument, /missing input "b"/],
      ["an unknown output", { modelName: "iris", inputs: [input({})], outputs: [{ name: "logits" }] }, Code.InvalidArgument, /no output "logits"/],
      ["raw contents for fewer inputs", { modelName: "iris", inputs: [input({}), input({ name: "x" })], rawInputContents: [new Uint8Array(16)] }, Code.InvalidArgument, /raw_input_contents has 1 entries for 2 inputs/],
      ["a bad param", { modelName: "multi", parameters: { scale: { parameterChoice: { case: "stringParam", value: "x" } } }, inputs: [{ name: "a", datatype: "FP64", shape: [1n, 2n], contents: { fp64Contents: [1, 2] } }, { name: "b", datatype: "INT64", shape: [1n], contents: { int64Contents: [1n] } }] }, Code.InvalidArgument, /param "scale" expects double/],
    ];
    for (const [what, req, code, message] of cases) {
      const error = await client.modelInfer(req).then(
        () => assert.fail(`${what}: succeeded`),
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(error.code, code, `${what}: ${error.rawMessage}`);
      assert.match(error.rawMessage, message, what);
    }
  });

  it("answers every REST endpoint, every datatype over JSON, flat or nested data", async (t) => {
    if (toolSkip("curl", commandExists("curl"), "apt-get install -y curl")) return t.skip("curl missing");
    const get = async (path: string) => {
      const { stdout } = await exec("curl", ["-sS", "-w", "\n%{http_code}", `${server.url}${path}`]);
      const at = stdout.lastIndexOf("\n");
      return { status: Number(stdout.slice(at + 1)), json: JSON.parse(stdout.slice(0, at)) as Record<string, unknown> };
    };
    const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { version: string };
    assert.deepEqual(await get("/v2"), { status: 200, json: { name: "mlflow-connect", version, extensions: ["model_repository"] } });
    assert.deepEqual(await get("/v2/health/live"), { status: 200, json: { live: true } });
    assert.deepEqual(await get("/v2/health/ready"), { status: 200, json: { ready: true } });
    assert.deepEqual(await get("/v2/models/iris/ready"), { status: 200, json: { name: "iris", ready: true } });
    assert.deepEqual(await get("/v2/models/iris/versions/1/ready"), { status: 400, json: { name: "iris", ready: false } });
    assert.equal((await get("/v2/models/iris/versions/2")).json.name, "iris");

    const irisRes = await curlPost(`${server.url}/v2/models/iris/versions/2/infer`, JSON.stringify({
      id: "r1",
      inputs: [{ name: "input", shape: [iris.rows.length, 4], datatype: "FP32", data: iris.rows }],
    }));
    assert.equal(irisRes.status, 200);
    const body = irisRes.json as { id: string; model_version: string; outputs: Array<{ name: string; data: number[]; shape: number[] }> };
    assert.deepEqual([body.id, body.model_version], ["r1", "2"]);
    assert.deepEqual(body.outputs[0]!.data, iris.label);
    assertIrisProbabilities(body.outputs[1]!.data);

    // Columns by name, as the metadata lists them.
    const byColumn = await curlPost(`${server.url}/v2/models/iris/infer`, JSON.stringify({
      inputs: iris.columns.map((c, i) => ({ name: c, shape: [iris.rows.length], datatype: "FP64", data: iris.rows.map((r) => r[i]) })),
      outputs: [{ name: "label" }],
    }));
    assert.deepEqual((byColumn.json as { outputs: Array<{ data: number[] }> }).outputs[0]!.data, iris.label);

    const everything = await curlPost(`${server.url}/v2/models/dtypes/infer`, JSON.stringify({
      inputs: Object.entries(DATATYPE_VALUES).map(([datatype, data]) => ({ name: DTYPE_OF[datatype], shape: [2], datatype, data })),
    }));
    assert.equal(everything.status, 200, JSON.stringify(everything.json));
    const everyOutput = (everything.json as { outputs: Array<{ name: string; datatype: string; shape: number[]; data: unknown[] }> }).outputs;
    assert.equal(everyOutput.length, Object.keys(DATATYPE_VALUES).length);
    for (const o of everyOutput) {
      assert.deepEqual([o.datatype, o.shape, o.data], [o.name === "out_string" ? "BYTES" : Object.keys(DTYPE_OF).find((k) => `out_${DTYPE_OF[k]}` === o.name), [2], DATATYPE_VALUES[o.datatype]], o.name);
    }

    const multiRes = await curlPost(`${server.url}/v2/models/multi/infer`, JSON.stringify({
      parameters: { scale: 2 },
      inputs: [
        { name: "a", shape: [3, 2], datatype: "FP64", data: multi.a.flat() },
        { name: "b", shape: [3], datatype: "INT64", data: multi.b },
      ],
    }));
    assert.deepEqual((multiRes.json as { outputs: Array<{ name: string; data: number[] }> }).outputs.map((o) => [o.name, o.data]), [["sum", multi.sum], ["doubled", multi.doubled]]);
  });

  it("answers bad REST requests with {\"error\"} and the spec's status", async (t) => {
    if (toolSkip("curl", commandExists("curl"), "apt-get install -y curl")) return t.skip("curl missing");
    const input = { name: "input", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] };
    const cases: Array<[string, string, object | string, number, RegExp]> = [
      ["an unknown model", "/v2/models/nope/infer", { inputs: [input] }, 404, /model "nope" is not served here/],
      ["a wrong datatype", "/v2/models/iris/infer", { inputs: [{ ...input, datatype: "BYTES", data: ["1", "2", "3", "4"] }] }, 400, /input "input" expects dtype float32, got string/],
      ["data that does not fit the datatype", "/v2/models/iris/infer", { inputs: [{ ...input, data: [1, 2, "x", 4] }] }, 400, /expected float32, got string "x"/],
      ["shape and data that disagree", "/v2/models/iris/infer", { inputs: [{ ...input, shape: [2, 4] }] }, 400, /input "input" has 4 elements for shape \[2, 4\]/],
      ["a missing input", "/v2/models/multi/infer", { inputs: [{ name: "a", shape: [1, 2], datatype: "FP64", data: [1, 2] }] }, 400, /missing input "b"/],
      ["no inputs", "/v2/models/iris/infer", {}, 400, /needs "inputs"/],
      ["a body that is not JSON", "/v2/models/iris/infer", "{", 400, /JSON/],
    ];
    for (const [what, path, body, status, message] of cases) {
      const res = await curlPost(`${server.url}${path}`, typeof body === "string" ? body : JSON.stringify(body));
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.json)}`);
      assert.deepEqual(Object.keys(res.json as object), ["error"], what);
      assert.match((res.json as { error: string }).error, message, what);
    }
  });

  it("answers python grpcio stubs generated from proto/inference/grpc_predict_v2.proto", async (t) => {
    const present = pythonHas("grpc") && pythonHas("grpc_tools.protoc");
    if (toolSkip("python3-grpcio / python3-grpc-tools", present, "apt-get install -y python3-grpcio python3-grpc-tools")) return t.skip("python grpcio missing");
    const stubs = mkdtempSync(join(tmpdir(), "oip-stubs-"));
    await exec(DEBIAN_PYTHON, ["-m", "grpc_tools.protoc", `-I${ROOT}proto/inference`, `--python_out=${stubs}`, `--grpc_python_out=${stubs}`, "grpc_predict_v2.proto"]);
    const { stdout } = await exec(DEBIAN_PYTHON, [`${ROOT}test/clients/oip_client.py`, stubs, `127.0.0.1:${server.port}`, "iris", JSON.stringify(iris.rows)]);
    const out = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(out.ready, true);
    assert.equal(out.platform, "onnxruntime_onnx");
    assert.deepEqual(out.inputs, iris.columns.map((c) => [c, "FP64", [-1]]));
    assert.equal(out.id, "py-1");
    assert.deepEqual(out.label, iris.label);
    assert.deepEqual(out.raw_label, iris.label);
    assertIrisProbabilities(out.probabilities as number[]);
    assert.deepEqual(out.error, ["NOT_FOUND", 'model "nope" is not served here (served: dtypes, greeter, iris, multi, slow)']);
  });
});
