import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { MLflow } from "../../gen/mlflow_pb.js";
import { ModelService } from "../../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType, TensorSchema } from "../../gen/mlflow/serving/v1/tensor_pb.js";
import { reference } from "../helpers/reference.js";
import { modelValue } from "../helpers/metrics.js";
import { IRIS, type RunningServer, SLOW, startServer } from "../helpers/server.js";
import { untilModel } from "../helpers/wait.js";

const { iris } = reference;

describe("GET /metrics", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([IRIS, SLOW]); // slow has no input example
  });
  after(() => server.close());

  it("counts calls by protocol, method and code, with latencies, batches, queue depth, load time and process metrics", async () => {
    const input = create(TensorSchema, { dtype: DataType.FLOAT32, shape: [2n, 4n], floatData: iris.rows.slice(0, 2).flat() });
    await createClient(ModelService, createGrpcTransport({ baseUrl: server.url })).predict({ inputs: { input } }); // lean path
    await createClient(ModelService, createGrpcTransport({ baseUrl: server.url })).predict({ inputs: { input } });
    const seed = { value: JSON.stringify({ inputs: iris.rows }) };
    await createClient(MLflow, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" })).predict(seed);
    await createClient(MLflow, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })).predict(seed);
    await createClient(MLflow, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })).predict({ value: "{" }).catch(() => undefined);
    await fetch(`${server.url}/invocations`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ inputs: iris.rows }) });
    await fetch(`${server.url}/v2/models/iris/infer`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });

    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const families = Object.fromEntries(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
    /** A histogram's _count or _sum for a model (the parser keeps no labels on histograms). */
    const histogram = (name: string, part: "count" | "sum", model: string) => Number(new RegExp(`^${name}_${part}\\{model="${model}"\\} (\\S+)$`, "m").exec(text)?.[1]);
    const count = (labels: Record<string, string>) =>
      Number(families.mlflow_connect_requests_total!.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ?? 0);

    assert.equal(count({ protocol: "grpc", model: "iris", method: "mlflow.serving.v1.ModelService/Predict", code: "ok" }), 2);
    assert.equal(count({ protocol: "grpc-web", method: "MLflow/predict", code: "ok" }), 1);
    assert.equal(count({ protocol: "connect", method: "MLflow/predict", code: "ok" }), 1);
    assert.equal(count({ protocol: "connect", method: "MLflow/predict", code: "invalid_argument" }), 1);
    assert.equal(count({ protocol: "http", model: "iris", method: "POST /invocations", code: "200" }), 1);
    assert.equal(count({ protocol: "http", method: "POST /v2/models/:name/infer", code: "400" }), 1);
    assert.equal(families.mlflow_connect_request_duration_seconds!.type, "HISTOGRAM");

    const inferences = families.mlflow_connect_inferences_total!.metrics.find((m) => m.labels?.model === "iris" && m.labels.outcome === "ok");
    assert.equal(Number(inferences?.value), 5);
    assert.equal(families.mlflow_connect_batch_rows!.type, "HISTOGRAM");
    assert.equal(histogram("mlflow_connect_batch_rows", "count", "iris"), 5);
    assert.equal(histogram("mlflow_connect_batch_rows", "sum", "iris"), 2 + 2 + iris.rows.length * 3);
    assert.ok(families.mlflow_connect_queue_depth!.metrics.some((m) => m.labels?.model === "iris"));
    assert.ok(Number(families.mlflow_connect_model_load_seconds!.metrics.find((m) => m.labels?.model === "iris")?.value) > 0);
    assert.ok(families.mlflow_connect_worker_busy_seconds);
    // Warmed up with its input example before serving; a model without one is not.
    const warmUp = (model: string) => families.mlflow_connect_model_warmup_seconds?.metrics.find((m) => m.labels?.model === model)?.value;
    assert.ok(Number(warmUp("iris")) > 0);
    assert.equal(warmUp("slow"), undefined);
    assert.ok(Number(families.mlflow_connect_process_resident_memory_bytes?.metrics[0]?.value) > 0, "Node process metrics");
  });

  it("reports the values of queue depth, runs in progress, worker busy time and run outcomes", async () => {
    const client = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
    const slow = (n: number) => client.predict({ modelName: "slow", inputs: { n: create(TensorSchema, { dtype: DataType.INT64, shape: [1n], int64Data: [BigInt(n)] }) } });
    const value = async (name: string, labels: Record<string, string> = {}) => modelValue(server.url, name, "slow", labels);
    const before = {
      runs: await value("mlflow_connect_worker_busy_seconds_count"),
      busy: await value("mlflow_connect_worker_busy_seconds_sum"),
      ok: await value("mlflow_connect_inferences_total", { outcome: "ok" }),
      internal: await value("mlflow_connect_inferences_total", { outcome: "internal" }),
    };
    const started = performance.now();
    const busy = slow(2500);
    await untilModel(server.url, "slow", { running: 1 }, [busy]);
    const queued = [slow(10), slow(10)];
    await untilModel(server.url, "slow", { running: 1, queued: 2 }, [busy, ...queued]);
    await Promise.all([busy, ...queued]);
    const elapsedSeconds = (performance.now() - started) / 1000;
    assert.deepEqual([await value("mlflow_connect_queue_depth"), await value("mlflow_connect_runs_in_progress")], [0, 0], "nothing waits or runs any more");
    assert.equal((await value("mlflow_connect_worker_busy_seconds_count")) - before.runs, 3, "one observation per run");
    const busySeconds = (await value("mlflow_connect_worker_busy_seconds_sum")) - before.busy;
    // The three runs happened one after the other inside the calls' time, on one worker.
    assert.ok(busySeconds > 0 && busySeconds <= elapsedSeconds, `${busySeconds} s busy within ${elapsedSeconds} s`);
    // onnxruntime fails a run asked for n = -1: the internal outcome.
    await assert.rejects(slow(-1), (e: unknown) => ConnectError.from(e).code === Code.Internal);
    assert.equal((await value("mlflow_connect_inferences_total", { outcome: "ok" })) - before.ok, 3);
    assert.equal((await value("mlflow_connect_inferences_total", { outcome: "internal" })) - before.internal, 1);
    // (deadline, cancelled and overloaded outcomes: test/e2e/batching.test.ts)
  });
});
