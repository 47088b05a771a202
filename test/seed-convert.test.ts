import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { InferenceResponse } from "../src/core/inference-service.js";
import type { ServedModel } from "../src/core/served-model.js";
import { requestFromSeed, seedValueFromResponse } from "../src/fronts/seed/convert.js";

function model(inputDtype: "string" | "float32"): ServedModel {
  const input = { name: "x", dtype: inputDtype, shape: [-1] } as const;
  return {
    name: "m",
    version: "",
    source: { name: "m", path: "/m", onnxPath: "/m/model.onnx", flavors: ["onnx"] },
    onnx: { irVersion: 8, producerName: "", producerVersion: "", opsets: [] },
    inputs: [input],
    outputs: [{ name: "label", dtype: "string", shape: [-1] }],
    schemaKind: "none",
    inputSpecs: [{ ...input, required: true }],
  };
}

const oneString: InferenceResponse = { model: "m", version: "", outputs: [["label", { dtype: "string", shape: [1], data: ["b"] }]] };

describe("the seed front's string semantics", () => {
  it("passes the raw string to a one-string-input model and answers its one string as is", () => {
    assert.deepEqual(requestFromSeed(model("string"), "HELLO").inputs, { x: { dtype: "string", shape: [1], data: ["HELLO"] } });
    assert.equal(seedValueFromResponse(model("string"), oneString), "b");
  });

  it("answers MLflow JSON for any other model, even when it predicts one string", () => {
    assert.equal(seedValueFromResponse(model("float32"), oneString), '{"predictions":["b"]}');
  });
});
