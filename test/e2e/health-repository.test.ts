import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { GRPCInferenceService } from "../../gen/inference/grpc_predict_v2_pb.js";
import { reference } from "../helpers/reference.js";
import { makeRepository, slowToLoad } from "../helpers/repository.js";
import { MLflow } from "../../gen/mlflow_pb.js";
import { GREETER, IRIS, ROOT, type RunningServer, SLOW, TABULAR, startServer } from "../helpers/server.js";
import { scrape } from "../helpers/metrics.js";
import { settled, until } from "../helpers/wait.js";

const exec = promisify(execFile);
const BUF = `${ROOT}node_modules/.bin/buf`;
const { iris } = reference;

const irisRequest = {
  modelName: "iris",
  inputs: [{ name: "input", datatype: "FP32", shape: [BigInt(iris.rows.length), 4n], contents: { fp32Contents: iris.rows.flat() } }],
};

/** Collects a Watch stream's statuses; `until(status)` resolves once it is the latest one seen. */
function watch(server: RunningServer, service: string) {
  const client = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
  const controller = new AbortController();
  const seen: Status[] = [];
  const waiters: Array<{ status: Status; resolve: () => void }> = [];
  const done = (async () => {
    try {
      for await (const res of client.watch({ service }, { signal: controller.signal })) {
        seen.push(res.status);
        for (const w of [...waiters]) if (w.status === res.status) w.resolve();
      }
    } catch (error) {
      if (ConnectError.from(error).code !== Code.Canceled) throw error;
    }
  })();
  return {
    seen,
    done,
    until: (status: Status) => (seen.at(-1) === status ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ status, resolve }))),
    stop: () => controller.abort(),
  };
}

describe("gRPC reflection", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([IRIS]);
  });
  after(() => server.close());

  for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
    it(`lists and calls every service through ${protocol} reflection with buf curl, no schema given`, async () => {
      const { stdout } = await exec(BUF, ["curl", "--http2-prior-knowledge", "--reflect-protocol", protocol, "--list-methods", server.url]);
      const methods = stdout.trim().split("\n");
      for (const m of [
        "MLflow/predict",
        "mlflow.serving.v1.ModelService/Predict",
        "mlflow.serving.v1.ModelService/PredictStream",
        "inference.GRPCInferenceService/ModelInfer",
        "grpc.health.v1.Health/Watch",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      ]) {
        assert.ok(methods.includes(m), `${m} in ${stdout}`);
      }
      const live = await exec(BUF, ["curl", "--http2-prior-knowledge", "--protocol", "grpc", "--reflect-protocol", protocol, "-d", "{}", `${server.url}/inference.GRPCInferenceService/ServerLive`]);
      assert.deepEqual(JSON.parse(live.stdout), { live: true });
      const model = await exec(BUF, ["curl", "--http2-prior-knowledge", "--reflect-protocol", protocol, "-d", '{"name": "iris"}', `${server.url}/mlflow.serving.v1.ModelService/GetModel`]);
      assert.equal((JSON.parse(model.stdout) as { model: { flavor: string } }).model.flavor, "onnx");
    });
  }
});

