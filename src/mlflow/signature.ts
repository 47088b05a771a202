/**
 * MLflow model signatures as MLmodel stores them: `inputs`/`outputs` are JSON
 * strings holding either column specs (`{"type": "double", "name": ...}`) or tensor
 * specs (`{"type": "tensor", "tensor-spec": {"dtype": ..., "shape": ...}}`).
 */

/** MLflow column types (mlflow.types.DataType). */
export const COLUMN_TYPES = ["boolean", "integer", "long", "float", "double", "string", "binary", "datetime"] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export interface ColumnSpec {
  name?: string;
  type: ColumnType;
  required: boolean;
}

export interface TensorSpec {
  name?: string;
  /** numpy dtype name as MLflow writes it, normalised: "float32", "int64", "str", "bool", ... */
  dtype: string;
  /** -1 marks a free dimension. */
  shape: number[];
  required: boolean;
}

export type Schema = { kind: "columns"; columns: ColumnSpec[] } | { kind: "tensors"; tensors: TensorSpec[] };

/** MLflow param types (mlflow.types.ParamSpec). */
export const PARAM_TYPES = ["boolean", "integer", "long", "float", "double", "string", "datetime"] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

/** One entry of the signature's params schema. */
export interface ParamSpec {
  name: string;
  type: ParamType;
  /** The value used when a request does not set the param. */
  default: unknown;
  /** undefined for a scalar, [-1] for a list. */
  shape?: number[];
}

export interface Signature {
  inputs?: Schema;
  outputs?: Schema;
  params?: ParamSpec[];
}

/** MLmodel keeps each part of a signature as a JSON string holding a list. */
function parseJsonList(json: unknown, where: string, items: string): unknown[] | undefined {
  if (json === undefined || json === null) return undefined;
  let list: unknown;
  try {
    list = typeof json === "string" ? JSON.parse(json) : json;
  } catch (error) {
    throw new SignatureError(`${where} is not valid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(list)) throw new SignatureError(`${where} must be a JSON list of ${items}`);
  return list;
}

/** Parses the signature's `params` JSON string. */
export function parseParams(json: unknown, where: string): ParamSpec[] | undefined {
  return parseJsonList(json, where, "param specs")?.map((raw: unknown, i) => {
    const spec = (raw ?? {}) as Record<string, unknown>;
    if (typeof spec.name !== "string") throw new SignatureError(`${where}[${i}] has no name`);
    if (!(PARAM_TYPES as readonly unknown[]).includes(spec.type)) {
      throw new SignatureError(`${where}[${i}]: unsupported param type ${JSON.stringify(spec.type)} (supported: ${PARAM_TYPES.join(", ")})`);
    }
    const shape = Array.isArray(spec.shape) ? spec.shape.map(Number) : undefined;
    return { name: spec.name, type: spec.type as ParamType, default: spec.default ?? null, shape };
  });
}

/** Thrown for a signature MLmodel cannot be served with. */
export class SignatureError extends Error {
  override name = "SignatureError";
}

function parseSpec(raw: unknown, where: string): ColumnSpec | TensorSpec {
  if (typeof raw !== "object" || raw === null) throw new SignatureError(`${where}: expected an object, got ${JSON.stringify(raw)}`);
  const spec = raw as Record<string, unknown>;
  const name = typeof spec.name === "string" ? spec.name : undefined;
  const required = spec.required !== false;
  if (spec.type === "tensor") {
    const t = spec["tensor-spec"] as Record<string, unknown> | undefined;
    if (!t || typeof t.dtype !== "string" || !Array.isArray(t.shape)) {
      throw new SignatureError(`${where}: a tensor spec needs "tensor-spec" with "dtype" and "shape"`);
    }
    return { name, dtype: t.dtype, shape: t.shape.map(Number), required };
  }
  if (typeof spec.type === "string" && (COLUMN_TYPES as readonly string[]).includes(spec.type)) {
    return { name, type: spec.type as ColumnType, required };
  }
  throw new SignatureError(`${where}: unsupported type ${JSON.stringify(spec.type)} (supported: tensor, ${COLUMN_TYPES.join(", ")})`);
}

/** Parses one of the signature's JSON strings (`inputs` or `outputs`). */
export function parseSchema(json: unknown, where: string): Schema | undefined {
  const list = parseJsonList(json, where, "specs");
  if (!list) return undefined;
  const specs = list.map((raw, i) => parseSpec(raw, `${where}[${i}]`));
  const tensors = specs.filter((s): s is TensorSpec => "dtype" in s);
  if (tensors.length === specs.length) return { kind: "tensors", tensors };
  if (tensors.length === 0) return { kind: "columns", columns: specs as ColumnSpec[] };
  throw new SignatureError(`${where} mixes tensor and column specs`);
}
