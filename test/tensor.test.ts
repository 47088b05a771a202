import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InferenceError } from "../src/core/errors.js";
import { MAX_RANK, fromFloat16Bits, tensorFromJson, tensorFromRows, tensorToJson, toFloat16Bits } from "../src/core/tensor.js";

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InferenceError);
    assert.equal(error.kind, "invalid_input");
    return error.message;
  }
  assert.fail("no error");
}

describe("tensorFromJson()", () => {
  it("infers the shape of nested lists and stores typed data", () => {
    const t = tensorFromJson("x", [[1, 2, 3], [4, 5, 6]], "float32");
    assert.deepEqual(t.shape, [2, 3]);
    assert.ok(t.data instanceof Float32Array);
    assert.deepEqual([...t.data], [1, 2, 3, 4, 5, 6]);
  });

  it("stores int64 as BigInt64Array and converts back to JSON numbers", () => {
    const t = tensorFromJson("x", [1, -2, 9007199254740991], "int64");
    assert.ok(t.data instanceof BigInt64Array);
    assert.deepEqual(tensorToJson(t), [1, -2, 9007199254740991]);
  });

  it("applies MLflow's safe casts: integers into floats yes, fractions into integers no", () => {
    assert.deepEqual([...tensorFromJson("x", [1, 2], "float64").data], [1, 2]);
    assert.match(refusal(() => tensorFromJson("count", [1.5], "int32")), /input "count": expected int32, got fraction 1\.5 .* at \[0\]/);
  });

  it("refuses numbers the float dtype cannot hold, instead of storing infinity", () => {
    assert.match(refusal(() => tensorFromJson("x", [1e300], "float32")), /input "x": expected float32, got 1e\+300, out of range at \[0\]/);
    assert.match(refusal(() => tensorFromJson("x", [[1, -3.5e38]], "float32")), /got -3\.5e\+38, out of range at \[0, 1\]/);
    assert.match(refusal(() => tensorFromJson("h", [70000], "float16")), /input "h": expected float16, got 70000, out of range/);
    assert.match(refusal(() => tensorFromJson("h", [-65520], "float16")), /out of range/);
    // The largest finite values and underflow to zero are fine, as numpy casts them.
    assert.equal(tensorFromJson("x", [3.4028234663852886e38], "float32").data[0], 3.4028234663852886e38);
    assert.equal(fromFloat16Bits(tensorFromJson("h", [65504], "float16").data[0] as number), 65504);
    assert.equal(tensorFromJson("x", [1e-300], "float32").data[0], 0);
    assert.equal(tensorFromJson("x", [1e300], "float64").data[0], 1e300);
  });

  it("refuses strings for numbers, numbers for strings, and out-of-range integers", () => {
    assert.match(refusal(() => tensorFromJson("x", [["1"]], "float32")), /expected float32, got string "1" at \[0, 0\]/);
    assert.match(refusal(() => tensorFromJson("x", [1], "string")), /expected string, got number 1/);
    assert.match(refusal(() => tensorFromJson("x", [300], "uint8")), /expected uint8, got 300, out of range/);
    assert.match(refusal(() => tensorFromJson("x", [-129], "int8")), /expected int8, got -129, out of range/);
    assert.match(refusal(() => tensorFromJson("x", [2 ** 32], "uint32")), /out of range/);
    assert.match(refusal(() => tensorFromJson("x", [1e20], "int64")), /expected int64, got 100000000000000000000, out of range/);
    assert.match(refusal(() => tensorFromJson("x", [1], "bool")), /expected bool, got number 1/);
  });

  it("refuses ragged lists", () => {
    assert.match(refusal(() => tensorFromJson("x", [[1, 2], [3]], "float32")), /ragged nested lists at \[1\]/);
    assert.match(refusal(() => tensorFromJson("x", [[1, 2], 3], "float32")), /ragged/);
    assert.match(refusal(() => tensorFromJson("x", [1, [2]], "float32")), /ragged/);
  });

  it("refuses lists ragged against the first row before allocating the shape it names", () => {
    // 10,000 items then 15,000 scalars: the first row names [15001, 10000], 150 M elements.
    const first = Array.from({ length: 10_000 }, () => "a");
    const value = [first, ...Array.from({ length: 15_000 }, () => "a")];
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    for (const dtype of ["string", "float32", "int64", "bool"] as const) {
      assert.match(refusal(() => tensorFromJson("x", value, dtype)), /input "x": ragged nested lists at \[1\] \(expected 10000 items\)/);
    }
    assert.ok(performance.now() - started < 1000, `${performance.now() - started} ms`);
    assert.ok(process.memoryUsage().rss - rssBefore < 100 * 2 ** 20, "no allocation of the named shape");
  });

  it("finds raggedness deep down and names where", () => {
    assert.match(refusal(() => tensorFromJson("x", [[[1, 2], [3, 4]], [[5, 6], [7]]], "float32")), /ragged nested lists at \[1, 1\] \(expected 2 items\)/);
    assert.match(refusal(() => tensorFromJson("x", [[[1, 2], [3, 4]], [[5, 6], [7, [8]]]], "float32")), /ragged nested lists at \[1, 1, 1\]$/);
    assert.match(refusal(() => tensorFromJson("x", [[1, 2], [3, "4"]], "float32")), /expected float32, got string "4" at \[1, 1\]/);
    assert.deepEqual(tensorFromJson("x", [[], []], "float32").shape, [2, 0]);
  });

  it(`refuses nesting deeper than ${MAX_RANK} levels`, () => {
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i++) deep = [deep];
    assert.match(refusal(() => tensorFromJson("x", deep, "float32")), /nested deeper than 32 levels/);
  });

  it("converts a million values in well under a second (linear, no per-element allocation)", () => {
    const flat = Array.from({ length: 1_000_000 }, (_, i) => i / 2);
    const rows = Array.from({ length: 250_000 }, () => [5.1, 3.5, 1.4, 0.2]);
    const started = performance.now();
    assert.equal(tensorFromJson("x", flat, "float64").data.length, 1_000_000);
    assert.deepEqual(tensorFromJson("x", rows, "float32").shape, [250_000, 4]);
    assert.ok(performance.now() - started < 1000, `${performance.now() - started} ms`);
  });

  it("keeps a scalar as rank 0 and bools as true/false", () => {
    assert.deepEqual(tensorFromJson("x", 7, "float32").shape, []);
    assert.deepEqual(tensorToJson(tensorFromJson("x", [true, false], "bool")), [true, false]);
  });
});

