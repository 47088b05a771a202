import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { MLflow } from "../../gen/mlflow_pb.js";
import { type RunningServer, SLOW, startServer } from "../helpers/server.js";

// The slow fixture squares an n x n matrix of ones and sums it: n^3 multiply-adds,
// most of a second at n = 4000 on one thread here.
const N = 4000;

describe("inference runs off the main thread", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([SLOW], { workers: 1 });
  });
  after(() => server.close());

  it("answers HTTP requests at once while a slow model runs", async () => {
    const events: string[] = [];
    const client = createClient(MLflow, createGrpcTransport({ baseUrl: server.url }));
    const started = performance.now();
    const predict = client.predict({ value: JSON.stringify({ inputs: [N] }) }).then((out) => {
      events.push("predict");
      return out;
    });
    const pingMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const res = await fetch(`${server.url}/ping`);
      assert.equal(res.status, 200);
      pingMs.push(performance.now() - t0);
      events.push("ping");
    }
    const output = await predict;
    const predictMs = performance.now() - started;
    // Had the model blocked the event loop, the pings would have waited for it: both
    // the order and each ping's own time tell (a run takes most of a second here).
    assert.deepEqual(events.slice(0, 20), Array(20).fill("ping"));
    assert.ok(predictMs > 200, `the slow model ran ${predictMs.toFixed(0)} ms, too fast to prove anything`);
    assert.ok(Math.max(...pingMs) < predictMs / 4, `slowest ping ${Math.max(...pingMs).toFixed(0)} ms while the model ran ${predictMs.toFixed(0)} ms`);
    const { predictions } = JSON.parse(output.value) as { predictions: number };
    assert.ok(Math.abs(predictions / N ** 3 - 1) < 0.05, `sum ${predictions}`); // float32 sums of 1.6e7 terms drift by ~2%
  });
});
