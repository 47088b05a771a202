import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InferenceError } from "../src/core/errors.js";
import { fromFloat16Bits } from "../src/core/tensor.js";
import { decodeStrings, shapeFromWire, tensorFromFields, tensorFromRaw } from "../src/fronts/typed-fields.js";

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

describe("shapeFromWire()", () => {
  it("refuses negative and unsafe dimensions, and ranks above 32 before reading them", () => {
    assert.deepEqual(shapeFromWire("x", [2n, 4n]), [2, 4]);
    assert.match(refusal(() => shapeFromWire("x", [-1n])), /input "x" has an invalid shape \[-1\]/);
    assert.match(refusal(() => shapeFromWire("x", [2n ** 60n])), /invalid shape/);
    assert.match(refusal(() => shapeFromWire("x", new Array<bigint>(100_000).fill(1n))), /^input "x" has a shape of rank 100000, more than 32$/);
  });
});

describe("tensorFromFields()", () => {
  it("checks the count against the shape before allocating what the shape names", () => {
    const started = performance.now();
    assert.match(refusal(() => tensorFromFields("x", "float32", [2 ** 26, 2 ** 26], [1, 2, 3, 4])), /has 4 values for shape \[67108864, 67108864\]/);
    assert.ok(performance.now() - started < 100);
  });

  it("refuses integers their dtype cannot hold instead of wrapping them", () => {
    assert.match(refusal(() => tensorFromFields("x", "int8", [2], [1, 300])), /input "x": 300 is out of range for int8/);
    assert.match(refusal(() => tensorFromFields("x", "uint8", [1], [-1])), /-1 is out of range for uint8/);
    assert.match(refusal(() => tensorFromFields("x", "uint16", [1], [65536])), /out of range for uint16/);
    assert.deepEqual([...tensorFromFields("x", "int16", [2], [-32768, 32767]).data], [-32768, 32767]);
    assert.deepEqual([...tensorFromFields("x", "int64", [1], [-(2n ** 63n)]).data], [-(2n ** 63n)]);
  });

  it("refuses finite values that float16 or float32 would store as infinity, keeps infinities and NaN", () => {
    assert.match(refusal(() => tensorFromFields("h", "float16", [1], [70000])), /input "h": 70000 is out of range for float16/);
    assert.match(refusal(() => tensorFromFields("f", "float32", [1], [1e300])), /input "f": 1e\+300 is out of range for float32/);
    const h = tensorFromFields("h", "float16", [3], [65504, Infinity, NaN]).data as Uint16Array;
    assert.deepEqual([...h].map(fromFloat16Bits), [65504, Infinity, NaN]);
    // Connect JSON carries float fields as doubles: rounding them to float32 is expected.
    assert.equal(tensorFromFields("f", "float32", [1], [0.1]).data[0], Math.fround(0.1));
  });
});

describe("tensorFromRaw() and decodeStrings()", () => {
  it("checks raw byte counts against the shape before allocating", () => {
    assert.match(refusal(() => tensorFromRaw("x", "float32", [2 ** 26, 2 ** 26], new Uint8Array(16))), /raw data has 16 bytes, shape \[67108864, 67108864\] needs/);
    assert.match(refusal(() => tensorFromRaw("s", "string", [1], new Uint8Array([9, 0, 0, 0, 1]))), /raw data ends inside an element/);
  });

  it("decodes bytes fields as UTF-8", () => {
    assert.deepEqual(decodeStrings([new TextEncoder().encode("été"), new Uint8Array()]), ["été", ""]);
  });
});
