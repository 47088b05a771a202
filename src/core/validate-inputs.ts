import { invalidInput, quote } from "./errors.js";
import type { GraphTensorInfo, ServedModel } from "./served-model.js";
import { type Tensor, elementCount, formatShape } from "./tensor.js";

/** The graph input of that name; refuses an unknown one, listing the model's inputs. */
export function graphInput(model: ServedModel, name: string): GraphTensorInfo {
  const input = model.inputs.find((g) => g.name === name);
  if (!input) throw invalidInput(`model "${model.name}" has no input ${quote(name)} (its inputs: ${model.inputs.map((g) => g.name).join(", ")})`);
  return input;
}

/**
 * Checks named tensors against the graph's inputs before they reach a worker: every
 * input present, no unknown names, the graph's dtype, the rank and every fixed
 * dimension (-1 matches any), a consistent data length, and at least one row.
 */
export function validateInputs(model: ServedModel, inputs: Record<string, Tensor>): void {
  for (const name of Object.keys(inputs)) graphInput(model, name);
  for (const g of model.inputs) {
    // Own names only: the names are the client's, the object may be a plain one.
    const t = Object.hasOwn(inputs, g.name) ? inputs[g.name] : undefined;
    if (!t) throw invalidInput(`missing input "${g.name}": model "${model.name}" needs ${model.inputs.map((i) => i.name).join(", ")}`);
    if (t.dtype !== g.dtype) throw invalidInput(`input "${g.name}" expects dtype ${g.dtype}, got ${t.dtype}`);
    if (t.data.length === 0 || elementCount(t.shape) === 0) {
      throw invalidInput(`input "${g.name}" is empty (shape ${formatShape(t.shape)})`);
    }
    // The signature's tensor spec, when there is one, and the graph must both accept the shape.
    const spec = model.schemaKind === "tensors" ? model.inputSpecs.find((s) => s.name === g.name) : undefined;
    for (const shape of spec ? [spec.shape, g.shape] : [g.shape]) {
      const fits = t.shape.length === shape.length && shape.every((d, i) => d === -1 || d === t.shape[i]);
      if (!fits) throw invalidInput(`input "${g.name}" expects shape ${formatShape(shape)}, got ${formatShape(t.shape)}`);
    }
    if (t.data.length !== elementCount(t.shape)) {
      throw invalidInput(`input "${g.name}" has ${t.data.length} values for shape ${formatShape(t.shape)}`);
    }
  }
}
