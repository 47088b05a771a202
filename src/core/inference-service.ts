import { ModelLoadError, type MlflowModel } from "../mlflow/model-directory.js";
import type { GraphValueInfo, WireTensor } from "../runtime/messages.js";
import type { OrtPool } from "../runtime/ort-pool.js";
import { InferenceError } from "./errors.js";
import { readOnnxInfo } from "../mlflow/onnx-info.js";
import { resolveParams } from "./params.js";
import { type GraphTensorInfo, type ServedModel, describeInputs, isDType } from "./served-model.js";
import type { Tensor } from "./tensor.js";
import { validateInputs } from "./validate-inputs.js";

/** What every front converts its request into. */
export interface InferenceRequest {
  /** Model name; the default model when undefined. */
  model?: string;
  /** Named input tensors of the graph. Their buffers are handed to a worker: callers must not reuse them. */
  inputs: Record<string, Tensor>;
  /** MLflow params, checked against the signature's params schema. */
  params?: Record<string, unknown>;
}

export interface InferenceResponse {
  model: string;
  version: string;
  /** Output tensors in the graph's output order. */
  outputs: Array<readonly [string, Tensor]>;
}

/** The protocol-agnostic inference core every front calls. */
export interface InferenceService {
  /** Loads a model into every worker and serves it under its name. */
  loadModel(source: MlflowModel): Promise<ServedModel>;
  /** The named model, or the default (the only or first loaded) one. Throws not_found. */
  model(name?: string): ServedModel;
  /** Every served model, in load order. */
  models(): ServedModel[];
  /** Validates and runs one request. Throws InferenceError. */
  infer(request: InferenceRequest): Promise<InferenceResponse>;
}

export interface InferenceServiceDeps {
  pool: OrtPool;
}

function toGraphInfo(model: string, where: "input" | "output", info: GraphValueInfo): GraphTensorInfo {
  if (!isDType(info.dtype)) {
    throw new ModelLoadError(
      `model "${model}": graph ${where} "${info.name}" is not a plain tensor (${info.dtype}); ` +
        "export classifiers without ZipMap (skl2onnx: options={'zipmap': False})",
    );
  }
  return { name: info.name, dtype: info.dtype, shape: info.shape };
}

/** Creates the inference core over a worker pool. */
export function createInferenceService(deps: InferenceServiceDeps): InferenceService {
  const served = new Map<string, ServedModel>();

  return {
    async loadModel(source) {
      let graph;
      try {
        graph = await deps.pool.load(source.name, source.onnxPath);
      } catch (error) {
        throw new ModelLoadError(`cannot load the ONNX model "${source.onnxPath}": ${(error as Error).message}`);
      }
      const inputs = graph.inputs.map((i) => toGraphInfo(source.name, "input", i));
      const { kind, specs } = describeInputs(source, inputs);
      const model: ServedModel = {
        name: source.name,
        version: "",
        source,
        onnx: await readOnnxInfo(source.onnxPath),
        inputs,
        outputs: graph.outputs.map((o) => toGraphInfo(source.name, "output", o)),
        schemaKind: kind,
        inputSpecs: specs,
      };
      served.set(model.name, model);
      return model;
    },

    model(name) {
      const model = name === undefined || name === "" ? served.values().next().value : served.get(name);
      if (!model) {
        throw new InferenceError("not_found", name ? `model "${name}" is not served here (served: ${[...served.keys()].join(", ")})` : "no model is loaded");
      }
      return model;
    },

    models() {
      return [...served.values()];
    },

    async infer(request) {
      const model = this.model(request.model);
      validateInputs(model, request.inputs);
      resolveParams(model.source.signature?.params, request.params); // ONNX sessions take no params: checked only
      let outputs: Record<string, WireTensor>;
      try {
        outputs = await deps.pool.run(model.name, request.inputs);
      } catch (error) {
        throw new InferenceError("internal", `model "${model.name}" failed to run`, { cause: error });
      }
      return {
        model: model.name,
        version: model.version,
        outputs: model.outputs.map((o) => [o.name, outputs[o.name] as Tensor] as const),
      };
    },
  };
}
