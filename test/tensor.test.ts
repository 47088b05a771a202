import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InferenceError } from "../src/core/errors.js";
import { fromFloat16Bits, tensorFromJson, tensorToJson, toFloat16Bits } from "../src/core/tensor.js";

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

  it("refuses strings for numbers, numbers for strings, and out-of-range integers", () => {
    assert.match(refusal(() => tensorFromJson("x", [["1"]], "float32")), /expected float32, got string "1" at \[0, 0\]/);
    assert.match(refusal(() => tensorFromJson("x", [1], "string")), /expected string, got number 1/);
    assert.match(refusal(() => tensorFromJson("x", [300], "uint8")), /expected uint8, got 300, out of range/);
    assert.match(refusal(() => tensorFromJson("x", [1], "bool")), /expected bool, got number 1/);
  });

  it("refuses ragged lists", () => {
    assert.match(refusal(() => tensorFromJson("x", [[1, 2], [3]], "float32")), /ragged nested lists at \[1\]/);
    assert.match(refusal(() => tensorFromJson("x", [[1, 2], 3], "float32")), /ragged/);
    assert.match(refusal(() => tensorFromJson("x", [1, [2]], "float32")), /ragged/);
  });

  it("keeps a scalar as rank 0 and bools as true/false", () => {
    assert.deepEqual(tensorFromJson("x", 7, "float32").shape, []);
    assert.deepEqual(tensorToJson(tensorFromJson("x", [true, false], "bool")), [true, false]);
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
