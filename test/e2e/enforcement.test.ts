import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type JsonObject, type MessageInitShape, create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { MLflow } from "../../gen/mlflow_pb.js";
import { ModelService } from "../../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType, TensorSchema } from "../../gen/mlflow/serving/v1/tensor_pb.js";
import { scrape } from "../helpers/metrics.js";
import { IRIS, MULTI, type RunningServer, SLOW_BATCH, TABULAR, startServer } from "../helpers/server.js";
import { until } from "../helpers/wait.js";

type TensorInit = MessageInitShape<typeof TensorSchema>;
const t = (dtype: DataType, shape: number[], data: Omit<TensorInit, "dtype" | "shape" | "$typeName">) =>
  create(TensorSchema, { ...(data as object), dtype, shape: shape.map(BigInt) });
const f64 = (shape: number[], doubleData: number[]) => t(DataType.FLOAT64, shape, { doubleData });
const i64 = (shape: number[], values: number[]) => t(DataType.INT64, shape, { int64Data: values.map(BigInt) });

interface Case {
  rule: string;
  model: "multi" | "iris" | "tabular";
  typed: { inputs: Record<string, ReturnType<typeof t>>; params?: JsonObject };
  json: object;
  /** The message on every front; `typedMessage` when the typed front says it its own way. */
  message: RegExp;
  typedMessage?: RegExp;
}

const A = f64([1, 2], [1, 2]);
const B = i64([1], [3]);

const REFUSED: Case[] = [
  {
    rule: "a float into an integer input",
    model: "multi",
    typed: { inputs: { a: A, b: f64([1], [1.5]) } },
    json: { inputs: { a: [[1, 2]], b: [1.5] } },
    message: /input "b": expected int64, got fraction 1\.5/,
    typedMessage: /input "b" expects dtype int64, got float64 \(MLflow refuses float64 to int64 casts\)/,
  },
  {
    rule: "a string into a number input",
    model: "iris",
    typed: { inputs: { input: t(DataType.STRING, [1, 4], { stringData: ["a", "b", "c", "d"] }) } },
    json: { inputs: [["a", "b", "c", "d"]] },
    message: /input "input": expected float32, got string "a"/,
    typedMessage: /input "input" expects dtype float32, got string/,
  },
  {
    rule: "a float into a long column",
    model: "tabular",
    typed: { inputs: { x: f64([1], [1]), n: f64([1], [2.5]) } },
    json: { dataframe_split: { columns: ["x", "n"], data: [[1, 2.5]] } },
    message: /input "n": expected int64, got fraction 2\.5/,
    typedMessage: /input "n" expects dtype int64, got float64/,
  },
  {
    rule: "a missing input",
    model: "multi",
    typed: { inputs: { a: A } },
    json: { inputs: { a: [[1, 2]] } },
    message: /missing input "b": model "multi" needs a, b/,
  },
  {
    rule: "a missing required column",
    model: "tabular",
    typed: { inputs: { x: f64([1], [1]) } },
    json: { dataframe_split: { columns: ["x"], data: [[1]] } },
    message: /missing column "n": model "tabular" expects columns x, n, comment/,
  },
  {
    rule: "an unknown input",
    model: "multi",
    typed: { inputs: { a: A, b: B, c: B } },
    json: { inputs: { a: [[1, 2]], b: [3], c: [3] } },
    message: /model "multi" has no input "c" \(its inputs: a, b\)/,
  },
  {
    rule: "a shape the signature refuses",
    model: "multi",
    typed: { inputs: { a: f64([1, 3], [1, 2, 3]), b: B } },
    json: { inputs: { a: [[1, 2, 3]], b: [3] } },
    message: /input "a" expects shape \[-1, 2\], got \[1, 3\]/,
  },
  {
    rule: "a param of the wrong type",
    model: "multi",
    typed: { inputs: { a: A, b: B }, params: { scale: "big" } },
    json: { inputs: { a: [[1, 2]], b: [3] }, params: { scale: "big" } },
    message: /param "scale" expects double, got string "big"/,
  },
  {
    rule: "a scalar for a list param",
    model: "multi",
    typed: { inputs: { a: A, b: B }, params: { tags: "x" } },
    json: { inputs: { a: [[1, 2]], b: [3] }, params: { tags: "x" } },
    message: /param "tags" expects a list of string, got string "x"/,
  },
];

