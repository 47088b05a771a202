import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toJson } from "@bufbuild/protobuf";
import { ModelSchema, PredictRequestSchema, SignatureKind } from "../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType, TensorSchema } from "../gen/mlflow/serving/v1/tensor_pb.js";
import { EditorError, classProbabilities, curlCommand, editorFor, outputViews, requestFromEditor } from "../web-demo/src/model-form.js";

const column = (name: string, dtype: DataType, columnType: string, optional = false) => ({ name, dtype, shape: [-1n], columnType, optional });

const tabular = create(ModelSchema, {
  name: "tab",
  signature: {
    kind: SignatureKind.COLUMNS,
    inputs: [column("x", DataType.FLOAT64, "double"), column("n", DataType.INT64, "long"), column("note", DataType.STRING, "string", true)],
  },
  inputExample: { mlflowJson: JSON.stringify({ dataframe_split: { columns: ["x", "n"], data: [[1.5, 2], [9, 9]] } }) },
});

const textModel = create(ModelSchema, {
  name: "greeter",
  signature: { kind: SignatureKind.TENSORS, inputs: [{ name: "text", dtype: DataType.STRING, shape: [-1n] }] },
  inputExample: { tensors: { text: create(TensorSchema, { dtype: DataType.STRING, shape: [1n], stringData: ["HELLO WORLD"] }) } },
});

const tensorModel = create(ModelSchema, {
  name: "multi",
  signature: {
    kind: SignatureKind.TENSORS,
    inputs: [
      { name: "a", dtype: DataType.FLOAT64, shape: [-1n, 2n] },
      { name: "b", dtype: DataType.INT64, shape: [-1n] },
    ],
  },
  inputExample: {
    tensors: {
      a: create(TensorSchema, { dtype: DataType.FLOAT64, shape: [1n, 2n], doubleData: [1, 2] }),
      b: create(TensorSchema, { dtype: DataType.INT64, shape: [1n], int64Data: [3n] }),
    },
  },
});

describe("web demo: example -> editor", () => {
  it("gives a column-based model a form, one field per column, prefilled from the example's first row", () => {
    assert.deepEqual(editorFor(tabular), {
      kind: "form",
      fields: [
        { name: "x", dtype: DataType.FLOAT64, value: "1.5", hint: "double" },
        { name: "n", dtype: DataType.INT64, value: "2", hint: "long" },
        { name: "note", dtype: DataType.STRING, value: "", hint: "string" },
      ],
    });
  });

  it("gives a one-string model a text box and other models MLflow JSON", () => {
    assert.deepEqual(editorFor(textModel), { kind: "text", input: "text", value: "HELLO WORLD" });
    const json = editorFor(tensorModel);
    assert.equal(json.kind, "json");
    assert.deepEqual(JSON.parse((json as { value: string }).value), { inputs: { a: [[1, 2]], b: [3] } });
  });
});

describe("web demo: editor -> request", () => {
  it("turns form fields into one-row tensors of the column dtypes, skipping an empty optional column", () => {
    const req = requestFromEditor(tabular, editorFor(tabular));
    assert.deepEqual(toJson(PredictRequestSchema, req), {
      modelName: "tab",
      inputs: {
        x: { dtype: "DATA_TYPE_FLOAT64", shape: ["1"], doubleData: [1.5] },
        n: { dtype: "DATA_TYPE_INT64", shape: ["1"], int64Data: ["2"] },
      },
    });
  });

  it("sends text that is not a number as a string, so the server names the problem", () => {
    const editor = editorFor(tabular);
    if (editor.kind !== "form") assert.fail();
    editor.fields[0]!.value = "abc";
    editor.fields[1]!.value = "2.5";
    const { inputs } = requestFromEditor(tabular, editor);
    assert.deepEqual([inputs.x!.dtype, inputs.x!.stringData], [DataType.STRING, ["abc"]]);
    assert.deepEqual([inputs.n!.dtype, inputs.n!.doubleData], [DataType.FLOAT64, [2.5]]);
  });

  it("reads MLflow JSON into shaped tensors and reports JSON it cannot read", () => {
    const req = requestFromEditor(tensorModel, { kind: "json", value: '{"inputs": {"a": [[1, 2], [3, 4]], "b": [5, 6]}}' });
    assert.deepEqual(req.inputs.a!.shape, [2n, 2n]);
    assert.deepEqual(req.inputs.a!.doubleData, [1, 2, 3, 4]);
    assert.deepEqual(req.inputs.b!.int64Data, [5n, 6n]);
    assert.throws(() => requestFromEditor(tensorModel, { kind: "json", value: "{" }), EditorError);
    assert.throws(() => requestFromEditor(tensorModel, { kind: "json", value: '{"inputs": {"a": [[1, 2], [3]]}}' }), /ragged/);
  });

  it("writes the equivalent curl command, quoting for the shell", () => {
    const req = requestFromEditor(textModel, { kind: "text", input: "text", value: "it's" });
    assert.equal(
      curlCommand("http://127.0.0.1:50051", req),
      `curl -s -H 'Content-Type: application/json' -d '{"modelName":"greeter","inputs":{"text":{"dtype":"DATA_TYPE_STRING","shape":["1"],"stringData":["it'\\''s"]}}}' http://127.0.0.1:50051/mlflow.serving.v1.ModelService/Predict`,
    );
  });
});

describe("web demo: outputs", () => {
  const outputs = {
    label: create(TensorSchema, { dtype: DataType.INT64, shape: [2n], int64Data: [2n, 0n] }),
    probabilities: create(TensorSchema, { dtype: DataType.FLOAT32, shape: [2n, 3n], floatData: [0.1, 0.2, 0.7, 0.8, 0.1, 0.1] }),
  };
  it("shows each output as rows", () => {
    assert.deepEqual(outputViews(outputs)[1], { name: "probabilities", shape: [2, 3], rows: [["0.1", "0.2", "0.7"], ["0.8", "0.1", "0.1"]] });
  });
  it("finds a classifier's label and probabilities for the first row", () => {
    assert.deepEqual(classProbabilities(outputs), { label: "2", probabilities: [0.1, 0.2, 0.7] });
    assert.equal(classProbabilities({ y: create(TensorSchema, { dtype: DataType.FLOAT64, shape: [2n, 2n], doubleData: [3, 4, 5, 6] }) }), undefined);
  });
});
