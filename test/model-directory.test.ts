import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { readModelDirectory } from "../src/mlflow/model-directory.js";
import { reference } from "./helpers/reference.js";
import { GREETER, IRIS, SLOW } from "./helpers/server.js";

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
