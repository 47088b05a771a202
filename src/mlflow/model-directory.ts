import { readFile, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { type Signature, SignatureError, parseParams, parseSchema } from "./signature.js";

/** An MLflow model directory with an ONNX flavor, as read from its MLmodel file. */
export interface MlflowModel {
  /** Name the model is served under: the directory's name. */
  name: string;
  /** Absolute path of the model directory. */
  path: string;
  /** Absolute path of the ONNX file named by the onnx flavor's `data`. */
  onnxPath: string;
  /** Every flavor MLmodel lists. */
  flavors: string[];
  signature?: Signature;
  /** The saved input example as an MLflow scoring request body, when the model has one. */
  inputExample?: Record<string, unknown>;
  /** Why the input example MLmodel names could not be read; the model is served without it, as MLflow does. */
  inputExampleProblem?: string;
  runId?: string;
  mlflowVersion?: string;
  /** onnxruntime session options the onnx flavor asks for (MLmodel `onnx_session_options`). */
  sessionOptions?: SessionOptions;
}

/** The onnxruntime session options MLflow's onnx flavor can carry that the server honours. */
export interface SessionOptions {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  executionMode?: "sequential" | "parallel";
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
}

/** MLflow writes onnxruntime's Python names; graph_optimization_level is its enum value. */
function readSessionOptions(raw: unknown, where: string): SessionOptions | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== "object") throw new ModelLoadError(`onnx_session_options in "${where}" must be a mapping`);
  const o = raw as Record<string, unknown>;
  const count = (key: string) => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (!Number.isInteger(v) || (v as number) < 0) throw new ModelLoadError(`onnx_session_options.${key} in "${where}" must be a non-negative integer`);
    return v as number;
  };
  const levels: Record<string, SessionOptions["graphOptimizationLevel"]> = { "0": "disabled", "1": "basic", "2": "extended", "99": "all" };
  const level = o.graph_optimization_level === undefined ? undefined : levels[String(o.graph_optimization_level)];
  if (o.graph_optimization_level !== undefined && !level) throw new ModelLoadError(`onnx_session_options.graph_optimization_level in "${where}" must be 0, 1, 2 or 99`);
  const mode = o.execution_mode === undefined ? undefined : String(o.execution_mode).toLowerCase().replace(/^execution_mode\./, "").replace(/^ort_/, "");
  if (mode !== undefined && mode !== "sequential" && mode !== "parallel") throw new ModelLoadError(`onnx_session_options.execution_mode in "${where}" must be sequential or parallel`);
  const options: SessionOptions = { intraOpNumThreads: count("intra_op_num_threads"), interOpNumThreads: count("inter_op_num_threads"), executionMode: mode, graphOptimizationLevel: level };
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as SessionOptions;
}

/** A model directory that cannot be served; the message names the path and what is wrong. */
export class ModelLoadError extends Error {
  override name = "ModelLoadError";
}

/** Turns a model URI (a path or a file:// URI) into an absolute path. */
export function modelPathFromUri(uri: string): string {
  if (uri.startsWith("file:")) return fileURLToPath(uri);
  const scheme = /^([a-z][a-z0-9+.-]*):\/?\//i.exec(uri);
  if (scheme) {
    throw new ModelLoadError(`cannot load "${uri}": only local paths and file:// URIs are supported (download ${scheme[1]} models first, e.g. with mlflow artifacts download)`);
  }
  return resolve(uri);
}

async function isDirectory(path: string): Promise<boolean | undefined> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return undefined;
  }
}

/** Reads the saved input example and turns it into a scoring request body. */
async function readInputExample(dir: string, info: unknown): Promise<Record<string, unknown> | undefined> {
  if (typeof info !== "object" || info === null) return undefined;
  const { artifact_path: file, type, pandas_orient: orient } = info as Record<string, unknown>;
  if (typeof file !== "string") return undefined;
  const example: unknown = JSON.parse(await readFile(join(dir, file), "utf8"));
  if (type === "dataframe") return orient === "records" ? { dataframe_records: example } : { dataframe_split: example };
  if (typeof example === "object" && example !== null && !Array.isArray(example) && ("inputs" in example || "instances" in example)) {
    return example as Record<string, unknown>;
  }
  return { inputs: example };
}

