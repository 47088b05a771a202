import assert from "node:assert/strict";
import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type MessageInitShape, create, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ModelService, type PredictStreamRequest, SignatureKind } from "../../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType, type Tensor, TensorSchema } from "../../gen/mlflow/serving/v1/tensor_pb.js";
import { PROBABILITY_TOLERANCE, reference } from "../helpers/reference.js";
import { DTYPES, GREETER, IRIS, MULTI, ROOT, type RunningServer, TABULAR, startServer } from "../helpers/server.js";

const { iris, multi, tabular } = reference;

function transports(url: string): Record<string, Transport> {
  return {
    gRPC: createGrpcTransport({ baseUrl: url }),
    "gRPC-Web": createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" }),
    Connect: createConnectTransport({ baseUrl: url, httpVersion: "1.1" }),
  };
}

const irisInput = (rows: number[][]): Tensor => create(TensorSchema, { dtype: DataType.FLOAT32, shape: [BigInt(rows.length), 4n], floatData: rows.flat() });

function assertIrisOutputs(outputs: Record<string, Tensor>, rows: number[][] = iris.rows): void {
  const n = rows.length;
  assert.deepEqual(outputs.label!.shape, [BigInt(n)]);
  assert.deepEqual(outputs.label!.int64Data.map(Number), iris.label.slice(0, n));
  assert.deepEqual(outputs.probabilities!.shape, [BigInt(n), 3n]);
  assert.equal(outputs.probabilities!.floatData.length, n * 3);
  outputs.probabilities!.floatData.forEach((p, k) => assert.ok(Math.abs(p - iris.probabilities[Math.floor(k / 3)]![k % 3]!) < PROBABILITY_TOLERANCE));
}

