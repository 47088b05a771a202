import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canCastSafely, castTensor } from "../src/core/casting.js";
import { InferenceError } from "../src/core/errors.js";
import { resolveParams } from "../src/core/params.js";

describe("canCastSafely()", () => {
  it("follows numpy's safe casting, which MLflow applies", () => {
    const allowed: Array<[string, string]> = [
      ["int8", "int16"], ["int32", "int64"], ["uint8", "int16"], ["uint32", "int64"], ["uint16", "uint32"],
      ["int8", "float16"], ["int16", "float32"], ["int32", "float64"], ["int64", "float64"], ["uint8", "float32"],
      ["float16", "float32"], ["float32", "float64"], ["bool", "int8"], ["bool", "float32"],
    ];
    const refused: Array<[string, string]> = [
      ["int16", "int8"], ["int8", "uint8"], ["uint8", "int8"], ["int64", "uint64"], ["int16", "float16"], ["int32", "float32"],
      ["int64", "float32"], ["float32", "int32"], ["float64", "float32"], ["float16", "int64"], ["string", "float32"],
      ["float32", "string"], ["int8", "bool"],
    ];
    for (const [from, to] of allowed) assert.equal(canCastSafely(from as never, to as never), true, `${from} -> ${to}`);
    for (const [from, to] of refused) assert.equal(canCastSafely(from as never, to as never), false, `${from} -> ${to}`);
  });
});

describe("castTensor()", () => {
  it("converts values, including into int64 and float16", () => {
    assert.deepEqual([...castTensor("x", { dtype: "int32", shape: [2], data: new Int32Array([1, -2]) }, "int64").data], [1n, -2n]);
    assert.deepEqual([...castTensor("x", { dtype: "uint8", shape: [1], data: new Uint8Array([2]) }, "float16").data], [0x4000]);
    assert.deepEqual([...castTensor("x", { dtype: "int64", shape: [1], data: new BigInt64Array([5n]) }, "float64").data], [5]);
  });

  it("refuses an unsafe cast naming the input and both dtypes", () => {
    assert.throws(
      () => castTensor("b", { dtype: "float64", shape: [1], data: new Float64Array([1.5]) }, "int64"),
      (e: unknown) => e instanceof InferenceError && e.message === 'input "b" expects dtype int64, got float64 (MLflow refuses float64 to int64 casts)',
    );
  });
});

describe("resolveParams()", () => {
  const specs = [
    { name: "k", type: "long" as const, default: 3 },
    { name: "tags", type: "string" as const, default: ["a"], shape: [-1] },
    { name: "when", type: "datetime" as const, default: null },
  ];
  it("fills in defaults and keeps given values", () => {
    assert.deepEqual(resolveParams(specs, { k: 7 }), { k: 7, tags: ["a"], when: null });
    assert.deepEqual(resolveParams(specs, { tags: ["x", "y"], when: "2026-11-28T00:00:00Z" }), { k: 3, tags: ["x", "y"], when: "2026-11-28T00:00:00Z" });
  });
  it("refuses a wrong type, a fraction for a long and a scalar for a list", () => {
    assert.throws(() => resolveParams(specs, { k: 1.5 }), /param "k" expects long, got number 1\.5/);
    assert.throws(() => resolveParams(specs, { tags: "x" }), /param "tags" expects a list of string, got string "x"/);
    assert.throws(() => resolveParams(specs, { when: "yesterday" }), /param "when" expects datetime/);
  });
  it("ignores params the schema does not declare, as MLflow does", () => {
    assert.deepEqual(resolveParams(undefined, { anything: 1 }), {});
  });
});
