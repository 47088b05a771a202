/**
 * The web demo's logic, free of the DOM so it is unit-tested in Node: what editor a
 * model gets, how the editor's content becomes a Predict request, how outputs are
 * shown, and the equivalent curl command.
 */
import { type MessageInitShape, create, toJsonString } from "@bufbuild/protobuf";
import { type Model, type PredictRequest, PredictRequestSchema, SignatureKind } from "../../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType, type Tensor, TensorSchema } from "../../gen/mlflow/serving/v1/tensor_pb.js";

/** One form field: a column (or one-value-per-row input) of the model. */
export interface Field {
  name: string;
  dtype: DataType;
  /** Text as typed; converted to the dtype on submit. */
  value: string;
  /** MLflow column type, shown as a hint. */
  hint: string;
}

/** The input editor a model gets. */
export type Editor =
  /** Tabular models: one field per column, one row. */
  | { kind: "form"; fields: Field[] }
  /** A model with one string input: a text box. */
  | { kind: "text"; input: string; value: string }
  /** Anything else: MLflow's "inputs" JSON, named tensors as nested lists. */
  | { kind: "json"; value: string };

/** A mistake in the editor the page reports before calling the server. */
export class EditorError extends Error {}

const NUMERIC_FIELD: Partial<Record<DataType, keyof Tensor>> = {
  [DataType.INT8]: "intData",
  [DataType.INT16]: "intData",
  [DataType.INT32]: "intData",
  [DataType.UINT8]: "intData",
  [DataType.UINT16]: "intData",
  [DataType.INT64]: "int64Data",
  [DataType.UINT32]: "uintData",
  [DataType.UINT64]: "uint64Data",
  [DataType.FLOAT16]: "floatData",
  [DataType.FLOAT32]: "floatData",
  [DataType.FLOAT64]: "doubleData",
};

/** The elements of a tensor as JS values, whatever field holds them. */
export function tensorValues(t: Tensor): Array<number | string | boolean> {
  if (t.dtype === DataType.STRING) return t.stringData;
  if (t.dtype === DataType.BYTES) return t.bytesData.map((b) => new TextDecoder().decode(b));
  if (t.dtype === DataType.BOOL) return t.boolData;
  const field = NUMERIC_FIELD[t.dtype];
  return field ? (t[field] as Array<number | bigint>).map(Number) : [];
}

/** The example's first row by column name, from its MLflow JSON (dataframe_split or _records). */
function exampleRow(model: Model): Record<string, unknown> {
  try {
    const body = JSON.parse(model.inputExample?.mlflowJson ?? "{}") as Record<string, unknown>;
    const split = body.dataframe_split as { columns?: string[]; data?: unknown[][] } | undefined;
    if (split?.columns && split.data?.[0]) return Object.fromEntries(split.columns.map((c, i) => [c, split.data![0]![i]]));
    const records = body.dataframe_records as Array<Record<string, unknown>> | undefined;
    return records?.[0] ?? {};
  } catch {
    return {};
  }
}

/** Reshapes flat values into nested lists following `shape`. */
function nest(values: unknown[], shape: number[]): unknown {
  if (shape.length <= 1) return shape.length === 0 ? values[0] : values;
  const [, ...rest] = shape;
  const size = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0]! }, (_, i) => nest(values.slice(i * size, (i + 1) * size), rest));
}

/** The editor for a model, prefilled from its input example. */
export function editorFor(model: Model): Editor {
  const inputs = model.signature?.inputs ?? [];
  if (model.signature?.kind === SignatureKind.COLUMNS) {
    const row = exampleRow(model);
    return {
      kind: "form",
      fields: inputs.map((s) => ({ name: s.name, dtype: s.dtype, value: row[s.name] === undefined || row[s.name] === null ? "" : String(row[s.name]), hint: s.columnType })),
    };
  }
  const example = model.inputExample?.tensors ?? {};
  if (inputs.length === 1 && inputs[0]!.dtype === DataType.STRING) {
    const name = inputs[0]!.name;
    return { kind: "text", input: name, value: String(tensorValues(example[name] ?? create(TensorSchema))[0] ?? "") };
  }
  const named = Object.fromEntries(
    inputs.map((s) => {
      const t = example[s.name];
      return [s.name, t ? nest(tensorValues(t), t.shape.map(Number)) : []];
    }),
  );
  return { kind: "json", value: JSON.stringify({ inputs: named }, null, 2) };
}

