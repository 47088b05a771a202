import type { ScoringInput } from "../mlflow/scoring-format.js";
import { castTensor } from "./casting.js";
import { invalidInput, quote } from "./errors.js";
import type { GraphTensorInfo, InputSpec, ServedModel } from "./served-model.js";
import { type DType, type Tensor, formatShape, tensorFromJson, tensorFromRows, tensorToJson } from "./tensor.js";
import { graphInput } from "./validate-inputs.js";

/** The model's columns: the signature's column specs, else one column per graph input. */
function expectedColumns(model: ServedModel): readonly InputSpec[] {
  return model.schemaKind === "columns" ? model.inputSpecs : model.inputs.map((g) => ({ ...g, required: true }));
}

/** A 1-D column fed to a graph input of rank 2 becomes [rows, 1]. */
function fitRank(tensor: Tensor, input: GraphTensorInfo): Tensor {
  if (input.shape.length === 2 && tensor.shape.length === 1) return { ...tensor, shape: [tensor.shape[0]!, 1] };
  return tensor;
}

/**
 * Maps table rows onto the graph inputs, as MLflow's onnx flavor does: one 2-D
 * input fed by all columns in signature order, or one input per column by name.
 * Every column's values are checked against its declared type first. Columns the
 * model does not have are ignored, as MLflow does.
 */
function bindColumns(model: ServedModel, names: readonly string[] | undefined, rows: unknown[][], textCells = false): Record<string, Tensor> {
  if (rows.length === 0) throw invalidInput("the input has no rows");
  const expected = expectedColumns(model);
  const list = () => expected.map((c) => c.name).join(", ");
  let positions: (number | undefined)[];
  if (names) {
    // One pass over the client's names (there may be many), looking each up among the model's.
    const wanted = new Map(expected.map((c, i) => [c.name, i]));
    positions = new Array<number | undefined>(expected.length).fill(undefined);
    for (let at = 0; at < names.length; at++) {
      const i = wanted.get(names[at]!);
      if (i !== undefined && positions[i] === undefined) positions[i] = at;
    }
    const missing = expected.find((c, i) => positions[i] === undefined && c.required);
    if (missing) throw invalidInput(`missing column ${quote(missing.name)}: model "${model.name}" expects columns ${list()}`);
  } else {
    const width = rows[0]!.length;
    if (width !== expected.length) {
      throw invalidInput(`rows have ${width} values, model "${model.name}" expects ${expected.length} columns: ${list()}`);
    }
    positions = expected.map((_, i) => i);
  }
  const present = expected.flatMap((c, i) => (positions[i] === undefined ? [] : [{ column: c, at: positions[i]! }]));
  const read = textCells ? readCsvCell : undefined;
  for (const { column, at } of present) {
    tensorFromRows(column.name, rows, [at], column.dtype, read); // type check, named after the column
  }
  const only = model.inputs.length === 1 ? model.inputs[0]! : undefined;
  if (only && (present.length > 1 || present[0]?.column.name !== only.name)) {
    const tensor = tensorFromRows(only.name, rows, present.map(({ at }) => at), only.dtype, read);
    // One column fills a 2-D input as [rows, 1], a 1-D one as [rows].
    return { [only.name]: only.shape.length === 1 || present.length > 1 ? tensor : { ...tensor, shape: [rows.length, 1] } };
  }
  const graphNames = new Set(model.inputs.map((g) => g.name));
  const tensors: Array<[string, Tensor]> = [];
  for (const { column, at } of present) {
    // An optional column the graph has no input for is checked above and dropped.
    if (!column.required && !graphNames.has(column.name)) continue;
    const input = graphInput(model, column.name);
    tensors.push([input.name, fitRank(tensorFromRows(input.name, rows, [at], input.dtype, read), input)]);
  }
  return Object.fromEntries(tensors);
}

/**
 * `dataframe_records` as rows of the model's columns only. Like pandas, a column a
 * record lacks is null in that row, and a column no record has is missing.
 */
function bindRecords(model: ServedModel, records: ReadonlyArray<Record<string, unknown>>): Record<string, Tensor> {
  if (records.length === 0) throw invalidInput("the input has no rows");
  // Own keys only: a record's "constructor" is a column, an inherited one is not.
  const names = expectedColumns(model)
    .map((c) => c.name)
    .filter((name) => records.some((r) => Object.hasOwn(r, name)));
  const rows = records.map((r) => names.map((name) => (Object.hasOwn(r, name) ? r[name] : null)));
  return bindColumns(model, names, rows);
}

/** A CSV cell (text) as the JSON value pandas would read for `dtype` ("" is a missing value). */
function readCsvCell(cell: unknown, dtype: DType): unknown {
  if (typeof cell !== "string" || dtype === "string") return cell;
  if (cell.trim() === "") return null;
  if (dtype === "bool") return /^true$/i.test(cell) ? true : /^false$/i.test(cell) ? false : cell;
  const n = Number(cell);
  return Number.isFinite(n) ? n : cell;
}

