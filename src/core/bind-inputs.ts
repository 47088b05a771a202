import type { ScoringInput } from "../mlflow/scoring-format.js";
import { invalidInput } from "./errors.js";
import { type GraphTensorInfo, type ServedModel, columnDType } from "./served-model.js";
import { type DType, type Tensor, tensorFromJson } from "./tensor.js";

/** A column the model expects, with the dtype its values must fit. */
interface ExpectedColumn {
  name: string;
  dtype: DType;
  required: boolean;
}

/** The model's columns: the signature's column specs, else one column per graph input. */
function expectedColumns(model: ServedModel): ExpectedColumn[] {
  const schema = model.source.signature?.inputs;
  if (schema?.kind === "columns") {
    return schema.columns.map((c, i) => ({ name: c.name ?? String(i), dtype: columnDType(c.type), required: c.required }));
  }
  return model.inputs.map((g) => ({ name: g.name, dtype: g.dtype, required: true }));
}

function graphInput(model: ServedModel, name: string): GraphTensorInfo {
  const input = model.inputs.find((g) => g.name === name);
  if (!input) {
    throw invalidInput(`model "${model.name}" has no input "${name}" (its inputs: ${model.inputs.map((g) => g.name).join(", ")})`);
  }
  return input;
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
function bindColumns(model: ServedModel, names: string[] | undefined, rows: unknown[][]): Record<string, Tensor> {
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
    const input = graphInput(model, column.name);
    tensors[input.name] = fitRank(tensorFromJson(input.name, rows.map((r) => r[at]), input.dtype), input);
  }
  return tensors;
}

/**
 * Converts a parsed MLflow scoring request into the model's named input tensors.
 * Shapes are checked afterwards, once for every front, by validateInputs().
 */
export function bindScoringInput(model: ServedModel, input: ScoringInput): Record<string, Tensor> {
  switch (input.kind) {
    case "dataframe":
      return bindColumns(model, input.columns, input.rows);
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
      const byColumn = model.source.signature?.inputs?.kind === "columns" && names.some((n) => !model.inputs.some((g) => g.name === n));
      if (byColumn) {
        // Named values of a column-based model are columns: {"col": [v1, v2, ...]}.
        const known = expectedColumns(model).map((c) => c.name);
        const unknown = names.find((n) => !known.includes(n));
        if (unknown !== undefined) {
          throw invalidInput(`model "${model.name}" has no input "${unknown}" (its columns: ${known.join(", ")})`);
        }
        const columns = names.map((n) => {
          const v = input.tensors[n];
          return Array.isArray(v) ? v : [v];
        });
        const count = columns[0]!.length;
        if (columns.some((c) => c.length !== count)) throw invalidInput("columns have different numbers of values");
        return bindColumns(model, names, Array.from({ length: count }, (_, r) => columns.map((c) => c[r])));
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
