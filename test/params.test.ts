import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InferenceError } from "../src/core/errors.js";
import { resolveParams } from "../src/core/params.js";

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InferenceError);
    return error.message;
  }
  assert.fail("no error");
}

describe("resolveParams()", () => {
  it("reads only the request's own params: a param named like an Object.prototype member gets its default", () => {
    const specs = [
      { name: "toString", type: "double", default: 1 },
      { name: "constructor", type: "string", default: "c" },
    ] as const;
    assert.deepEqual(resolveParams(specs.map((s) => ({ ...s })), {}), { toString: 1, constructor: "c" });
    assert.deepEqual(resolveParams(specs.map((s) => ({ ...s })), JSON.parse('{"toString": 2.5}')), { toString: 2.5, constructor: "c" });
  });

  it("describes a wrong value without spelling it out, however large or deep", () => {
    const specs = [{ name: "scale", type: "double" as const, default: 1 }];
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    assert.equal(refusal(() => resolveParams(specs, { scale: deep })), 'param "scale" expects double, got an object');
    assert.equal(refusal(() => resolveParams(specs, { scale: "z".repeat(1_000_000) })), `param "scale" expects double, got string "${"z".repeat(39)}...`);
  });
});