/** A tensor of `dtype` from flat JS values; values that do not fit are sent as strings so the server names the problem. */
function tensorOf(dtype: DataType, shape: number[], values: unknown[]): Tensor {
  const shapeInit = shape.map(BigInt);
  if (dtype === DataType.STRING || dtype === DataType.BYTES) return create(TensorSchema, { dtype: DataType.STRING, shape: shapeInit, stringData: values.map(String) });
  if (dtype === DataType.BOOL) {
    const bools = values.map((v) => (v === true || v === "true" ? true : v === false || v === "false" ? false : undefined));
    if (bools.every((b) => b !== undefined)) return create(TensorSchema, { dtype, shape: shapeInit, boolData: bools as boolean[] });
  } else {
    const numbers = values.map((v) => (typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN));
    const field = NUMERIC_FIELD[dtype];
    if (field && numbers.every(Number.isFinite)) {
      const data = field === "int64Data" || field === "uint64Data" ? numbers.map((n) => BigInt(Math.trunc(n))) : numbers;
      const fractional = field !== "floatData" && field !== "doubleData" && numbers.some((n) => !Number.isInteger(n));
      // A fraction for an integer input goes as float64, so the server refuses it (MLflow's rule), not the page.
      if (!fractional) return create(TensorSchema, { dtype, shape: shapeInit, [field]: data } as MessageInitShape<typeof TensorSchema>);
      return create(TensorSchema, { dtype: DataType.FLOAT64, shape: shapeInit, doubleData: numbers });
    }
  }
  return create(TensorSchema, { dtype: DataType.STRING, shape: shapeInit, stringData: values.map((v) => (typeof v === "string" ? v : JSON.stringify(v))) });
}

/** Flattens nested lists, refusing ragged ones; returns values and shape. */
function flatten(name: string, value: unknown): { values: unknown[]; shape: number[] } {
  const shape: number[] = [];
  for (let level: unknown = value; Array.isArray(level); level = level[0]) shape.push(level.length);
  const values = Array.isArray(value) ? (value as unknown[]).flat(Infinity) : [value];
  if (values.length !== shape.reduce((a, b) => a * b, 1)) throw new EditorError(`"${name}": nested lists must not be ragged`);
  return { values, shape };
}

/** The Predict request for the editor's content. Throws EditorError for JSON that cannot be read. */
export function requestFromEditor(model: Model, editor: Editor): PredictRequest {
  const specs = model.signature?.inputs ?? [];
  const inputs: Record<string, Tensor> = {};
  if (editor.kind === "form") {
    for (const f of editor.fields) {
      if (f.value.trim() === "" && specs.find((s) => s.name === f.name)?.optional) continue;
      inputs[f.name] = tensorOf(f.dtype, [1], [f.value]);
    }
  } else if (editor.kind === "text") {
    inputs[editor.input] = tensorOf(DataType.STRING, [1], [editor.value]);
  } else {
    let body: unknown;
    try {
      body = JSON.parse(editor.value);
    } catch (error) {
      throw new EditorError(`the input is not valid JSON: ${(error as Error).message}`);
    }
    const named = (body as { inputs?: unknown })?.inputs ?? body;
    const entries: Array<[string, unknown]> = Array.isArray(named)
      ? [[specs[0]?.name ?? "input", named]]
      : typeof named === "object" && named !== null
        ? Object.entries(named)
        : [];
    if (entries.length === 0) throw new EditorError('expected {"inputs": {"name": [...]}} or a list for a one-input model');
    for (const [name, value] of entries) {
      const { values, shape } = flatten(name, value);
      inputs[name] = tensorOf(specs.find((s) => s.name === name)?.dtype ?? DataType.FLOAT32, shape, values);
    }
  }
  return create(PredictRequestSchema, { modelName: model.name, inputs });
}

/** The same call as a curl command (Connect protocol, JSON), for the terminal. */
export function curlCommand(origin: string, request: PredictRequest): string {
  const json = toJsonString(PredictRequestSchema, request).replaceAll("'", "'\\''");
  return `curl -s -H 'Content-Type: application/json' -d '${json}' ${origin}/mlflow.serving.v1.ModelService/Predict`;
}

/** One output as table rows: one row per batch entry, its values as text. */
export interface OutputView {
  name: string;
  shape: number[];
  rows: string[][];
}

export function outputViews(outputs: Record<string, Tensor>): OutputView[] {
  return Object.entries(outputs).map(([name, t]) => {
    const shape = t.shape.map(Number);
    const values = tensorValues(t).map(String);
    const width = shape.length <= 1 ? 1 : shape.slice(1).reduce((a, b) => a * b, 1);
    const rows = Array.from({ length: Math.max(1, Math.ceil(values.length / width)) }, (_, i) => values.slice(i * width, (i + 1) * width));
    return { name, shape, rows };
  });
}

/**
 * A classifier's answer for the first row: its probabilities (a float output of
 * shape [n, k>1] whose rows are distributions) and its label (an integer or string
 * output of shape [n]), when the model has them.
 */
export function classProbabilities(outputs: Record<string, Tensor>): { label?: string; probabilities: number[] } | undefined {
  const isFloat = (t: Tensor) => t.dtype === DataType.FLOAT32 || t.dtype === DataType.FLOAT64 || t.dtype === DataType.FLOAT16;
  const probs = Object.values(outputs).find((t) => {
    if (!isFloat(t) || t.shape.length !== 2 || t.shape[1]! < 2n) return false;
    const first = tensorValues(t).slice(0, Number(t.shape[1])) as number[];
    return first.every((p) => p >= 0 && p <= 1) && Math.abs(first.reduce((a, b) => a + b, 0) - 1) < 1e-3;
  });
  if (!probs) return undefined;
  const labelTensor = Object.values(outputs).find((t) => t !== probs && t.shape.length === 1 && !isFloat(t));
  return {
    label: labelTensor ? String(tensorValues(labelTensor)[0]) : undefined,
    probabilities: tensorValues(probs).slice(0, Number(probs.shape[1])) as number[],
  };
}