describe("mlflow.serving.v1.ModelService", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([IRIS, MULTI, TABULAR, GREETER, DTYPES]);
  });
  after(() => server.close());

  it("Predict runs the default model on named tensors over gRPC, gRPC-Web and Connect", async () => {
    for (const [name, transport] of Object.entries(transports(server.url))) {
      const res = await createClient(ModelService, transport).predict({ inputs: { input: irisInput(iris.rows) } });
      assert.equal(res.modelName, "iris", name);
      assertIrisOutputs(res.outputs);
    }
  });

  it("Predict takes a column-based model's columns by name", async () => {
    const client = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
    const inputs = Object.fromEntries(
      iris.columns.map((c, i) => [c, create(TensorSchema, { dtype: DataType.FLOAT64, shape: [BigInt(iris.rows.length)], doubleData: iris.rows.map((r) => r[i]!) })]),
    );
    assertIrisOutputs((await client.predict({ modelName: "iris", inputs })).outputs);
  });

  it("Predict answers raw_data with raw_data (little-endian)", async () => {
    const client = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
    const floats = new Float32Array(iris.rows.flat());
    const input = create(TensorSchema, { dtype: DataType.FLOAT32, shape: [BigInt(iris.rows.length), 4n], rawData: new Uint8Array(floats.buffer) });
    const { outputs } = await client.predict({ modelName: "iris", inputs: { input } });
    const raw = outputs.probabilities!.rawData;
    const probabilities = new Float32Array(raw.slice().buffer);
    assert.equal(probabilities.length, iris.rows.length * 3);
    probabilities.forEach((p, k) => assert.ok(Math.abs(p - iris.probabilities[Math.floor(k / 3)]![k % 3]!) < PROBABILITY_TOLERANCE));
    const labels = new BigInt64Array(outputs.label!.rawData.slice().buffer);
    assert.deepEqual([...labels].map(Number), iris.label);
  });

  it("Predict keeps int64 exact and checks params", async () => {
    const client = createClient(ModelService, createConnectTransport({ baseUrl: server.url, httpVersion: "2" }));
    const res = await client.predict({
      modelName: "multi",
      inputs: {
        a: create(TensorSchema, { dtype: DataType.FLOAT64, shape: [3n, 2n], doubleData: multi.a.flat() }),
        b: create(TensorSchema, { dtype: DataType.INT64, shape: [3n], int64Data: multi.b.map(BigInt) }),
      },
      params: { scale: 3, tags: ["x", "y"] },
    });
    assert.deepEqual(res.outputs.sum!.doubleData, multi.sum);
    assert.deepEqual(res.outputs.doubled!.int64Data, [6n, -14n, 18014398509480000n]);
  });

  it("Predict feeds a per-column model, casting int32 into a long column", async () => {
    const client = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
    const res = await client.predict({
      modelName: "tabular",
      inputs: {
        x: create(TensorSchema, { dtype: DataType.FLOAT64, shape: [3n], doubleData: tabular.x }),
        n: create(TensorSchema, { dtype: DataType.INT32, shape: [3n], intData: tabular.n }),
      },
    });
    assert.deepEqual(res.outputs.y!.doubleData, tabular.y);
  });

  it("Predict passes every dtype through, in typed fields and in raw_data", async () => {
    const client = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
    const typed: Record<string, MessageInitShape<typeof TensorSchema>> = {
      bool: { dtype: DataType.BOOL, boolData: [true, false] },
      int8: { dtype: DataType.INT8, intData: [-128, 127] },
      int16: { dtype: DataType.INT16, intData: [-32768, 32767] },
      int32: { dtype: DataType.INT32, intData: [-2147483648, 2147483647] },
      int64: { dtype: DataType.INT64, int64Data: [-(2n ** 63n), 2n ** 63n - 1n] },
      uint8: { dtype: DataType.UINT8, intData: [0, 255] },
      uint16: { dtype: DataType.UINT16, intData: [0, 65535] },
      uint32: { dtype: DataType.UINT32, uintData: [0, 4294967295] },
      uint64: { dtype: DataType.UINT64, uint64Data: [0n, 2n ** 64n - 1n] },
      float16: { dtype: DataType.FLOAT16, floatData: [0.5, -65504] },
      float32: { dtype: DataType.FLOAT32, floatData: [0.25, Math.fround(-1.5e38)] },
      float64: { dtype: DataType.FLOAT64, doubleData: [1e-300, -2.5] },
      string: { dtype: DataType.STRING, stringData: ["héllo", ""] },
    };
    const inputs = Object.fromEntries(Object.entries(typed).map(([n, t]) => [n, create(TensorSchema, { ...t, shape: [2n] })]));
    const { outputs } = await client.predict({ modelName: "dtypes", inputs });
    for (const [n, t] of Object.entries(inputs)) {
      const out = outputs[`out_${n}`]!;
      assert.equal(out.dtype, t.dtype, n);
      assert.deepEqual(out.shape, [2n], n);
      for (const field of ["boolData", "intData", "int64Data", "uintData", "uint64Data", "floatData", "doubleData", "stringData"] as const) {
        assert.deepEqual(out[field], t[field], `${n}.${field}`);
      }
    }
    // The same through raw_data: bytes in, the same bytes out.
    const rawInputs = Object.fromEntries(
      Object.entries(typed)
        .filter(([n]) => n !== "string")
        .map(([n]) => {
          const bytes = new Uint8Array(n === "bool" || n.endsWith("8") ? 2 : n.endsWith("16") ? 4 : n.endsWith("32") ? 8 : 16).map((_, i) => (i * 37 + 11) & 0x7f);
          return [n, create(TensorSchema, { dtype: typed[n]!.dtype ?? DataType.UNSPECIFIED, shape: [2n], rawData: n === "bool" ? new Uint8Array([1, 0]) : bytes })];
        }),
    );
    rawInputs.string = inputs.string!;
    const raw = await client.predict({ modelName: "dtypes", inputs: rawInputs });
    for (const [n, t] of Object.entries(rawInputs)) {
      if (n === "string") continue;
      assert.deepEqual(raw.outputs[`out_${n}`]!.rawData, t.rawData, n);
    }
  });

  it("GetModel returns the flavor, ONNX metadata, signature and input example", async () => {
    const client = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
    const { model } = await client.getModel({ name: "iris" });
    assert.ok(model);
    assert.equal(model.flavor, "onnx");
    assert.deepEqual(model.flavors, ["onnx", "python_function"]);
    assert.equal(model.onnx?.irVersion, 8n);
    assert.equal(model.onnx?.producerName, "mlflow-connect-fixtures");
    assert.deepEqual(model.onnx?.opsets.map((o) => [o.domain, o.version]), [["", 17n]]);
    assert.equal(model.signature?.kind, SignatureKind.COLUMNS);
    assert.deepEqual(model.signature?.inputs.map((s) => [s.name, s.dtype, s.columnType, s.optional]), iris.columns.map((c) => [c, DataType.FLOAT64, "double", false]));
    assert.deepEqual(model.signature?.outputs.map((s) => [s.name, s.shape]), [["label", [-1n]], ["probabilities", [-1n, 3n]]]);
    assert.equal(model.ready, true);
    assert.deepEqual(JSON.parse(model.inputExample!.mlflowJson), { dataframe_split: { columns: iris.columns, data: iris.rows.slice(0, 2) } });
    // The example's tensors are ready to send back to Predict.
    const res = await client.predict({ modelName: "iris", inputs: model.inputExample!.tensors });
    assertIrisOutputs(res.outputs, iris.rows.slice(0, 2));

    const multiModel = (await client.getModel({ name: "multi" })).model!;
    assert.equal(multiModel.signature?.kind, SignatureKind.TENSORS);
    assert.deepEqual(multiModel.signature?.params.map((p) => [p.name, p.type, p.shape, p.defaultValue && toJson(ValueSchema, p.defaultValue)]), [
      ["scale", "double", [], 1],
      ["tags", "string", [-1n], ["x"]],
    ]);
  });

  it("ListModels lists every served model", async () => {
    const client = createClient(ModelService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    const { models } = await client.listModels({});
    assert.deepEqual(models.map((m) => m.name), ["iris", "multi", "tabular", "greeter", "dtypes"]);
  });

  it("GetModel and Predict answer not_found for an unknown model", async () => {
    const client = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
    for (const call of [() => client.getModel({ name: "nope" }), () => client.predict({ modelName: "nope", inputs: { input: irisInput([[1, 2, 3, 4]]) } })]) {
      await assert.rejects(call, (e: unknown) => ConnectError.from(e).code === Code.NotFound && /model "nope" is not served here/.test(ConnectError.from(e).rawMessage));
    }
  });

  it("PredictStream scores 1,000 rows in one call, one answer per message, a bad message failing alone", async () => {
    for (const [name, transport] of Object.entries({ gRPC: createGrpcTransport({ baseUrl: server.url }), Connect: createConnectTransport({ baseUrl: server.url, httpVersion: "2" }) })) {
      const client = createClient(ModelService, transport);
      const rows = Array.from({ length: 1000 }, (_, i) => iris.rows[i % iris.rows.length]!);
      async function* requests(): AsyncIterable<Omit<PredictStreamRequest, "$typeName">> {
        for (let i = 0; i < 100; i++) {
          yield { request: { $typeName: "mlflow.serving.v1.PredictRequest", modelName: "iris", modelVersion: "", inputs: { input: irisInput(rows.slice(i * 10, i * 10 + 10)) } } };
          if (i === 50) yield { request: { $typeName: "mlflow.serving.v1.PredictRequest", modelName: "iris", modelVersion: "", inputs: { input: irisInput([[1, 2, 3]]) } } };
        }
      }
      let scored = 0;
      let index = 0;
      for await (const msg of client.predictStream(requests())) {
        if (index === 51) {
          assert.equal(msg.result.case, "error", name);
          assert.equal(msg.result.value?.code, "invalid_argument");
          assert.match((msg.result.value as { message: string }).message, /has 3 values for shape \[1, 4\]/);
        } else {
          assert.equal(msg.result.case, "response", `${name} message ${index}`);
          const labels = (msg.result.value as { outputs: Record<string, Tensor> }).outputs.label!.int64Data.map(Number);
          const start = (index > 51 ? index - 1 : index) * 10;
          assert.deepEqual(labels, rows.slice(start, start + 10).map((r) => iris.label[iris.rows.indexOf(r)]!));
          scored += labels.length;
        }
        index++;
      }
      assert.equal(scored, 1000, name);
    }
  });

  it("PredictStream answers each message before the next arrives (a lock-step client)", async () => {
    const client = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
    let answered: () => void = () => undefined;
    async function* lockStep(): AsyncIterable<Omit<PredictStreamRequest, "$typeName">> {
      for (const row of iris.rows) {
        const next = new Promise<void>((resolve) => (answered = resolve));
        yield { request: { $typeName: "mlflow.serving.v1.PredictRequest", modelName: "iris", modelVersion: "", inputs: { input: irisInput([row]) } } };
        await next; // the next request only after this one's answer
      }
    }
    const labels: number[] = [];
    for await (const msg of client.predictStream(lockStep())) {
      labels.push(Number((msg.result.value as { outputs: Record<string, Tensor> }).outputs.label!.int64Data[0]));
      answered();
    }
    assert.deepEqual(labels, iris.label);
  });

  it("serves a model whose input example does not fit, without the example", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bad-example-"));
    cpSync(IRIS, dir, { recursive: true });
    writeFileSync(join(dir, "input_example.json"), JSON.stringify({ columns: iris.columns, data: [[5.1, 3.5, 1.4, null]] }));
    const other = await startServer([IRIS, `odd=${dir}`]);
    try {
      const client = createClient(ModelService, createGrpcTransport({ baseUrl: other.url }));
      const { models } = await client.listModels({});
      assert.deepEqual(models.map((m) => [m.name, m.inputExample !== undefined]), [["iris", true], ["odd", false]]);
    } finally {
      await other.close();
    }
  });

  it("answers @grpc/grpc-js with stubs loaded from proto/mlflow/serving/v1", async () => {
    const def = grpc.loadPackageDefinition(
      protoLoader.loadSync("mlflow/serving/v1/model_service.proto", { includeDirs: [`${ROOT}proto`], longs: String, enums: String, defaults: true }),
    ) as unknown as { mlflow: { serving: { v1: { ModelService: grpc.ServiceClientConstructor } } } };
    const client = new def.mlflow.serving.v1.ModelService(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      predict(req: unknown, cb: (e: grpc.ServiceError | null, res: { outputs: Record<string, { int64Data: string[]; floatData: number[] }> }) => void): void;
    };
    try {
      const res = await new Promise<{ outputs: Record<string, { int64Data: string[]; floatData: number[] }> }>((resolve, reject) =>
        client.predict(
          { modelName: "iris", inputs: { input: { dtype: "DATA_TYPE_FLOAT32", shape: [iris.rows.length, 4], floatData: iris.rows.flat() } } },
          (e, r) => (e ? reject(e) : resolve(r)),
        ),
      );
      assert.deepEqual(res.outputs.label!.int64Data.map(Number), iris.label);
      const error = await new Promise<grpc.ServiceError>((resolve, reject) =>
        client.predict({ modelName: "iris", inputs: { input: { dtype: "DATA_TYPE_STRING", shape: [1, 4], stringData: ["a", "b", "c", "d"] } } }, (e) =>
          e ? resolve(e) : reject(new Error("call succeeded")),
        ),
      );
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(error.details, 'input "input" expects dtype float32, got string (MLflow refuses string to float32 casts)');
    } finally {
      client.close();
    }
  });
});
