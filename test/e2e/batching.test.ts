import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { MLflow } from "../../gen/mlflow_pb.js";
import { ModelService } from "../../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType, TensorSchema } from "../../gen/mlflow/serving/v1/tensor_pb.js";
import { PROBABILITY_TOLERANCE, reference } from "../helpers/reference.js";
import { startCli } from "../helpers/cli.js";
import { modelValue, scrape } from "../helpers/metrics.js";
import { IRIS, type RunningServer, SLOW, SLOW_BATCH, startServer } from "../helpers/server.js";
import { settled, untilModel } from "../helpers/wait.js";

const { iris } = reference;

/** What /metrics says of a model's batching so far. */
async function batchMetrics(url: string, model: string, maxRows = 4) {
  const m = await scrape(url);
  const get = (name: string, labels: Record<string, string> = {}) => m.value(name, { model, ...labels }) ?? 0;
  return {
    runs: get("mlflow_connect_batch_requests_count"),
    requests: get("mlflow_connect_batch_requests_sum"),
    rows: get("mlflow_connect_batch_rows_sum"),
    runsOfOneRequest: get("mlflow_connect_batch_requests_bucket", { le: "1" }),
    runsOfAtMostMaxRows: get("mlflow_connect_batch_rows_bucket", { le: String(maxRows) }),
  };
}
type BatchMetrics = Awaited<ReturnType<typeof batchMetrics>>;
const diff = (a: BatchMetrics, b: BatchMetrics): BatchMetrics =>
  Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - b[k as keyof BatchMetrics]])) as BatchMetrics;

/** slow_batch's input of one or more rows asking for n each, and its answers: each row's n and the rows its run held. */
const rowsOf = (...n: number[]) => ({ n: create(TensorSchema, { dtype: DataType.INT64, shape: [BigInt(n.length)], int64Data: n.map(BigInt) }) });
const runOf = (answer: { outputs: Record<string, { int64Data: bigint[] }> }) => ({ echo: answer.outputs.echo!.int64Data.map(Number), rowsInRun: answer.outputs.rows_in_run!.int64Data.map(Number) });
const irisTensor = (rows: number[][]) => create(TensorSchema, { dtype: DataType.FLOAT32, shape: [BigInt(rows.length), BigInt(rows[0]!.length)], floatData: rows.flat() });

describe("dynamic batching under concurrent load", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([IRIS], { workers: 1, maxBatchDelayMs: 2 });
  });
  after(() => server.close());

  it("merges concurrent requests and gives every caller its own rows, in order; a bad request fails alone", async () => {
    const client = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
    const metricsBefore = await batchMetrics(server.url, "iris");
    // Request i asks for reference rows i, i+1, ... (1 to 4 of them); every seventh is malformed.
    const calls = Array.from({ length: 70 }, (_, i) => {
      const picks = Array.from({ length: 1 + (i % 4) }, (_, k) => (i + k) % iris.rows.length);
      const rows = picks.map((p) => iris.rows[p]!);
      const bad = i % 7 === 3;
      return { picks, bad, call: client.predict({ modelName: "iris", inputs: { input: irisTensor(bad ? rows.map((r) => r.slice(0, 3)) : rows) } }) };
    });
    // Settled at once: a malformed call may fail before anything else is awaited.
    const settled = Promise.allSettled(calls.map((c) => c.call));
    const before = { ...server.app.core.batchStats("iris") };
    const results = await settled;
    results.forEach((result, i) => {
      const { picks, bad } = calls[i]!;
      if (bad) {
        assert.equal(result.status, "rejected", `call ${i}`);
        assert.equal(ConnectError.from((result as PromiseRejectedResult).reason).code, Code.InvalidArgument);
        return;
      }
      assert.equal(result.status, "fulfilled", `call ${i}: ${String((result as PromiseRejectedResult).reason)}`);
      const { outputs } = (result as PromiseFulfilledResult<Awaited<(typeof calls)[number]["call"]>>).value;
      assert.deepEqual(outputs.label!.int64Data.map(Number), picks.map((p) => iris.label[p]!), `call ${i}`);
      assert.equal(outputs.probabilities!.floatData.length, picks.length * 3, `call ${i}`);
      outputs.probabilities!.floatData.forEach((v, k) => assert.ok(Math.abs(v - iris.probabilities[picks[Math.floor(k / 3)]!]![k % 3]!) < PROBABILITY_TOLERANCE));
    });
    const stats = server.app.core.batchStats("iris");
    const requests = stats.requests - before.requests;
    const batches = stats.batches - before.batches;
    assert.equal(requests, 60, "the 10 malformed requests never reached a batch");
    assert.ok(batches < requests / 2, `${requests} requests ran in ${batches} batches`);
    assert.ok(stats.largestBatchRows > 4, `largest batch ${stats.largestBatchRows} rows`);
    // The same, as /metrics tells it.
    const m = diff(await batchMetrics(server.url, "iris"), metricsBefore);
    assert.equal(m.requests, 60, "mlflow_connect_batch_requests_sum: every good request ran once");
    assert.equal(m.runs, batches, "mlflow_connect_batch_requests_count: one per run");
    assert.ok(m.runsOfOneRequest < m.runs, `${m.runs - m.runsOfOneRequest} of ${m.runs} runs merged several requests`);
    const rows = calls.filter((c) => !c.bad).reduce((n, c) => n + c.picks.length, 0);
    assert.equal(m.rows, rows, "mlflow_connect_batch_rows_sum: every good row ran once");
  });
});