describe("health and the model repository", () => {
  let server: RunningServer;
  let repo: string;
  /** POSTs to the repository API and requires 200. */
  const post = async (path: string) => {
    const res = await fetch(`${server.url}${path}`, { method: "POST" });
    assert.equal(res.status, 200, `${path}: ${await res.text()}`);
  };
  before(async () => {
    repo = makeRepository({ iris: IRIS, greeter: GREETER, tabular: TABULAR });
    server = await startServer([repo], { workers: 2, modelControlMode: "explicit" });
  });
  after(() => server?.close());

  it("Check answers per service and model, NOT_FOUND for unknown ones", async () => {
    const client = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    for (const service of ["", "inference.GRPCInferenceService", "mlflow.serving.v1.ModelService", "iris", "greeter", "tabular"]) {
      assert.equal((await client.check({ service })).status, Status.SERVING, service);
    }
    await assert.rejects(client.check({ service: "nope" }), (e: unknown) => ConnectError.from(e).code === Code.NotFound);
  });

  it("Watch follows a model from unknown through loading to serving, and to not serving when unloaded", { timeout: 60_000 }, async () => {
    const w = watch(server, "warming");
    await w.until(Status.SERVICE_UNKNOWN);
    // A new model appears in the repository; its warm-up run keeps it loading for a while.
    slowToLoad(join(repo, "warming"));
    const load = fetch(`${server.url}/v2/repository/models/warming/load`, { method: "POST" });
    await Promise.race([w.until(Status.NOT_SERVING), load.then(() => assert.fail(`the load answered first; statuses seen: ${w.seen}`))]);
    assert.equal(await settled(load), false, "NOT_SERVING was seen while the load ran");
    assert.equal((await load).status, 200);
    await w.until(Status.SERVING);
    const unload = await fetch(`${server.url}/v2/repository/models/warming/unload`, { method: "POST" });
    assert.equal(unload.status, 200);
    await w.until(Status.NOT_SERVING);
    w.stop();
    await w.done;
    assert.deepEqual(w.seen, [Status.SERVICE_UNKNOWN, Status.NOT_SERVING, Status.SERVING, Status.NOT_SERVING]);
    const index = await fetch(`${server.url}/v2/repository/index`, { method: "POST" });
    assert.equal(index.status, 200);
    const entries = (await index.json()) as Array<{ name: string; state: string }>;
    assert.deepEqual(entries.map((e) => [e.name, e.state]), [["greeter", "READY"], ["iris", "READY"], ["tabular", "READY"], ["warming", "UNAVAILABLE"]]);
  });

  it("loads, reloads and unloads models under steady traffic without failing a request", async () => {
    const client = createClient(GRPCInferenceService, createGrpcTransport({ baseUrl: server.url }));
    let stop = false;
    let calls = 0;
    const failures: string[] = [];
    const traffic = Array.from({ length: 8 }, async () => {
      while (!stop) {
        try {
          const res = await client.modelInfer(irisRequest);
          assert.deepEqual(res.outputs[0]!.contents!.int64Contents.map(Number), iris.label);
          calls++;
        } catch (error) {
          failures.push(String(error));
        }
      }
    });
    for (let i = 0; i < 3; i++) {
      await post("/v2/repository/models/iris/load"); // reload: the new sessions replace the old ones
      await post("/v2/repository/models/greeter/unload");
      await post("/v2/repository/models/greeter/load");
    }
    stop = true;
    await Promise.all(traffic);
    assert.deepEqual(failures, []);
    assert.ok(calls > 20, `${calls} calls`);
    const greeter = await client.modelReady({ name: "greeter" });
    assert.equal(greeter.ready, true);
  });

  it("stays SERVING through a reload, and keeps the first model the default one", async () => {
    const overall = watch(server, "");
    const iris_ = watch(server, "iris");
    await overall.until(Status.SERVING);
    await iris_.until(Status.SERVING);
    for (const model of ["iris", "greeter"]) {
      const res = await fetch(`${server.url}/v2/repository/models/${model}/load`, { method: "POST", headers: { "content-type": "application/json" } });
      assert.equal(res.status, 200, "an empty JSON body is fine");
    }
    await post("/v2/repository/models/greeter/unload");
    await post("/v2/repository/models/greeter/load");
    overall.stop();
    iris_.stop();
    await Promise.all([overall.done, iris_.done]);
    assert.deepEqual(overall.seen, [Status.SERVING]);
    assert.deepEqual(iris_.seen, [Status.SERVING]);
    // greeter came first in the repository: still the model MLflow/predict and /invocations use.
    const seed = createClient(MLflow, createGrpcTransport({ baseUrl: server.url }));
    assert.equal((await seed.predict({ value: "HELLO WORLD" })).value, "greeting");
  });

  it("reloads a slow model while its own requests are in flight, failing none", async () => {
    cpSync(SLOW, join(repo, "slow"), { recursive: true });
    await post("/v2/repository/models/slow/load");
    const seedless = createClient(GRPCInferenceService, createGrpcTransport({ baseUrl: server.url }));
    const call = () => seedless.modelInfer({ modelName: "slow", inputs: [{ name: "n", datatype: "INT64", shape: [1n], contents: { int64Contents: [1500n] } }] });
    const inFlight = Array.from({ length: 12 }, call);
    // The workers run two at a time: the reloads start once the others wait in the queue.
    await until("slow's requests are queued", async () => ((await scrape(server.url)).value("mlflow_connect_queue_depth", { model: "slow" }) ?? 0) > 0);
    const reloads = [1, 2, 3].map(() => fetch(`${server.url}/v2/repository/models/slow/load`, { method: "POST" }));
    const after = Array.from({ length: 6 }, call);
    const results = await Promise.allSettled([...inFlight, ...after]);
    assert.deepEqual(results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason)), []);
    assert.deepEqual((await Promise.all(reloads)).map((r) => r.status), [200, 200, 200]);
  });

  it("serves the newest version after a load, refusing calls to an unloaded model", async () => {
    const client = createClient(GRPCInferenceService, createGrpcTransport({ baseUrl: server.url }));
    cpSync(IRIS, join(repo, "versioned", "1"), { recursive: true });
    await post("/v2/repository/models/versioned/load");
    assert.deepEqual((await client.modelMetadata({ name: "versioned" })).versions, ["1"]);
    cpSync(IRIS, join(repo, "versioned", "2"), { recursive: true });
    await post("/v2/repository/models/versioned/load");
    assert.deepEqual((await client.modelMetadata({ name: "versioned" })).versions, ["2"]);
    await post("/v2/repository/models/versioned/unload");
    const error = await client.modelInfer({ ...irisRequest, modelName: "versioned" }).then(
      () => assert.fail("an unloaded model answered"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(error.code, Code.NotFound);
    const missing = await fetch(`${server.url}/v2/repository/models/absent/load`, { method: "POST" });
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /model "absent" is not in the model repository/);
  });

  it("turns NOT_SERVING when shutdown begins and ends the watch", async () => {
    const w = watch(server, "");
    await w.until(Status.SERVING);
    const closing = server.close();
    await w.done;
    await closing;
    assert.deepEqual(w.seen, [Status.SERVING, Status.NOT_SERVING]);
  });
});
