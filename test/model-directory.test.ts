import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cpSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { readModelDirectory } from "../src/mlflow/model-directory.js";
import { reference } from "./helpers/reference.js";
import { GREETER, IRIS, SLOW, startServer } from "./helpers/server.js";

describe("readModelDirectory()", () => {
  it("reads the iris model: onnx file, column signature and dataframe input example", async () => {
    const model = await readModelDirectory(IRIS);
    assert.equal(model.name, "iris");
    assert.equal(model.onnxPath, `${IRIS}/model.onnx`);
    assert.deepEqual(model.flavors, ["onnx", "python_function"]);
    assert.equal(model.signature?.inputs?.kind, "columns");
    assert.deepEqual(
      model.signature?.inputs?.kind === "columns" && model.signature.inputs.columns.map((c) => [c.name, c.type, c.required]),
      reference.iris.columns.map((c) => [c, "double", true]),
    );
    assert.deepEqual(model.signature?.outputs, {
      kind: "tensors",
      tensors: [
        { name: "label", dtype: "int64", shape: [-1], required: true },
        { name: "probabilities", dtype: "float32", shape: [-1, 3], required: true },
      ],
    });
    assert.deepEqual(model.inputExample, { dataframe_split: { columns: reference.iris.columns, data: reference.iris.rows.slice(0, 2) } });
  });

  it("reads a tensor signature and a tf-serving input example, from a file:// URI", async () => {
    const model = await readModelDirectory(pathToFileURL(GREETER).href);
    assert.equal(model.path, GREETER);
    assert.deepEqual(model.signature?.inputs, { kind: "tensors", tensors: [{ name: "text", dtype: "str", shape: [-1], required: true }] });
    assert.deepEqual(model.inputExample, { inputs: ["HELLO WORLD"] });
  });

  it("reads a model without signature or example", async () => {
    const model = await readModelDirectory(SLOW);
    assert.equal(model.signature, undefined);
    assert.equal(model.inputExample, undefined);
  });
});

describe("readModelDirectory() on unusual directories", () => {
  async function modelDir(mlmodel: string, files: Record<string, string> = {}): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "mlmodel-"));
    await writeFile(join(dir, "MLmodel"), mlmodel);
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
    return dir;
  }

  it("refuses flavors that are not a mapping", async () => {
    const dir = await modelDir("flavors:\n- onnx\n- sklearn\n");
    await assert.rejects(readModelDirectory(dir), /"flavors" in ".*MLmodel" must be a mapping/);
  });

  it("says when the onnx data path is a directory", async () => {
    const dir = await modelDir("flavors:\n  onnx:\n    data: sub\n");
    await mkdir(join(dir, "sub"));
    await assert.rejects(readModelDirectory(dir), /ONNX file ".*sub" named by .* is a directory/);
  });

  it("serves a model whose input example cannot be read, saying why", async () => {
    const dir = await modelDir(
      "flavors:\n  onnx:\n    data: model.onnx\nsaved_input_example_info:\n  artifact_path: input_example.json\n  type: ndarray\n",
      { "model.onnx": "", "input_example.json": "{not json" },
    );
    const model = await readModelDirectory(dir);
    assert.equal(model.inputExample, undefined);
    assert.match(model.inputExampleProblem ?? "", /cannot read the input example of ".*": .*JSON/);
  });
});

describe("onnx_session_options of the onnx flavor", () => {
  async function withOptions(options: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "session-options-"));
    cpSync(IRIS, dir, { recursive: true });
    const mlmodel = readFileSync(join(dir, "MLmodel"), "utf8").replace("    data: model.onnx\n", `    data: model.onnx\n    onnx_session_options:\n${options}`);
    await writeFile(join(dir, "MLmodel"), mlmodel);
    return dir;
  }

  it("reads MLflow's names into onnxruntime's, and a model with them serves", async () => {
    const dir = await withOptions("      intra_op_num_threads: 1\n      inter_op_num_threads: 1\n      execution_mode: sequential\n      graph_optimization_level: 1\n");
    const model = await readModelDirectory(dir);
    assert.deepEqual(model.sessionOptions, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: "sequential", graphOptimizationLevel: "basic" });
    const server = await startServer([dir]);
    try {
      const res = await fetch(`${server.url}/invocations`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ inputs: reference.iris.rows }) });
      assert.deepEqual(((await res.json()) as { predictions: { label: number[] } }).predictions.label, reference.iris.label);
    } finally {
      await server.close();
    }
  });

  it("refuses values onnxruntime cannot take", async () => {
    await assert.rejects(readModelDirectory(await withOptions("      graph_optimization_level: 5\n")), /graph_optimization_level .* must be 0, 1, 2 or 99/);
    await assert.rejects(readModelDirectory(await withOptions("      intra_op_num_threads: -2\n")), /intra_op_num_threads .* must be a non-negative integer/);
    await assert.rejects(readModelDirectory(await withOptions("      execution_mode: fast\n")), /execution_mode .* must be sequential or parallel/);
  });
});
