import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createOrtPool } from "../src/runtime/ort-pool.js";
import { reference } from "./helpers/reference.js";
import { IRIS } from "./helpers/server.js";
import { until } from "./helpers/wait.js";

const input = () => ({ input: { dtype: "float32", shape: [1, 4], data: new Float32Array(reference.iris.rows[0]!) } });

describe("createOrtPool()", () => {
  it("detects a crashed worker, answers its pending calls with an error, and replaces it with its models", async () => {
    const pool = createOrtPool({ workers: 1, settings: { intraOpNumThreads: 1, interOpNumThreads: 1 } });
    try {
      await pool.load("iris", `${IRIS}/model.onnx`);
      const before = pool.workers()[0];
      // Both messages leave in this tick: the worker dies on the first, the run is pending on a dead worker.
      pool.simulateCrash(0);
      const pending = pool.run("iris", input());
      await assert.rejects(pending, /onnxruntime worker stopped \(exit code 70/);
      await until("the pool replaced the worker", () => pool.workers().length > 0);
      assert.equal(pool.workers().length, 1);
      assert.notEqual(pool.workers()[0], before, "a new worker thread");
      const outputs = await pool.run("iris", input());
      assert.deepEqual([...(outputs.label!.data as BigInt64Array)].map(Number), [reference.iris.label[0]]);
    } finally {
      await pool.close();
    }
  });

  it("warms a model up on every worker without taking the caller's buffers, and reports a run that fails", async () => {
    const pool = createOrtPool({ workers: 2, settings: { intraOpNumThreads: 1, interOpNumThreads: 1 } });
    try {
      await pool.load("iris", `${IRIS}/model.onnx`);
      const inputs = input();
      await pool.warmUp("iris", inputs); // sent to both workers: transferring would detach it after the first
      assert.equal(inputs.input.data.byteLength, 16, "still the caller's");
      await assert.rejects(pool.warmUp("iris", { input: { dtype: "float32", shape: [1, 3], data: new Float32Array(3) } }), /input|dimension|shape/i);
      const outputs = await pool.run("iris", inputs);
      assert.deepEqual([...(outputs.label!.data as BigInt64Array)].map(Number), [reference.iris.label[0]]);
    } finally {
      await pool.close();
    }
  });
});
