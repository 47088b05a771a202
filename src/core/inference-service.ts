import { ModelLoadError, type MlflowModel } from "../mlflow/model-directory.js";
import type { GraphValueInfo } from "../runtime/messages.js";
import { type CoreObserver, NO_OBSERVER } from "./observer.js";
import { type BatchStats, type Batcher, type BatcherOptions, canBatch, createBatcher } from "./batcher.js";
import type { OrtPool } from "../runtime/ort-pool.js";
import { InferenceError, quote } from "./errors.js";
import { readOnnxInfo } from "../mlflow/onnx-info.js";
import { parseScoringRequest } from "../mlflow/scoring-format.js";
import { bindScoringInput } from "./bind-inputs.js";
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
  /** Epoch ms after which the request is answered DEADLINE_EXCEEDED instead of run. */
  deadline?: number;
  /** Aborted when the client goes away: a request not yet run is dropped. */
  signal?: AbortSignal;
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
  loadModel(source: MlflowModel, version?: string, batching?: Partial<Omit<BatcherOptions, "concurrency">>): Promise<ServedModel>;
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
  /** Whether the server should get traffic: a model is served and shutdown has not begun (a reload keeps the old version serving). */
  ready(): boolean;
  /** Marks the server as shutting down: not ready from now on (health checks turn NOT_SERVING). */
  beginShutdown(): void;
  /** Whether beginShutdown() was called. */
  shuttingDown(): boolean;
  /** Batching counters of a served model. */
  batchStats(name: string): BatchStats;
}

export interface InferenceServiceDeps {
  pool: OrtPool;
  /** Batching and queue settings of every model. */
  batching: Omit<BatcherOptions, "concurrency">;
  /** Receives counts and timings for metrics. */
  observer?: CoreObserver;
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

/**
 * The model's source, without its input example when that does not fit the model
 * (then inputExampleProblem says why): MLflow serves such a model, and GetModel,
 * ListModels and the web demo must not fail over it. A fitting example comes back as
 * graph inputs too, to warm the model up with.
 */
function checkInputExample(model: ServedModel): { source: MlflowModel; inputs?: Record<string, Tensor> } {
  const example = model.source.inputExample;
  if (!example) return { source: model.source };
  try {
    const inputs = bindScoringInput(model, parseScoringRequest(example).input);
    validateInputs(model, inputs);
    return { source: model.source, inputs };
  } catch (error) {
    return { source: withoutInputExample(model.source, `does not fit it: ${(error as Error).message}`) };
  }
}

function withoutInputExample(source: MlflowModel, problem: string): MlflowModel {
  const { inputExample: _dropped, ...rest } = source;
  return { ...rest, inputExampleProblem: `the input example of model "${source.name}" ${problem}` };
}

/** Creates the inference core over a worker pool. */
export function createInferenceService(deps: InferenceServiceDeps): InferenceService {
  type Entry = ServedModel & { runtimeId: string; batcher: Batcher };
  const served = new Map<string, Entry>();
  const loading = new Set<string>();
  const listeners = new Set<() => void>();
  let generation = 0;
  let shuttingDown = false;
  /** The first model loaded stays the default one, also after it is unloaded and loaded again. */
  let defaultName: string | undefined;
  const changed = (): void => listeners.forEach((listener) => listener());
  const observer = deps.observer ?? NO_OBSERVER;

  return {
    async loadModel(source, version = "", batching = {}) {
      // Each load gets its own runtime id, so a new version loads beside the old one.
      const runtimeId = `${source.name}#${++generation}`;
      loading.add(source.name);
      changed();
      const started = performance.now();
      let model: Entry;
      try {
        let graph;
        try {
          graph = await deps.pool.load(runtimeId, source.onnxPath, source.sessionOptions);
        } catch (error) {
          throw new ModelLoadError(`cannot load the ONNX model "${source.onnxPath}": ${(error as Error).message}`);
        }
        const inputs = graph.inputs.map((i) => toGraphInfo(source.name, "input", i));
        const outputs = graph.outputs.map((o) => toGraphInfo(source.name, "output", o));
        const { kind, specs } = describeInputs(source, inputs);
        const run = async (feeds: Record<string, Tensor>) => (await deps.pool.run(runtimeId, feeds)) as Record<string, Tensor>;
        model = {
          name: source.name,
          version,
          runtimeId,
          batcher: createBatcher(source.name, canBatch(inputs, outputs), run, { ...deps.batching, ...batching, concurrency: deps.pool.size }, {
            batch: (requests, rows, seconds) => observer.batch(source.name, requests, rows, seconds),
            queue: (depth) => observer.queue(source.name, depth),
            running: (count) => observer.running(source.name, count),
          }),
          source,
          onnx: await readOnnxInfo(source.onnxPath),
          inputs,
          outputs,
          schemaKind: kind,
          inputSpecs: specs,
        };
        const example = checkInputExample(model);
        model.source = example.source;
        // Warmed up before it serves: the first run of each session is the slow one.
        if (example.inputs) {
          const warming = performance.now();
          try {
            await deps.pool.warmUp(runtimeId, example.inputs);
            observer.warmedUp(model.name, (performance.now() - warming) / 1000);
          } catch (error) {
            model.source = withoutInputExample(model.source, `fails to run: ${(error as Error).message}`);
          }
        }
      } catch (error) {
        void deps.pool.unload(runtimeId).catch(() => undefined);
        throw error;
      } finally {
        loading.delete(source.name);
      }
      observer.loaded(model.name, (performance.now() - started) / 1000);
      const previous = served.get(model.name);
      served.set(model.name, model);
      defaultName ??= model.name;
      changed();
      // Requests that reached the old model finish on it before its sessions go.
      if (previous) {
        await previous.batcher.drain();
        await deps.pool.unload(previous.runtimeId);
      }
      return model;
    },

    async unloadModel(name) {
      const model = served.get(name);
      if (!model) throw new InferenceError("not_found", `model "${name}" is not loaded`);
      served.delete(name);
      changed();
      await model.batcher.drain();
      await deps.pool.unload(model.runtimeId);
    },

    model(name, version) {
      const model = name === undefined || name === "" ? (served.get(defaultName ?? "") ?? served.values().next().value) : served.get(name);
      if (!model) {
        const list = [...served.keys()].join(", ") || "none";
        throw new InferenceError("not_found", name ? `model ${quote(name)} is not served here (served: ${list})` : "no model is loaded");
      }
      if (version && version !== model.version) {
        throw new InferenceError("not_found", `model "${model.name}" has no version ${quote(version)} (served: ${model.version || "unversioned"})`);
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
      const model = this.model(request.model, request.version) as Entry;
      validateInputs(model, request.inputs);
      // ONNX sessions take no params: checked, and requests with other params are not merged.
      const params = resolveParams(model.source.signature?.params, request.params);
      let outputs: Record<string, Tensor>;
      try {
        outputs = await model.batcher.submit({ inputs: request.inputs, key: JSON.stringify(params), deadline: request.deadline, signal: request.signal });
        observer.inference(model.name, "ok");
      } catch (error) {
        const e = error instanceof InferenceError ? error : new InferenceError("internal", `model "${model.name}" failed to run`, { cause: error });
        observer.inference(model.name, e.kind);
        throw e;
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
      return !shuttingDown && served.size > 0;
    },

    beginShutdown() {
      shuttingDown = true;
      changed();
    },

    shuttingDown() {
      return shuttingDown;
    },

    batchStats(name) {
      const model = served.get(name);
      if (!model) throw new InferenceError("not_found", `model "${name}" is not loaded`);
      return model.batcher.stats;
    },
  };
}
