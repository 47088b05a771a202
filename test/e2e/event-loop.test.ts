import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { MLflow } from "../../gen/mlflow_pb.js";
import { type RunningServer, SLOW, startServer } from "../helpers/server.js";
import { settled, untilModel } from "../helpers/wait.js";

// The slow fixture squares an n x n matrix of ones on one thread and sums it: n^3
// multiply-adds, most of a second at n = 3000 here; 20 pings take a few ms.
const N = 3000;

describe("inference runs off the main thread", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([SLOW], { workers: 1 });
  });
  after(() => server.close());

  it("answers HTTP requests at once while a slow model runs", async () => {
    const client = createClient(MLflow, createGrpcTransport({ baseUrl: server.url }));
    const predict = client.predict({ value: JSON.stringify({ inputs: [N] }) });
    await untilModel(server.url, "slow", { running: 1 }, [predict]);
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${server.url}/ping`);
      assert.equal(res.status, 200);
    }
    // Had the run blocked the event loop, no ping could have been answered before it ended.
    assert.equal(await settled(predict), false, "20 pings answered while the model ran");
    const { predictions } = JSON.parse((await predict).value) as { predictions: number };
    assert.ok(Math.abs(predictions / N ** 3 - 1) < 0.05, `sum ${predictions}`); // float32 sums of 9e6 terms drift by ~1%
  });
});
