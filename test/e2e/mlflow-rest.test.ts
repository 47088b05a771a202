import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { curlPost } from "../helpers/curl.js";
import { PROBABILITY_TOLERANCE, reference } from "../helpers/reference.js";
import { ABC_TABLE, ABC_TENSORS, DTYPES, IRIS, MULTI, type RunningServer, TABULAR, startServer } from "../helpers/server.js";
import { commandExists, toolSkip } from "../helpers/tools.js";

const { iris, multi, tabular } = reference;
const hasCurl = () => !toolSkip("curl", commandExists("curl"), "apt-get install -y curl");

function assertIris(json: unknown): void {
  const { predictions } = json as { predictions: { label: number[]; probabilities: number[][] } };
  assert.deepEqual(predictions.label, iris.label);
  assert.deepEqual(predictions.probabilities.map((row) => row.length), iris.probabilities.map(() => 3));
  predictions.probabilities.forEach((row, i) =>
    row.forEach((p, j) => assert.ok(Math.abs(p - iris.probabilities[i]![j]!) < PROBABILITY_TOLERANCE)),
  );
}

const records = iris.rows.map((row) => Object.fromEntries(iris.columns.map((c, i) => [c, row[i]])));

describe("POST /invocations, as mlflow models serve answers it", () => {
  const servers: Record<string, RunningServer> = {};
  const url = (model: string) => `${servers[model]!.url}/invocations`;
  before(async () => {
    const list = { iris: IRIS, multi: MULTI, tabular: TABULAR, abc_table: ABC_TABLE, abc_tensors: ABC_TENSORS, dtypes: DTYPES };
    await Promise.all(Object.entries(list).map(async ([name, path]) => (servers[name] = await startServer([path]))));
  });
  after(() => Promise.all(Object.values(servers).map((s) => s.close())));

  const irisBodies: Record<string, string> = {
    dataframe_split: JSON.stringify({ dataframe_split: { columns: iris.columns, data: iris.rows } }),
    "dataframe_split with an index": JSON.stringify({ dataframe_split: { index: iris.rows.map((_, i) => i), columns: iris.columns, data: iris.rows } }),
    dataframe_records: JSON.stringify({ dataframe_records: records }),
    "instances (rows)": JSON.stringify({ instances: iris.rows }),
    "instances (dicts)": JSON.stringify({ instances: records }),
    "inputs (list)": JSON.stringify({ inputs: iris.rows }),
    "inputs (columns by name)": JSON.stringify({ inputs: Object.fromEntries(iris.columns.map((c, i) => [c, iris.rows.map((r) => r[i])])) }),
  };
  for (const [format, body] of Object.entries(irisBodies)) {
    it(`scores the iris model from ${format}`, async (t) => {
      if (!hasCurl()) return t.skip("curl missing");
      const { status, json } = await curlPost(url("iris"), body);
      assert.equal(status, 200);
      assertIris(json);
    });
  }

  it("scores text/csv with a header row", async (t) => {
    if (!hasCurl()) return t.skip("curl missing");
    const csv = [iris.columns.map((c) => `"${c}"`).join(","), ...iris.rows.map((r) => r.join(","))].join("\n");
    const { status, json } = await curlPost(url("iris"), csv, "text/csv");
    assert.equal(status, 200);
    assertIris(json);
  });

  // The request bodies of MLflow's documentation for `mlflow models serve`, verbatim.
  const docs: Array<[string, string, string, unknown]> = [
    ["abc_table", "application/json", '{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3], [4, 5, 6]]}}', reference.abc_table.total],
    ["abc_table", "application/json", '{"dataframe_records": [{"a": 1,"b": 2,"c": 3}, {"a": 4,"b": 5,"c": 6}]}', reference.abc_table.total],
    ["abc_table", "text/csv", "a,b,c\n1,2,3\n4,5,6", reference.abc_table.total],
    [
      "abc_tensors",
      "application/json",
      '{"instances": [{"a": "s1", "b": 1, "c": [1, 2, 3]}, {"a": "s2", "b": 2, "c": [4, 5, 6]}, {"a": "s3", "b": 3, "c": [7, 8, 9]}]}',
      reference.abc_tensors,
    ],
    [
      "abc_tensors",
      "application/json",
      '{"inputs": {"a": ["s1", "s2", "s3"], "b": [1, 2, 3], "c": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}}',
      reference.abc_tensors,
    ],
    ["iris", "application/json", '{"inputs": [[1, 2, 3, 4]]}', undefined],
  ];
  for (const [model, type, body, expected] of docs) {
    it(`answers MLflow's documented body ${body.slice(0, 50)}...`, async (t) => {
      if (!hasCurl()) return t.skip("curl missing");
      const { status, json } = await curlPost(url(model), body, type);
      assert.equal(status, 200, JSON.stringify(json));
      const { predictions } = json as { predictions: unknown };
      if (expected !== undefined) assert.deepEqual(predictions, expected);
      else assert.equal((predictions as { label: number[] }).label.length, 1);
    });
  }

  it("scores several named float64 and int64 inputs with params, int64 exact beyond 2^53 on the way out", async (t) => {
    if (!hasCurl()) return t.skip("curl missing");
    const body = JSON.stringify({ inputs: { a: multi.a, b: multi.b }, params: { scale: 2.5, tags: ["a", "b"] } });
    const { status, json } = await curlPost(url("multi"), body);
    assert.equal(status, 200);
    assert.deepEqual(json, { predictions: { sum: multi.sum, doubled: multi.doubled } });
  });

  it("feeds one graph input per column, dropping an optional column the graph does not take", async (t) => {
    if (!hasCurl()) return t.skip("curl missing");
    const rows = tabular.x.map((x, i) => [x, tabular.n[i], `row ${i}`]);
    const withComment = JSON.stringify({ dataframe_split: { columns: ["x", "n", "comment"], data: rows } });
    const without = JSON.stringify({ dataframe_split: { columns: ["x", "n"], data: rows.map((r) => r.slice(0, 2)) } });
    for (const body of [withComment, without]) {
      const { status, json } = await curlPost(url("tabular"), body);
      assert.equal(status, 200, JSON.stringify(json));
      assert.deepEqual(json, { predictions: tabular.y });
    }
  });

  it("passes every dtype through unchanged", async (t) => {
    if (!hasCurl()) return t.skip("curl missing");
    const values: Record<string, unknown[]> = {
      bool: [true, false],
      int8: [-128, 127],
      int16: [-32768, 32767],
      int32: [-2147483648, 2147483647],
      int64: [-9007199254740991, 9007199254740991],
      uint8: [0, 255],
      uint16: [0, 65535],
      uint32: [0, 4294967295],
      uint64: [0, 9007199254740991],
      float16: [0.5, -65504],
      float32: [0.25, -1.5e38],
      float64: [1e-300, -2.5],
      string: ["héllo", ""],
    };
    const { status, json } = await curlPost(url("dtypes"), JSON.stringify({ inputs: values }));
    assert.equal(status, 200, JSON.stringify(json));
    const { predictions } = json as { predictions: Record<string, unknown[]> };
    for (const [dtype, list] of Object.entries(values)) {
      const expected = dtype === "float32" ? list.map((v) => Math.fround(v as number)) : list;
      assert.deepEqual(predictions[`out_${dtype}`], expected, dtype);
    }
  });

  it("answers MLflow's errors: 415 for other content types, BAD_REQUEST for unreadable bodies, INVALID_PARAMETER_VALUE for schema mismatches", async (t) => {
    if (!hasCurl()) return t.skip("curl missing");
    const cases: Array<[string, string, number, string, RegExp]> = [
      ["text/plain", "hello", 415, "BAD_REQUEST", /Content type must be one of application\/json, text\/csv; got "text\/plain"/],
      ["application/json", "{", 400, "BAD_REQUEST", /not valid JSON/],
      ["application/json", '{"data": []}', 400, "BAD_REQUEST", /exactly one of the fields/],
      ["text/csv", 'a,b\n1,"2', 400, "BAD_REQUEST", /the CSV cannot be parsed/],
      ["application/json", '{"inputs": [[1, 2, 3]]}', 400, "INVALID_PARAMETER_VALUE", /input "input" expects shape \[-1, 4\], got \[1, 3\]/],
      ["text/csv", "a,b\n1,2", 400, "INVALID_PARAMETER_VALUE", /missing column "sepal length \(cm\)"/],
    ];
    for (const [type, body, status, code, message] of cases) {
      const res = await curlPost(url("iris"), body, type);
      assert.equal(res.status, status, body);
      const error = res.json as { error_code: string; message: string };
      assert.equal(error.error_code, code, body);
      assert.match(error.message, message);
    }
  });

  it("answers /ping, /health and /version", async () => {
    const base = servers.iris!.url;
    for (const path of ["/ping", "/health"]) {
      const res = await fetch(base + path);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "\n");
    }
    const version = await fetch(`${base}/version`);
    assert.match(await version.text(), /^\d+\.\d+\.\d+$/);
  });
});