describe("batching settings, end to end (slow_batch: each row learns how many rows its run held)", () => {
  it("never merges more than --max-batch-size rows into one run", async () => {
    const server = await startServer([SLOW_BATCH], { workers: 1, maxBatchSize: 4 });
    try {
      const client = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
      const before = await batchMetrics(server.url, "slow_batch");
      const busy = client.predict({ inputs: rowsOf(3000) });
      await untilModel(server.url, "slow_batch", { running: 1 }, [busy]);
      // Queued behind the busy run, in this order: 1+1+1+1 rows, then 3 and 3 (6 > 4), then 2.
      const sizes = [[1], [2], [3], [4], [5, 5, 5], [6, 6, 6], [7, 7]];
      const calls: Array<Promise<{ outputs: Record<string, { int64Data: bigint[] }> }>> = [];
      for (const [i, rows] of sizes.entries()) {
        calls.push(client.predict({ inputs: rowsOf(...rows) }));
        await untilModel(server.url, "slow_batch", { queued: i + 1 }, calls); // keeps the order
      }
      const answers = (await Promise.all(calls)).map(runOf);
      await busy;
      assert.deepEqual(answers.map((a) => a.echo), sizes, "each caller got its own rows back");
      assert.deepEqual(answers.map((a) => a.rowsInRun[0]), [4, 4, 4, 4, 3, 3, 2]);
      const m = diff(await batchMetrics(server.url, "slow_batch", 4), before);
      assert.deepEqual([m.runs, m.requests, m.rows, m.runsOfAtMostMaxRows], [5, 8, 1 + 4 + 3 + 3 + 2, 5], "/metrics: 5 runs of at most 4 rows");
    } finally {
      await server.close();
    }
  });

  it("merges queued requests with the same params only", async () => {
    const server = await startServer([SLOW_BATCH], { workers: 1 });
    try {
      const client = createClient(ModelService, createGrpcTransport({ baseUrl: server.url }));
      const before = await batchMetrics(server.url, "slow_batch");
      const busy = client.predict({ inputs: rowsOf(3000) });
      await untilModel(server.url, "slow_batch", { running: 1 }, [busy]);
      const tags = ["a", "b", "a", "b", "b"];
      const calls = tags.map((tag, i) => client.predict({ inputs: rowsOf(i), params: { tag } }));
      await untilModel(server.url, "slow_batch", { queued: tags.length }, calls);
      const answers = (await Promise.all(calls)).map(runOf);
      await busy;
      assert.deepEqual(answers.map((a) => a.rowsInRun[0]), [2, 3, 2, 3, 3], "the a's ran together, the b's together");
      const m = diff(await batchMetrics(server.url, "slow_batch"), before);
      assert.deepEqual([m.runs, m.requests, m.runsOfOneRequest], [3, 6, 1], "/metrics: the busy run alone, then one run per tag");
    } finally {
      await server.close();
    }
  });

  it("serve --max-batch-size 1 runs every request alone", async () => {
    const cli = await startCli([SLOW_BATCH, "--port", "0", "--workers", "1", "--max-batch-size", "1"]);
    try {
      const client = createClient(ModelService, createGrpcTransport({ baseUrl: cli.url }));
      const busy = client.predict({ inputs: rowsOf(3000) });
      await untilModel(cli.url, "slow_batch", { running: 1 }, [busy]);
      const calls = [1, 2, 3].map((n) => client.predict({ inputs: rowsOf(n) }));
      await untilModel(cli.url, "slow_batch", { queued: 3 }, calls);
      const answers = (await Promise.all(calls)).map(runOf);
      await busy;
      assert.deepEqual(answers.map((a) => a.rowsInRun), [[1], [1], [1]]);
      const m = await batchMetrics(cli.url, "slow_batch", 1);
      assert.deepEqual([m.runs, m.runsOfOneRequest, m.runsOfAtMostMaxRows], [4, 4, 4], "/metrics: 4 runs of one row");
    } finally {
      assert.deepEqual(await cli.stop(), [0, null]);
    }
  });

  it("serve --max-batch-delay-ms holds a request back for company while its model is busy, until the batch is full", async () => {
    // Two workers: one runs the busy request, the other is free all along.
    const cli = await startCli([SLOW_BATCH, "--port", "0", "--workers", "2", "--max-batch-size", "3", "--max-batch-delay-ms", "10000"]);
    try {
      const client = createClient(ModelService, createGrpcTransport({ baseUrl: cli.url }));
      const busy = client.predict({ inputs: rowsOf(2500) });
      await untilModel(cli.url, "slow_batch", { running: 1 }, [busy]);
      const first = client.predict({ inputs: rowsOf(1) });
      // Without the delay it would run on the free worker at once; it waits for company.
      await untilModel(cli.url, "slow_batch", { running: 1, queued: 1 }, [first]);
      const others = [client.predict({ inputs: rowsOf(2) }), client.predict({ inputs: rowsOf(3) })];
      // Full (3 rows): the three run together on the free worker, long before 10 s.
      const answers = (await Promise.all([first, ...others])).map(runOf);
      assert.deepEqual(answers.map((a) => a.rowsInRun), [[3], [3], [3]]);
      assert.equal(await settled(busy), false, "they ran while the busy run went on");
      await busy;
    } finally {
      assert.deepEqual(await cli.stop(), [0, null]);
    }
  });
});