/**
 * Reads an MLflow model directory: MLmodel, its onnx flavor, signature and input
 * example. Throws ModelLoadError, naming the path, for anything that cannot be served.
 */
export async function readModelDirectory(uri: string, name?: string): Promise<MlflowModel> {
  const path = modelPathFromUri(uri);
  const isDir = await isDirectory(path);
  if (isDir === undefined) throw new ModelLoadError(`model path "${path}" does not exist`);
  if (!isDir) throw new ModelLoadError(`model path "${path}" is not a directory: pass the MLflow model directory (the one holding MLmodel)`);

  const mlmodelPath = join(path, "MLmodel");
  let text: string;
  try {
    text = await readFile(mlmodelPath, "utf8");
  } catch {
    throw new ModelLoadError(`"${path}" is not an MLflow model directory: it has no MLmodel file`);
  }
  let mlmodel: Record<string, unknown>;
  try {
    const parsed: unknown = parseYaml(text);
    if (typeof parsed !== "object" || parsed === null) throw new Error("expected a YAML mapping");
    mlmodel = parsed as Record<string, unknown>;
  } catch (error) {
    throw new ModelLoadError(`cannot parse "${mlmodelPath}": ${(error as Error).message.split("\n")[0]!.replace(/:$/, "")}`);
  }

  const flavorsSection = (mlmodel.flavors ?? {}) as Record<string, unknown>;
  if (typeof flavorsSection !== "object" || Array.isArray(flavorsSection)) {
    throw new ModelLoadError(`"flavors" in "${mlmodelPath}" must be a mapping of flavor names to their settings`);
  }
  const flavors = Object.keys(flavorsSection);
  const onnx = flavorsSection.onnx as Record<string, unknown> | undefined;
  if (!onnx) {
    throw new ModelLoadError(
      `model "${path}" has no onnx flavor (its flavors: ${flavors.join(", ") || "none"}). ` +
        "mlflow-connect runs ONNX models: export yours with mlflow.onnx.log_model or mlflow.onnx.save_model.",
    );
  }
  if (typeof onnx.data !== "string") throw new ModelLoadError(`the onnx flavor in "${mlmodelPath}" has no "data" file name`);
  const onnxPath = join(path, onnx.data);
  const onnxIsDir = await isDirectory(onnxPath);
  if (onnxIsDir !== false) {
    throw new ModelLoadError(`the ONNX file "${onnxPath}" named by "${mlmodelPath}" ${onnxIsDir ? "is a directory" : "does not exist"}`);
  }

  let signature: Signature | undefined;
  const rawSignature = mlmodel.signature as Record<string, unknown> | undefined;
  if (rawSignature) {
    try {
      signature = {
        inputs: parseSchema(rawSignature.inputs, `signature inputs of "${mlmodelPath}"`),
        outputs: parseSchema(rawSignature.outputs, `signature outputs of "${mlmodelPath}"`),
        params: parseParams(rawSignature.params, `signature params of "${mlmodelPath}"`),
      };
    } catch (error) {
      if (error instanceof SignatureError) throw new ModelLoadError(error.message);
      throw error;
    }
  }

  return {
    name: name ?? basename(path),
    path,
    onnxPath,
    flavors,
    signature,
    ...(await readInputExample(path, mlmodel.saved_input_example_info).then(
      (inputExample) => ({ inputExample }),
      (error: unknown) => ({ inputExampleProblem: `cannot read the input example of "${path}": ${(error as Error).message}` }),
    )),
    sessionOptions: readSessionOptions(onnx.onnx_session_options, mlmodelPath),
    runId: typeof mlmodel.run_id === "string" ? mlmodel.run_id : undefined,
    mlflowVersion: typeof mlmodel.mlflow_version === "string" ? mlmodel.mlflow_version : undefined,
  };
}
