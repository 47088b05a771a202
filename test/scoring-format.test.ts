import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ScoringFormatError, formatPredictions, parseScoringCsv, parseScoringJson, parseScoringRequest } from "../src/mlflow/scoring-format.js";

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ScoringFormatError);
    return error.message;
  }
  assert.fail("no error");
}

describe("parseScoringRequest()", () => {
  it("reads dataframe_split with and without columns", () => {
    assert.deepEqual(parseScoringRequest({ dataframe_split: { columns: ["a", "b"], data: [[1, 2]] } }).input, {
      kind: "dataframe",
      columns: ["a", "b"],
      rows: [[1, 2]],
    });
    assert.deepEqual(parseScoringRequest({ dataframe_split: { data: [[1, 2]] } }).input, { kind: "dataframe", columns: undefined, rows: [[1, 2]] });
  });

  it("keeps dataframe_records as records: binding reads only the model's columns", () => {
    assert.deepEqual(parseScoringRequest({ dataframe_records: [{ a: 1, b: 2 }, { a: 3 }] }).input, {
      kind: "records",
      records: [{ a: 1, b: 2 }, { a: 3 }],
    });
  });

  it("reads inputs as one tensor or named tensors, and instances of dicts as named tensors", () => {
    assert.deepEqual(parseScoringRequest({ inputs: [[1, 2]] }).input, { kind: "tensor", value: [[1, 2]] });
    assert.deepEqual(parseScoringRequest({ inputs: { x: [1], y: ["a"] } }).input, { kind: "named", tensors: new Map([["x", [1]], ["y", ["a"]]]) });
    assert.deepEqual(parseScoringRequest({ instances: [{ x: 1, y: "a" }, { x: 2, y: "b" }] }).input, {
      kind: "named",
      tensors: new Map([["x", [1, 2]], ["y", ["a", "b"]]]),
    });
    assert.deepEqual(parseScoringRequest({ instances: [1, 2] }).input, { kind: "tensor", value: [1, 2] });
  });

  it("takes names that Object.prototype has (constructor, __proto__, toString, hasOwnProperty) as plain names", () => {
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      const body = `{"instances": [{"${name}": 1}, {"${name}": 2}]}`;
      assert.deepEqual(parseScoringJson(body).input, { kind: "named", tensors: new Map([[name, [1, 2]]]) }, name);
      assert.deepEqual(parseScoringJson(`{"inputs": {"${name}": [1]}}`).input, { kind: "named", tensors: new Map([[name, [1]]]) }, name);
      assert.match(refusal(() => parseScoringJson(`{"instances": [{"x": 1}, {"${name}": 2}]}`)), new RegExp(`has not: "${name}"`), name);
    }
  });

  it("reads a record of 100,000 distinct keys and 1,000 instances of 100 names in linear time", () => {
    const record = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i]));
    const instances = Array.from({ length: 1000 }, () => Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`n${i}`, i])));
    const started = performance.now();
    assert.equal(parseScoringRequest({ dataframe_records: [record] }).input.kind, "records");
    const named = parseScoringRequest({ instances }).input;
    assert.ok(named.kind === "named" && named.tensors.size === 100 && (named.tensors.get("n7") as unknown[]).length === 1000);
    // Quadratic lookups took seconds here; linear ones take milliseconds. Generous for a busy machine.
    assert.ok(performance.now() - started < 1000, `${performance.now() - started} ms`);
  });

  it("passes params through and refuses params that are not an object", () => {
    assert.deepEqual(parseScoringRequest({ inputs: [1], params: { k: 3 } }).params, { k: 3 });
    assert.match(refusal(() => parseScoringRequest({ inputs: [1], params: [3] })), /"params" must be an object/);
  });

  it("refuses malformed bodies with messages that say what is wrong", () => {
    assert.match(refusal(() => parseScoringJson("{")), /not valid JSON/);
    assert.match(refusal(() => parseScoringJson("  ")), /the request is empty/);
    assert.match(refusal(() => parseScoringRequest({})), /exactly one of the fields .*; it has only no fields/);
    const many = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`field${i}`, i]));
    assert.match(refusal(() => parseScoringRequest(many)), /it has only field0, field1, field2, field3, field4, \.\.\.$/);
    assert.match(refusal(() => parseScoringRequest({ dataframe_split: { data: [[1, 2]], columns: ["a"] } })), /data\[0\]" has 2 values for 1 columns/);
    assert.match(refusal(() => parseScoringRequest({ dataframe_records: [1] })), /dataframe_records\[0\]" must be an object/);
    assert.match(refusal(() => parseScoringRequest({ instances: [{ x: 1 }, { y: 2 }] })), /instances\[1\]" has a name that "instances\[0\]" has not: "y"/);
    assert.match(refusal(() => parseScoringRequest({ dataframe_split: { data: [[1, 2], [3]] } })), /data\[1\]" has 1 values where "dataframe_split.data\[0\]" has 2/);
    assert.match(refusal(() => parseScoringRequest({ inputs: "x" })), /"inputs" must be a list/);
  });
});

describe("parseScoringCsv()", () => {
  it("reads a header row and text cells, quoted or not", () => {
    assert.deepEqual(parseScoringCsv('a,"b c"\n1,x\n2,"y, z"\n').input, {
      kind: "dataframe",
      columns: ["a", "b c"],
      rows: [["1", "x"], ["2", "y, z"]],
      textCells: true,
    });
  });
  it("refuses an empty body, broken quoting and records of another width than the header", () => {
    assert.match(refusal(() => parseScoringCsv("")), /the CSV is empty/);
    assert.match(refusal(() => parseScoringCsv('a\n"1')), /the CSV cannot be parsed: record 2 has a quoted field that is not closed/);
    assert.match(refusal(() => parseScoringCsv("a,b\n1,2\n3\n")), /the CSV cannot be parsed: record 3 has 1 fields, the header has 2/);
  });
});

describe("formatPredictions()", () => {
  it("answers one output as its value and several as an object, as MLflow does", () => {
    assert.deepEqual(formatPredictions([["label", [1, 2]]]), { predictions: [1, 2] });
    assert.deepEqual(formatPredictions([["label", [1]], ["probabilities", [[0.5, 0.5]]]]), {
      predictions: { label: [1], probabilities: [[0.5, 0.5]] },
    });
  });
});
