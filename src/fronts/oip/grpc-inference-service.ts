import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  GRPCInferenceService,
  type InferTensorContents,
  InferTensorContentsSchema,
  ModelInferResponseSchema,
  ModelMetadataResponseSchema,
} from "../../../gen/inference/grpc_predict_v2_pb.js";
import { bindTensors } from "../../core/bind-inputs.js";
import { invalidInput, quote } from "../../core/errors.js";
import type { InferenceService } from "../../core/inference-service.js";
import { OIP_DATATYPES, type Tensor } from "../../core/tensor.js";
import { noteModel } from "../call-info.js";
import { rpcLimits } from "../call-limits.js";
import { type TypedFields, decodeStrings, fieldFor, fieldValues, rawFromTensor, shapeFromWire, tensorFromFields, tensorFromRaw } from "../typed-fields.js";
import { checkRequestedOutputs, inputDType, modelMetadata, paramsFromGrpc, selectOutputs, tensorsByName } from "./convert.js";

/** InferTensorContents' field for each family of TypedFields (FP16 travels in fp32_contents). */
const CONTENTS = {
  bool: "boolContents",
  int: "intContents",
  int64: "int64Contents",
  uint: "uintContents",
  uint64: "uint64Contents",
  float: "fp32Contents",
  double: "fp64Contents",
  strings: "bytesContents",
} as const satisfies Record<keyof TypedFields, keyof InferTensorContents>;

function contentsOf(t: Tensor): InferTensorContents {
  const field = fieldFor(t.dtype, "uint");
  const values = fieldValues(t);
  const contents = create(InferTensorContentsSchema);
  (contents[CONTENTS[field]] as unknown[]) = field === "strings" ? (values as string[]).map((s) => new TextEncoder().encode(s)) : values;
  return contents;
}

/** The Open Inference Protocol's gRPC service, inference.GRPCInferenceService. */
export function createGrpcInferenceService(
  core: InferenceService,
  server: { name: string; version: string },
  defaultDeadlineMs: number,
): ServiceImpl<typeof GRPCInferenceService> {
  return {
    serverLive: async () => ({ live: true }),
    serverReady: async () => ({ ready: core.ready() }),
    modelReady: async (req) => ({ ready: core.models().some((m) => m.name === req.name && (!req.version || req.version === m.version)) }),
    serverMetadata: async () => ({ name: server.name, version: server.version, extensions: ["model_repository"] }),
    async modelMetadata(req) {
      const meta = modelMetadata(core.model(req.name, req.version));
      const tensor = (t: { name: string; datatype: string; shape: number[] }) => ({ ...t, shape: t.shape.map(BigInt) });
      return create(ModelMetadataResponseSchema, { ...meta, inputs: meta.inputs.map(tensor), outputs: meta.outputs.map(tensor) });
    },

    async modelInfer(req, context) {
      const model = core.model(req.modelName, req.modelVersion);
      noteModel(context, model.name);
      const raw = req.rawInputContents.length > 0;
      if (raw && req.rawInputContents.length !== req.inputs.length) {
        throw invalidInput(`raw_input_contents has ${req.rawInputContents.length} entries for ${req.inputs.length} inputs`);
      }
      const tensors = req.inputs.map((input, i): [string, Tensor] => {
        const dtype = inputDType(input.name, input.datatype);
        const shape = shapeFromWire(input.name, input.shape);
        if (raw) {
          // The protocol makes them exclusive; Triton refuses both, so does this.
          if (input.contents) throw invalidInput(`input ${quote(input.name)} has contents although the request uses raw_input_contents: send one or the other`);
          return [input.name, tensorFromRaw(input.name, dtype, shape, req.rawInputContents[i]!)];
        }
        const field = fieldFor(dtype, "uint");
        const contents = input.contents ?? create(InferTensorContentsSchema);
        const values = field === "strings" ? decodeStrings(contents.bytesContents) : contents[CONTENTS[field]];
        return [input.name, tensorFromFields(input.name, dtype, shape, values)];
      });
      const requested = req.outputs.map((o) => o.name);
      checkRequestedOutputs(model, requested);
      const response = await core.infer({
        model: model.name,
        inputs: bindTensors(model, tensorsByName(tensors)),
        params: paramsFromGrpc(req.parameters),
        ...rpcLimits(context, defaultDeadlineMs),
      });
      const outputs = selectOutputs(response, requested);
      return create(ModelInferResponseSchema, {
        modelName: response.model,
        modelVersion: response.version,
        id: req.id,
        outputs: outputs.map(([name, t]) => ({
          name,
          datatype: OIP_DATATYPES[t.dtype],
          shape: t.shape.map(BigInt),
          contents: raw ? undefined : contentsOf(t),
        })),
        rawOutputContents: raw ? outputs.map(([, t]) => rawFromTensor(t)) : [],
      });
    },
  };
}

export { GRPCInferenceService };