describe("per-model batching settings", () => {
  it("applies a model's own queue bound over the server's", async () => {
    const server = await startServer([SLOW], { workers: 1, maxQueue: 100, modelBatching: { slow: { maxQueue: 1 } } });
    try {
      const client = createClient(MLflow, createGrpcTransport({ baseUrl: server.url }));
      const busy = client.predict({ value: JSON.stringify({ inputs: [2000] }) });
      await untilModel(server.url, "slow", { running: 1 }, [busy]);
      const queued = client.predict({ value: JSON.stringify({ inputs: [10] }) });
      await untilModel(server.url, "slow", { queued: 1 }, [queued]);
      const refused = await client.predict({ value: JSON.stringify({ inputs: [10] }) }).then(
        () => assert.fail("no backpressure"),
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(refused.code, Code.ResourceExhausted);
      assert.match(refused.rawMessage, /1 requests are waiting/);
      await Promise.all([busy, queued]);
    } finally {
      await server.close();
    }
  });
});

describe("backpressure and deadlines", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([SLOW], { workers: 1, maxQueue: 2 });
  });
  after(() => server.close());

  // The slow fixture squares an n x n matrix on one thread: n^3 multiply-adds (n = 3000:
  // most of a second here); n = 10 takes microseconds.
  const slow = (n: number) => JSON.stringify({ inputs: [n] });
  const value = (name: string, labels: Record<string, string> = {}) => modelValue(server.url, name, "slow", labels);
  /** Requests the model ran (a public histogram's sum, updated when a run ends). */
  const requestsRun = () => value("mlflow_connect_batch_requests_sum");

  it("fails requests past the queue at once, while the model is busy: RESOURCE_EXHAUSTED over gRPC, 429 with Retry-After over HTTP", async () => {
    const client = createClient(MLflow, createGrpcTransport({ baseUrl: server.url }));
    const [ran, overloaded] = [await requestsRun(), await value("mlflow_connect_inferences_total", { outcome: "overloaded" })];
    const busy = client.predict({ value: slow(2000) });
    await untilModel(server.url, "slow", { running: 1 }, [busy]);
    const queued = [client.predict({ value: slow(10) }), client.predict({ value: slow(10) })];
    await untilModel(server.url, "slow", { queued: 2 }, queued);
    const refused = await client.predict({ value: slow(10) }).then(
      () => assert.fail("no backpressure"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(refused.code, Code.ResourceExhausted);
    assert.match(refused.rawMessage, /model "slow" is overloaded: 2 requests are waiting/);
    const http = await fetch(`${server.url}/invocations`, { method: "POST", headers: { "content-type": "application/json" }, body: slow(10) });
    assert.equal(http.status, 429);
    assert.equal(http.headers.get("retry-after"), "1");
    assert.equal(((await http.json()) as { error_code: string }).error_code, "RESOURCE_EXHAUSTED");
    assert.equal(await settled(busy), false, "both refused while the busy run went on, without waiting for it");
    const answers = await Promise.all([busy, ...queued]);
    assert.deepEqual(answers.slice(1).map((a) => JSON.parse(a.value)), [{ predictions: 1000 }, { predictions: 1000 }]);
    assert.equal((await requestsRun()) - ran, 3, "the busy request and the two queued ones ran");
    assert.equal((await value("mlflow_connect_inferences_total", { outcome: "overloaded" })) - overloaded, 2);
  });

  it("answers DEADLINE_EXCEEDED when a deadline passes while queued, and never runs that request", async () => {
    const client = createClient(MLflow, createGrpcTransport({ baseUrl: server.url }));
    const [ran, expired] = [await requestsRun(), await value("mlflow_connect_inferences_total", { outcome: "deadline" })];
    const busy = client.predict({ value: slow(3000) });
    await untilModel(server.url, "slow", { running: 1 }, [busy]);
    // 50 ms against a run of most of a second: answered while the busy run goes on.
    const late = await client.predict({ value: slow(10) }, { timeoutMs: 50 }).then(
      () => assert.fail("ran despite its deadline"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(late.code, Code.DeadlineExceeded);
    assert.equal(await settled(busy), false, "answered at its deadline, not once the model was free");
    await busy;
    assert.equal((await requestsRun()) - ran, 1, "only the busy request ran");
    assert.equal((await value("mlflow_connect_inferences_total", { outcome: "deadline" })) - expired, 1);
  });

  it("treats a deadline beyond setTimeout's range as far away, not as passed, while queued", async () => {
    const grpc = createClient(MLflow, createGrpcTransport({ baseUrl: server.url }));
    const connect = createClient(MLflow, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    const busy = grpc.predict({ value: slow(2000) });
    await untilModel(server.url, "slow", { running: 1 }, [busy]);
    // Over 2^31-1 ms, a timer would fire after 1 ms: these wait behind the busy run.
    const far = { headers: { "grpc-timeout": "99999999S", "connect-timeout-ms": "9999999999" } };
    const queued = [grpc.predict({ value: slow(10) }, far), connect.predict({ value: slow(10) }, far)];
    await untilModel(server.url, "slow", { queued: 2 }, queued);
    const answers = await Promise.all(queued);
    assert.deepEqual(answers.map((a) => JSON.parse(a.value)), [{ predictions: 1000 }, { predictions: 1000 }]);
    await busy;
  });

  it("removes a caller that goes away while queued before it runs, on the lean gRPC and Connect paths", async () => {
    const grpc = createClient(MLflow, createGrpcTransport({ baseUrl: server.url }));
    const connect = createClient(MLflow, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    const lean = server.app.leanCalls();
    const [ran, cancelled] = [await requestsRun(), await value("mlflow_connect_inferences_total", { outcome: "cancelled" })];
    const busy = grpc.predict({ value: slow(3000) });
    await untilModel(server.url, "slow", { running: 1 }, [busy]);
    for (const client of [grpc, connect]) {
      const abort = new AbortController();
      const call = client.predict({ value: slow(10) }, { signal: abort.signal }).then(
        () => assert.fail("answered despite the abort"),
        (e: unknown) => ConnectError.from(e),
      );
      await untilModel(server.url, "slow", { queued: 1 }, [call]);
      abort.abort();
      assert.equal((await call).code, Code.Canceled);
      await untilModel(server.url, "slow", { queued: 0 }, [busy]); // the server dropped it, before the busy run ended
    }
    assert.equal(await settled(busy), false, "the busy run outlasted both calls (else the test proves nothing)");
    await busy;
    assert.equal((await requestsRun()) - ran, 1, "neither ran after the busy one");
    assert.equal((await value("mlflow_connect_inferences_total", { outcome: "cancelled" })) - cancelled, 2);
    assert.equal(server.app.leanCalls() - lean, 3, "all three took the lean path");
  });
});
