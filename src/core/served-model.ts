import type { MlflowModel } from "../mlflow/model-directory.js";
import type { ColumnType } from "../mlflow/signature.js";
import { DTYPES, type DType } from "./tensor.js";

/** One input or output of the ONNX graph. */
export interface GraphTensorInfo {
  name: string;
  dtype: DType;
  /** -1 marks a free dimension (a symbolic dimension such as "batch"). */
  shape: readonly number[];
}

/** A model the core can run: the MLflow directory plus what onnxruntime reported of its graph. */
export interface ServedModel {
  name: string;
  source: MlflowModel;
  inputs: readonly GraphTensorInfo[];
  outputs: readonly GraphTensorInfo[];
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

/**
 * The graph input the seed front feeds a raw string to, when the model has exactly
 * one input and it holds strings (the original wrapper's "string in" case).
 */
export function singleStringInput(model: ServedModel): GraphTensorInfo | undefined {
  return model.inputs.length === 1 && model.inputs[0]!.dtype === "string" ? model.inputs[0] : undefined;
}
