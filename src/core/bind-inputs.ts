import type { ScoringInput } from "../mlflow/scoring-format.js";
import { castTensor } from "./casting.js";
import { invalidInput } from "./errors.js";
import type { GraphTensorInfo, InputSpec, ServedModel } from "./served-model.js";
import { type Tensor, formatShape, tensorFromJson, tensorToJson } from "./tensor.js";
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
 * Every column's values are checked against its declared type first.
 */
function bindColumns(model: ServedModel, names: string[] | undefined, rows: unknown[][], textCells = false): Record<string, Tensor> {
  if (rows.length === 0) throw invalidInput("the input has no rows");
  const expected = expectedColumns(model);
  const list = expected.map((c) => c.name).join(", ");
  let positions: (number | undefined)[];
  if (names) {
    positions = expected.map((c) => {
      const at = names.indexOf(c.name);
      if (at < 0 && c.required) throw invalidInput(`missing column "${c.name}": model "${model.name}" expects columns ${list}`);
      return at < 0 ? undefined : at;
    });
  } else {
    const width = rows[0]!.length;
    if (width !== expected.length) {
      throw invalidInput(`rows have ${width} values, model "${model.name}" expects ${expected.length} columns: ${list}`);
    }
    positions = expected.map((_, i) => i);
  }
  const present = expected.flatMap((c, i) => (positions[i] === undefined ? [] : [{ column: c, at: positions[i]! }]));
  if (textCells) rows = rows.map((row) => typeCsvCells(row, present));
  for (const { column, at } of present) {
    tensorFromJson(column.name, rows.map((r) => r[at]), column.dtype); // type check, named after the column
  }
  const only = model.inputs.length === 1 ? model.inputs[0]! : undefined;
  if (only && (present.length > 1 || present[0]?.column.name !== only.name)) {
    const table = rows.map((r) => present.map(({ at }) => r[at]));
    const tensor = tensorFromJson(only.name, table, only.dtype);
    return { [only.name]: only.shape.length === 1 && present.length === 1 ? { ...tensor, shape: [rows.length] } : tensor };
  }
  const tensors: Record<string, Tensor> = {};
  for (const { column, at } of present) {
    // An optional column the graph has no input for is checked above and dropped.
    if (!column.required && !model.inputs.some((g) => g.name === column.name)) continue;
    const input = graphInput(model, column.name);
    tensors[input.name] = fitRank(tensorFromJson(input.name, rows.map((r) => r[at]), input.dtype), input);
  }
  return tensors;
}

/** CSV cells are text: read them as the column's type, as pandas would ("" is a missing value). */
function typeCsvCells(row: unknown[], present: ReadonlyArray<{ column: InputSpec; at: number }>): unknown[] {
  const typed = [...row];
  for (const { column, at } of present) {
    const cell = row[at];
    if (typeof cell !== "string" || column.dtype === "string") continue;
    if (cell.trim() === "") typed[at] = null;
    else if (column.dtype === "bool") typed[at] = /^true$/i.test(cell) ? true : /^false$/i.test(cell) ? false : cell;
    else if (Number.isFinite(Number(cell))) typed[at] = Number(cell);
  }
  return typed;
}

/**
 * Whether named values of a column-based model are columns. Only names that are
 * graph inputs and not columns (iris' 2-D "input") address the graph directly.
 */
function byColumnNames(model: ServedModel, names: string[]): boolean {
  if (model.schemaKind !== "columns") return false;
  const graphOnly = (n: string) => model.inputs.some((g) => g.name === n) && !model.inputSpecs.some((c) => c.name === n);
  return !names.every(graphOnly);
}

function refuseUnknownColumns(model: ServedModel, names: string[]): void {
  const known = model.inputSpecs.map((c) => c.name);
  const unknown = names.find((n) => !known.includes(n));
  if (unknown !== undefined) throw invalidInput(`model "${model.name}" has no input "${unknown}" (its columns: ${known.join(", ")})`);
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
    const columns = names.map((name) => {
      const t = tensors[name]!;
      if (t.shape.length > 2 || (t.shape.length === 2 && t.shape[1] !== 1)) {
        throw invalidInput(`column "${name}" must be a 1-D tensor of rows, got shape ${formatShape(t.shape)}`);
      }
      const spec = model.inputSpecs.find((c) => c.name === name)!;
      castTensor(name, t, spec.dtype); // refuses what MLflow refuses, e.g. float into a long column
      return tensorToJson({ ...t, shape: [t.data.length] }) as unknown[];
    });
    return bindColumns(model, names, columnsToRows(columns, "rows"));
  }
  const bound: Record<string, Tensor> = {};
  for (const name of names) {
    const g = graphInput(model, name);
    const spec = model.schemaKind === "tensors" ? model.inputSpecs.find((s) => s.name === name) : undefined;
    const t = spec ? castTensor(name, tensors[name]!, spec.dtype) : tensors[name]!;
    bound[name] = castTensor(name, t, g.dtype);
  }
  return bound;
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
      const names = Object.keys(input.tensors);
      if (names.length === 0) throw invalidInput("the input has no tensors");
      if (byColumnNames(model, names)) {
        // Named values of a column-based model are columns: {"col": [v1, v2, ...]}.
        refuseUnknownColumns(model, names);
        const columns = names.map((n) => {
          const v = input.tensors[n];
          return Array.isArray(v) ? v : [v];
        });
        return bindColumns(model, names, columnsToRows(columns, "values"));
      }
      const tensors: Record<string, Tensor> = {};
      for (const name of names) {
        const g = graphInput(model, name);
        tensors[name] = tensorFromJson(name, input.tensors[name], g.dtype);
      }
      return tensors;
    }
  }
}
