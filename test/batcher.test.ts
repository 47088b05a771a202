import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canBatch, createBatcher } from "../src/core/batcher.js";
import { InferenceError } from "../src/core/errors.js";
import type { Tensor } from "../src/core/tensor.js";

const rowsOf = (values: number[][]): Tensor => ({ dtype: "float32", shape: [values.length, values[0]!.length], data: new Float32Array(values.flat()) });

/** A stand-in model: doubles its input; runs are recorded and finish when released. */
function echoModel() {
  const runs: number[] = [];
  const gates: Array<() => void> = [];
  const run = async (inputs: Record<string, Tensor>) => {
    const x = inputs.x!;
    runs.push(x.shape[0]!);
    await new Promise<void>((resolve) => gates.push(resolve));
    return { y: { ...x, data: (x.data as Float32Array).map((v) => v * 2) } };
  };
  const releaseAll = () => gates.splice(0).forEach((g) => g());
  return { runs, run, releaseAll };
}

describe("createBatcher()", () => {
  it("runs a lone request at once, then merges what queued meanwhile, splitting answers back in order", async () => {
    const model = echoModel();
    const batcher = createBatcher("m", true, model.run, { maxBatchSize: 8, maxBatchDelayMs: 0, maxQueue: 100, concurrency: 1 });
    const first = batcher.submit({ inputs: { x: rowsOf([[1]]) }, key: "" });
    assert.deepEqual(model.runs, [1], "an idle model runs a lone request at once");
    const later = [[[2], [3]], [[4]], [[5], [6], [7]]].map((rows) => batcher.submit({ inputs: { x: rowsOf(rows) }, key: "" }));
    model.releaseAll();
    await first;
    await new Promise((r) => setImmediate(r));
    model.releaseAll();
    const answers = await Promise.all(later);
    assert.deepEqual(model.runs, [1, 6], "the three waiting requests shared one run");
    assert.deepEqual(answers.map((a) => [...(a.y!.data as Float32Array)]), [[4, 6], [8], [10, 12, 14]]);
    assert.deepEqual(answers.map((a) => a.y!.shape), [[2, 1], [1, 1], [3, 1]]);
    assert.deepEqual(batcher.stats, { batches: 2, requests: 4, largestBatchRows: 6 });
  });

  it("never merges requests with other keys or trailing shapes, and respects maxBatchSize", async () => {
    const model = echoModel();
    const batcher = createBatcher("m", true, model.run, { maxBatchSize: 3, maxBatchDelayMs: 0, maxQueue: 100, concurrency: 1 });
    const busy = batcher.submit({ inputs: { x: rowsOf([[0]]) }, key: "" });
    const queued = [
      batcher.submit({ inputs: { x: rowsOf([[1], [1]]) }, key: "a" }),
      batcher.submit({ inputs: { x: rowsOf([[2]]) }, key: "b" }),
      batcher.submit({ inputs: { x: rowsOf([[3, 3]]) }, key: "a" }),
      batcher.submit({ inputs: { x: rowsOf([[4]]) }, key: "a" }),
      batcher.submit({ inputs: { x: rowsOf([[5], [5]]) }, key: "a" }),
    ];
    for (let i = 0; i < 6; i++) {
      model.releaseAll();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all([busy, ...queued]);
    // [0]; then "a" rows 2+1 (the [3, 3] row has another width); then "b"; then [3, 3]; then [5], [5]
    assert.deepEqual(model.runs, [1, 3, 1, 1, 2]);
  });

  it("fails every request of a failed run, and drops expired or cancelled requests before they run", async () => {
    const failing = createBatcher("m", true, async () => Promise.reject(new Error("boom")), { maxBatchSize: 8, maxBatchDelayMs: 0, maxQueue: 100, concurrency: 1 });
    await assert.rejects(failing.submit({ inputs: { x: rowsOf([[1]]) }, key: "" }), /boom/);

    const model = echoModel();
    const batcher = createBatcher("m", true, model.run, { maxBatchSize: 8, maxBatchDelayMs: 0, maxQueue: 2, concurrency: 1 });
    const busy = batcher.submit({ inputs: { x: rowsOf([[1]]) }, key: "" });
    const expired = batcher.submit({ inputs: { x: rowsOf([[2]]) }, key: "", deadline: Date.now() + 20 });
    const controller = new AbortController();
    const cancelled = batcher.submit({ inputs: { x: rowsOf([[3]]) }, key: "", signal: controller.signal });
    await assert.rejects(batcher.submit({ inputs: { x: rowsOf([[4]]) }, key: "" }), (e) => e instanceof InferenceError && e.kind === "overloaded");
    controller.abort();
    await assert.rejects(cancelled, (e) => e instanceof InferenceError && e.kind === "cancelled");
    await assert.rejects(expired, (e) => e instanceof InferenceError && e.kind === "deadline");
    model.releaseAll();
    await busy;
    await batcher.drain();
    assert.deepEqual(model.runs, [1], "neither dropped request ran");
  });

  it("batches only models whose inputs and outputs all have a free dim 0", () => {
    const t = (shape: number[]) => ({ name: "t", dtype: "float32" as const, shape });
    assert.equal(canBatch([t([-1, 4])], [t([-1]), t([-1, 3])]), true);
    assert.equal(canBatch([t([1])], [t([])]), false);
    assert.equal(canBatch([t([-1, 4])], [t([3])]), false);
  });
});
