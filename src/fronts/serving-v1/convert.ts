import { create, fromJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  type Model,
  ModelSchema,
  type PredictRequest,
  type PredictResponse,
  PredictResponseSchema,
  SignatureKind,
  SignatureSchema,
  type TensorSpec,
  TensorSpecSchema,
} from "../../../gen/mlflow/serving/v1/model_service_pb.js";
import { bindScoringInput, bindTensors } from "../../core/bind-inputs.js";
import type { InferenceRequest, InferenceResponse } from "../../core/inference-service.js";
import type { ServedModel } from "../../core/served-model.js";
import { parseScoringRequest } from "../../mlflow/scoring-format.js";
import { protoMapEntries } from "../proto-map.js";
import { protoDataType, tensorFromProto, tensorToProto } from "./tensor-convert.js";

/** A typed Predict request as the core's request. */
export function requestFromProto(model: ServedModel, req: PredictRequest): InferenceRequest {
  const tensors = Object.fromEntries(protoMapEntries(req.inputs).map(([name, t]) => [name, tensorFromProto(name, t)]));
  return { model: model.name, inputs: bindTensors(model, tensors), params: req.params as JsonObject | undefined };
}

/** Whether the client sent raw_data: it then gets raw_data back. */
export function wantsRaw(req: PredictRequest): boolean {
  return protoMapEntries(req.inputs).some(([, t]) => t.rawData.byteLength > 0);
}

export function responseToProto(res: InferenceResponse, raw: boolean): PredictResponse {
  return create(PredictResponseSchema, {
    modelName: res.model,
    modelVersion: res.version,
    outputs: Object.fromEntries(res.outputs.map(([name, t]) => [name, tensorToProto(t, raw)])),
  });
}

const KINDS = { columns: SignatureKind.COLUMNS, tensors: SignatureKind.TENSORS, none: SignatureKind.NONE } as const;

/** GetModel/ListModels' description of a served model. */
export function modelToProto(model: ServedModel): Model {
  const { source, onnx } = model;
  const outputs: TensorSpec[] = model.outputs.map((o) =>
    create(TensorSpecSchema, { name: o.name, dtype: protoDataType(o.dtype), shape: o.shape.map(BigInt) }),
  );
  const example = source.inputExample;
  let exampleTensors: Model["inputExample"] = undefined;
  if (example) {
    const bound = bindScoringInput(model, parseScoringRequest(example).input);
    exampleTensors = {
      $typeName: "mlflow.serving.v1.InputExample",
      tensors: Object.fromEntries(Object.entries(bound).map(([name, t]) => [name, tensorToProto(t, false)])),
      mlflowJson: JSON.stringify(example),
    };
  }
  return create(ModelSchema, {
    name: model.name,
    version: model.version,
    flavor: "onnx",
    flavors: source.flavors,
    onnx: {
      irVersion: BigInt(onnx.irVersion),
      producerName: onnx.producerName,
      producerVersion: onnx.producerVersion,
      opsets: onnx.opsets.map((o) => ({ domain: o.domain, version: BigInt(o.version) })),
    },
    signature: create(SignatureSchema, {
      kind: KINDS[model.schemaKind],
      inputs: model.inputSpecs.map((s) =>
        create(TensorSpecSchema, {
          name: s.name,
          dtype: protoDataType(s.dtype),
          shape: s.shape.map(BigInt),
          optional: !s.required,
          columnType: s.columnType ?? "",
        }),
      ),
      outputs,
      params: (source.signature?.params ?? []).map((p) => ({
        name: p.name,
        type: p.type,
        defaultValue: fromJson(ValueSchema, (p.default ?? null) as JsonValue),
        shape: (p.shape ?? []).map(BigInt),
      })),
    }),
    inputExample: exampleTensors,
    ready: true,
    runId: source.runId ?? "",
    mlflowVersion: source.mlflowVersion ?? "",
  });
}
