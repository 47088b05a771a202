import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, fromJsonString, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { PredictRequestSchema } from "../gen/mlflow/serving/v1/model_service_pb.js";
import { TensorSchema } from "../gen/mlflow/serving/v1/tensor_pb.js";
import { protoMapEntries } from "../src/fronts/proto-map.js";

describe("protoMapEntries()", () => {
  it('lists a map entry "__proto__" that protobuf-es decoded into the prototype, from binary and JSON', () => {
    const tensor = toBinary(TensorSchema, create(TensorSchema, { shape: [1n] }));
    const entry = (key: string) => new BinaryWriter().tag(1, WireType.LengthDelimited).string(key).tag(2, WireType.LengthDelimited).bytes(tensor).finish();
    const bytes = new BinaryWriter().tag(3, WireType.LengthDelimited).bytes(entry("__proto__")).tag(3, WireType.LengthDelimited).bytes(entry("x")).finish();
    const fromWire = fromBinary(PredictRequestSchema, bytes);
    assert.deepEqual(Object.keys(fromWire.inputs), ["x"], "protobuf-es does not list it itself");
    assert.deepEqual(protoMapEntries(fromWire.inputs).map(([k, t]) => [k, t.shape]), [["x", [1n]], ["__proto__", [1n]]]);
    const fromJson = fromJsonString(PredictRequestSchema, '{"inputs": {"__proto__": {"shape": ["2"]}}}');
    assert.deepEqual(protoMapEntries(fromJson.inputs).map(([k, t]) => [k, t.shape]), [["__proto__", [2n]]]);
  });

  it("lists an ordinary map as Object.entries does", () => {
    const req = create(PredictRequestSchema, { inputs: { a: {}, constructor: {} } });
    assert.deepEqual(protoMapEntries(req.inputs).map(([k]) => k), ["a", "constructor"]);
  });
});