/**
 * Whether named values of a column-based model are columns. Only names that are
 * graph inputs and not columns (iris' 2-D "input") address the graph directly.
 */
function byColumnNames(model: ServedModel, names: readonly string[]): boolean {
  if (model.schemaKind !== "columns") return false;
  const graphNames = new Set(model.inputs.map((g) => g.name));
  const columnNames = new Set(model.inputSpecs.map((c) => c.name));
  return !names.every((n) => graphNames.has(n) && !columnNames.has(n));
}

function refuseUnknownColumns(model: ServedModel, names: readonly string[]): void {
  const known = new Set(model.inputSpecs.map((c) => c.name));
  const unknown = names.find((n) => !known.has(n));
  if (unknown !== undefined) throw invalidInput(`model "${model.name}" has no input ${quote(unknown)} (its columns: ${[...known].join(", ")})`);
}

/**
 * Converts typed tensors (the typed API) into the graph's input tensors. Tensors
 * named after graph inputs are cast to the graph's dtype where MLflow allows it
 * (integers into floats, widening); for a column-based model, 1-D tensors named
 * after columns are checked against the column types and fed like table columns.
 */
export function bindTensors(model: ServedModel, tensors: Record<string, Tensor>): Record<string, Tensor> {
  const names = Object.keys(tensors);
  if (names.length === 0) throw invalidInput("the request has no input tensors");
  if (byColumnNames(model, names)) {
    refuseUnknownColumns(model, names);
    const specs = new Map(model.inputSpecs.map((c) => [c.name, c]));
    const columns = names.map((name) => {
      const t = tensors[name]!;
      if (t.shape.length > 2 || (t.shape.length === 2 && t.shape[1] !== 1)) {
        throw invalidInput(`column ${quote(name)} must be a 1-D tensor of rows, got shape ${formatShape(t.shape)}`);
      }
      const spec = specs.get(name)!;
      castTensor(name, t, spec.dtype); // refuses what MLflow refuses, e.g. float into a long column
      return tensorToJson({ ...t, shape: [t.data.length] }) as unknown[];
    });
    return bindColumns(model, names, columnsToRows(columns, "rows"));
  }
  const bound: Array<[string, Tensor]> = [];
  for (const name of names) {
    const g = graphInput(model, name);
    const spec = model.schemaKind === "tensors" ? model.inputSpecs.find((s) => s.name === name) : undefined;
    const t = spec ? castTensor(name, tensors[name]!, spec.dtype) : tensors[name]!;
    bound.push([name, castTensor(name, t, g.dtype)]);
  }
  return Object.fromEntries(bound);
}

/** Columns of equal length as rows, for bindColumns(). */
function columnsToRows(columns: unknown[][], what: "rows" | "values"): unknown[][] {
  const count = columns[0]!.length;
  if (columns.some((c) => c.length !== count)) throw invalidInput(`columns have different numbers of ${what}`);
  return Array.from({ length: count }, (_, r) => columns.map((c) => c[r]));
}

/**
 * Converts a parsed MLflow scoring request into the model's named input tensors.
 * Shapes are checked afterwards, once for every front, by validateInputs().
 */
export function bindScoringInput(model: ServedModel, input: ScoringInput): Record<string, Tensor> {
  switch (input.kind) {
    case "dataframe":
      return bindColumns(model, input.columns, input.rows, input.textCells);
    case "records":
      return bindRecords(model, input.records);
    case "tensor": {
      if (model.inputs.length !== 1) {
        throw invalidInput(
          `model "${model.name}" has ${model.inputs.length} inputs (${model.inputs.map((g) => g.name).join(", ")}): send them by name, e.g. {"inputs": {"name": [...]}}`,
        );
      }
      const only = model.inputs[0]!;
      return { [only.name]: tensorFromJson(only.name, input.value, only.dtype) };
    }
    case "named": {
      const names = [...input.tensors.keys()];
      if (names.length === 0) throw invalidInput("the input has no tensors");
      if (byColumnNames(model, names)) {
        // Named values of a column-based model are columns: {"col": [v1, v2, ...]}.
        refuseUnknownColumns(model, names);
        const columns = names.map((n) => {
          const v = input.tensors.get(n);
          return Array.isArray(v) ? v : [v];
        });
        return bindColumns(model, names, columnsToRows(columns, "values"));
      }
      const tensors: Array<[string, Tensor]> = [];
      for (const [name, value] of input.tensors) tensors.push([name, tensorFromJson(name, value, graphInput(model, name).dtype)]);
      return Object.fromEntries(tensors);
    }
  }
}
