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

  it("answers HTTP requests while a slow model runs", async () => {
    const events: string[] = [];
    const client = createClient(MLflow, createGrpcTransport({ baseUrl: server.url }));
    const predict = client.predict({ value: JSON.stringify({ inputs: [N] }) }).then((out) => {
      events.push("predict");
      return out;
    });
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${server.url}/ping`);
      assert.equal(res.status, 200);
      events.push("ping");
    }
    const output = await predict;
    // Had the model blocked the event loop, no ping could have been answered before it finished.
    assert.deepEqual(events.slice(0, 20), Array(20).fill("ping"));
    const { predictions } = JSON.parse(output.value) as { predictions: number };
    assert.ok(Math.abs(predictions / N ** 3 - 1) < 0.05, `sum ${predictions}`); // float32 sums of 1.6e7 terms drift by ~2%
  });
});
