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

export interface Signature {
  inputs?: Schema;
  outputs?: Schema;
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
  if (json === undefined || json === null) return undefined;
  let list: unknown;
  try {
    list = typeof json === "string" ? JSON.parse(json) : json;
  } catch (error) {
    throw new SignatureError(`${where} is not valid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(list)) throw new SignatureError(`${where} must be a JSON list of specs`);
  const specs = list.map((raw, i) => parseSpec(raw, `${where}[${i}]`));
  const tensors = specs.filter((s): s is TensorSpec => "dtype" in s);
  if (tensors.length === specs.length) return { kind: "tensors", tensors };
  if (tensors.length === 0) return { kind: "columns", columns: specs as ColumnSpec[] };
  throw new SignatureError(`${where} mixes tensor and column specs`);
}
