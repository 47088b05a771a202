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
  /** Model version; the served one when undefined or "". */
  version?: string;
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
  /**
   * Loads a model into every worker and serves it under its name, replacing a model
   * of that name only once the new one is ready (requests in flight finish on the old).
   */
  loadModel(source: MlflowModel, version?: string): Promise<ServedModel>;
  /** Stops serving a model; requests already running finish. Throws not_found. */
  unloadModel(name: string): Promise<void>;
  /** The named model (and version, when given), or the default (the first loaded still served) one. Throws not_found. */
  model(name?: string, version?: string): ServedModel;
  /** Every served model, in load order. */
  models(): ServedModel[];
  /** Names of models being loaded right now. */
  loading(): string[];
  /** Validates and runs one request. Throws InferenceError. */
  infer(request: InferenceRequest): Promise<InferenceResponse>;
  /** Calls `listener` whenever a model starts loading, becomes ready or goes away; returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
  /** Whether the server should get traffic: models loaded, none loading, not shutting down. */
  ready(): boolean;
  /** Marks the server as shutting down: not ready from now on (health checks turn NOT_SERVING). */
  beginShutdown(): void;
  /** Whether beginShutdown() was called. */
  shuttingDown(): boolean;
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
  const served = new Map<string, ServedModel & { runtimeId: string }>();
  const loading = new Set<string>();
  const listeners = new Set<() => void>();
  let generation = 0;
  let shuttingDown = false;
  const changed = (): void => listeners.forEach((listener) => listener());

  return {
    async loadModel(source, version = "") {
      // Each load gets its own runtime id, so a new version loads beside the old one.
      const runtimeId = `${source.name}#${++generation}`;
      loading.add(source.name);
      changed();
      let model: ServedModel & { runtimeId: string };
      try {
        let graph;
        try {
          graph = await deps.pool.load(runtimeId, source.onnxPath);
        } catch (error) {
          throw new ModelLoadError(`cannot load the ONNX model "${source.onnxPath}": ${(error as Error).message}`);
        }
        const inputs = graph.inputs.map((i) => toGraphInfo(source.name, "input", i));
        const { kind, specs } = describeInputs(source, inputs);
        model = {
          name: source.name,
          version,
          runtimeId,
          source,
          onnx: await readOnnxInfo(source.onnxPath),
          inputs,
          outputs: graph.outputs.map((o) => toGraphInfo(source.name, "output", o)),
          schemaKind: kind,
          inputSpecs: specs,
        };
      } catch (error) {
        void deps.pool.unload(runtimeId).catch(() => undefined);
        throw error;
      } finally {
        loading.delete(source.name);
      }
      const previous = served.get(model.name);
      served.set(model.name, model);
      changed();
      // Runs already sent to the old sessions are ahead of this in each worker's queue.
      if (previous) await deps.pool.unload(previous.runtimeId);
      return model;
    },

    async unloadModel(name) {
      const model = served.get(name);
      if (!model) throw new InferenceError("not_found", `model "${name}" is not loaded`);
      served.delete(name);
      changed();
      await deps.pool.unload(model.runtimeId);
    },

    model(name, version) {
      const model = name === undefined || name === "" ? served.values().next().value : served.get(name);
      if (!model) {
        const list = [...served.keys()].join(", ") || "none";
        throw new InferenceError("not_found", name ? `model "${name}" is not served here (served: ${list})` : "no model is loaded");
      }
      if (version && version !== model.version) {
        throw new InferenceError("not_found", `model "${model.name}" has no version "${version}" (served: ${model.version || "unversioned"})`);
      }
      return model;
    },

    models() {
      return [...served.values()];
    },

    loading() {
      return [...loading];
    },

    async infer(request) {
      const model = this.model(request.model, request.version) as ServedModel & { runtimeId: string };
      validateInputs(model, request.inputs);
      resolveParams(model.source.signature?.params, request.params); // ONNX sessions take no params: checked only
      let outputs: Record<string, WireTensor>;
      try {
        outputs = await deps.pool.run(model.runtimeId, request.inputs);
      } catch (error) {
        throw new InferenceError("internal", `model "${model.name}" failed to run`, { cause: error });
      }
      return {
        model: model.name,
        version: model.version,
        outputs: model.outputs.map((o) => [o.name, outputs[o.name] as Tensor] as const),
      };
    },

    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    ready() {
      return !shuttingDown && loading.size === 0 && served.size > 0;
    },

    beginShutdown() {
      shuttingDown = true;
      changed();
    },

    shuttingDown() {
      return shuttingDown;
    },
  };
}
