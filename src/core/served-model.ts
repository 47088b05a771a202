import { type MlflowModel, ModelLoadError } from "../mlflow/model-directory.js";
import type { OnnxInfo } from "../mlflow/onnx-info.js";
import type { ColumnType } from "../mlflow/signature.js";
import { DTYPES, type DType } from "./tensor.js";

/** One input or output of the ONNX graph. */
export interface GraphTensorInfo {
  name: string;
  dtype: DType;
  /** -1 marks a free dimension (a symbolic dimension such as "batch"). */
  shape: readonly number[];
}

/** An input as clients address it: a signature column, a signature tensor, or a graph input. */
export interface InputSpec {
  name: string;
  dtype: DType;
  /** -1 marks a free dimension; a column is [-1]. */
  shape: readonly number[];
  required: boolean;
  /** The MLflow column type, for column-based signatures. */
  columnType?: ColumnType;
}

/** How the model's inputs are declared: MLmodel signature columns or tensors, or only the graph. */
export type SchemaKind = "columns" | "tensors" | "none";

/** A model the core can run: the MLflow directory plus what onnxruntime reported of its graph. */
export interface ServedModel {
  name: string;
  /** Version label; "" until model repositories bring versions. */
  version: string;
  source: MlflowModel;
  onnx: OnnxInfo;
  /** The graph's inputs and outputs, as onnxruntime runs them. */
  inputs: readonly GraphTensorInfo[];
  outputs: readonly GraphTensorInfo[];
  schemaKind: SchemaKind;
  /** The inputs clients address (signature first, else the graph's). */
  inputSpecs: readonly InputSpec[];
}

/** Whether a string names one of our dtypes. */
export function isDType(value: string): value is DType {
  return (DTYPES as readonly string[]).includes(value);
}

/** The dtype that holds values of an MLflow column type (binary and datetime travel as strings). */
export function columnDType(type: ColumnType): DType {
  switch (type) {
    case "boolean":
      return "bool";
    case "integer":
      return "int32";
    case "long":
      return "int64";
    case "float":
      return "float32";
    case "double":
      return "float64";
    case "string":
    case "binary":
    case "datetime":
      return "string";
  }
}

/** Our dtype for a numpy dtype name as MLflow tensor specs write it. */
function tensorSpecDType(model: string, numpyName: string): DType {
  if (["str", "object", "bytes", "string"].includes(numpyName) || /^[<>|]?[USO]\d*$/.test(numpyName)) return "string";
  if (isDType(numpyName)) return numpyName;
  throw new ModelLoadError(`model "${model}": unsupported tensor dtype "${numpyName}" in its signature`);
}

/** The inputs clients address: from the signature when MLmodel has one, else the graph's. */
export function describeInputs(source: MlflowModel, graph: readonly GraphTensorInfo[]): { kind: SchemaKind; specs: InputSpec[] } {
  const schema = source.signature?.inputs;
  if (schema?.kind === "columns") {
    return {
      kind: "columns",
      specs: schema.columns.map((c, i) => ({
        name: c.name ?? String(i),
        dtype: columnDType(c.type),
        shape: [-1],
        required: c.required,
        columnType: c.type,
      })),
    };
  }
  if (schema?.kind === "tensors") {
    return {
      kind: "tensors",
      specs: schema.tensors.map((t, i) => ({
        name: t.name ?? graph[i]?.name ?? String(i),
        dtype: tensorSpecDType(source.name, t.dtype),
        shape: t.shape,
        required: t.required,
      })),
    };
  }
  return { kind: "none", specs: graph.map((g) => ({ ...g, required: true })) };
}

/**
 * The graph input the seed front feeds a raw string to, when the model has exactly
 * one input and it holds strings (the original wrapper's "string in" case).
 */
export function singleStringInput(model: ServedModel): GraphTensorInfo | undefined {
  return model.inputs.length === 1 && model.inputs[0]!.dtype === "string" ? model.inputs[0] : undefined;
}