describe("tensorFromRows()", () => {
  it("takes the cells at the given positions, as a column or a table, naming row and column on refusal", () => {
    const rows = [[1, "a", 2], [3, "b", 4]];
    const column = tensorFromRows("c", rows, [2], "int64");
    assert.deepEqual(column.shape, [2]);
    assert.deepEqual(tensorToJson(column), [2, 4]);
    const table = tensorFromRows("t", rows, [2, 0], "float32");
    assert.deepEqual(table.shape, [2, 2]);
    assert.deepEqual(tensorToJson(table), [[2, 1], [4, 3]]);
    assert.match(refusal(() => tensorFromRows("c", rows, [1], "float64")), /input "c": expected float64, got string "a" at \[0\]$/);
    assert.match(refusal(() => tensorFromRows("t", rows, [0, 1], "float64")), /at \[0, 1\]$/);
  });

  it("reads each cell through `read` when given (CSV text)", () => {
    const read = (cell: unknown) => (typeof cell === "string" ? Number(cell) : cell);
    assert.deepEqual(tensorToJson(tensorFromRows("c", [["1"], ["2.5"]], [0], "float64", read)), [1, 2.5]);
  });
});

describe("float16 bits", () => {
  it("round-trips exactly representable values and rounds others to nearest", () => {
    for (const v of [0, 1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8]) assert.equal(fromFloat16Bits(toFloat16Bits(v)), v);
    assert.equal(toFloat16Bits(1), 0x3c00);
    assert.equal(fromFloat16Bits(toFloat16Bits(0.1)), 0.0999755859375);
    assert.equal(fromFloat16Bits(toFloat16Bits(1e6)), Infinity);
  });
});