describe("signature enforcement: the same refusal and code on every front", () => {
  const servers: Record<string, RunningServer> = {};
  before(async () => {
    // Each server's first model is the default one for /invocations and MLflow/predict.
    servers.multi = await startServer([MULTI]);
    servers.iris = await startServer([IRIS]);
    servers.tabular = await startServer([TABULAR]);
  });
  after(() => Promise.all(Object.values(servers).map((s) => s.close())));

  for (const c of REFUSED) {
    it(`refuses ${c.rule}: typed Predict INVALID_ARGUMENT, /invocations 400 INVALID_PARAMETER_VALUE, MLflow/predict INVALID_ARGUMENT`, async () => {
      const server = servers[c.model]!;
      const typed = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
      const typedError = await typed.predict({ modelName: c.model, inputs: c.typed.inputs, params: c.typed.params }).then(
        () => assert.fail("typed Predict succeeded"),
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(typedError.code, Code.InvalidArgument, typedError.rawMessage);
      assert.match(typedError.rawMessage, c.typedMessage ?? c.message);

      const res = await fetch(`${server.url}/invocations`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(c.json) });
      assert.equal(res.status, 400);
      const rest = (await res.json()) as { error_code: string; message: string };
      assert.equal(rest.error_code, "INVALID_PARAMETER_VALUE");
      assert.match(rest.message, c.message);

      const seed = createClient(MLflow, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }));
      const seedError = await seed.predict({ value: JSON.stringify(c.json) }).then(
        () => assert.fail("MLflow/predict succeeded"),
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(seedError.code, Code.InvalidArgument);
      assert.equal(seedError.rawMessage, rest.message, "the seed and REST fronts say the same");
    });
  }

  it("accepts MLflow's safe casts on every front: integers into floats, int32 into int64", async () => {
    const server = servers.multi!;
    const typed = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
    const res = await typed.predict({
      modelName: "multi",
      inputs: { a: t(DataType.INT32, [1, 2], { intData: [1, 2] }), b: t(DataType.INT32, [1], { intData: [3] }) },
      params: { scale: 2 }, // an integer for a double param
    });
    assert.deepEqual(res.outputs.sum!.doubleData, [6]);
    const rest = await fetch(`${server.url}/invocations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: { a: [[1, 2]], b: [3] }, params: { scale: 2 } }),
    });
    assert.equal(rest.status, 200);
    assert.deepEqual(await rest.json(), { predictions: { sum: [6], doubled: [6] } });
    const irisTyped = await createClient(ModelService, createGrpcTransport({ baseUrl: servers.iris!.url })).predict({
      inputs: { input: t(DataType.UINT8, [1, 4], { intData: [5, 3, 1, 0] }) },
    });
    assert.equal(irisTyped.outputs.label!.int64Data.length, 1);
  });

  it("ignores params the schema does not know, as MLflow does", async () => {
    const res = await fetch(`${servers.multi!.url}/invocations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: { a: [[1, 2]], b: [3] }, params: { unknown: [1, 2] } }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { predictions: { sum: [6], doubled: [6] } });
  });

  it("fills in a param's default: a request without params is the same as one sending the default, not as one sending another value", async () => {
    // ONNX graphs take no params: what the default changes is which requests may share a
    // run (same params only). slow_batch tells each row how many rows its run held.
    const server = await startServer([SLOW_BATCH], { workers: 1 });
    try {
      const client = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
      const predict = (n: number, params?: JsonObject) => client.predict({ inputs: { n: i64([1], [n]) }, params });
      const gauge = async (name: string) => (await scrape(server.url)).value(name, { model: "slow_batch" });
      const busy = predict(1500); // holds the one worker while the others queue
      await until("the busy run started", async () => (await gauge("mlflow_connect_runs_in_progress")) === 1);
      const calls = [predict(1), predict(2, { tag: "a" }), predict(3, { tag: "b" }), predict(4, { unknown: 1 })];
      await until("the four calls are queued", async () => (await gauge("mlflow_connect_queue_depth")) === 4);
      const answers = await Promise.all(calls);
      await busy;
      assert.deepEqual(
        answers.map((a) => [a.outputs.echo!.int64Data, a.outputs.rows_in_run!.int64Data]),
        [
          [[1n], [3n]], // no params: the default tag "a"
          [[2n], [3n]], // tag "a" sent
          [[3n], [1n]], // tag "b": a run of its own
          [[4n], [3n]], // an unknown param only: the default tag "a"
        ],
      );
    } finally {
      await server.close();
    }
  });
});
