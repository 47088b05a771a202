import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InferenceError } from "../src/core/errors.js";
import { shapeFromWire, tensorFromFields, tensorFromRaw } from "../src/fronts/typed-fields.js";

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
});

describe("tensorFromRaw()", () => {
  it("checks raw byte counts against the shape before allocating", () => {
    assert.match(refusal(() => tensorFromRaw("x", "float32", [2 ** 26, 2 ** 26], new Uint8Array(16))), /raw data has 16 bytes, shape \[67108864, 67108864\] needs/);
    assert.match(refusal(() => tensorFromRaw("s", "string", [1], new Uint8Array([9, 0, 0, 0, 1]))), /raw data ends inside an element/);
  });
});
