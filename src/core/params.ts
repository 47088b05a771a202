import type { ParamSpec, ParamType } from "../mlflow/signature.js";
import { invalidInput } from "./errors.js";

function fits(type: ParamType, value: unknown): boolean {
  switch (type) {
    case "boolean":
      return typeof value === "boolean";
    case "integer":
    case "long":
      return typeof value === "number" && Number.isInteger(value);
    case "float":
    case "double":
      return typeof value === "number";
    case "string":
      return typeof value === "string";
    case "datetime":
      return typeof value === "string" && !Number.isNaN(Date.parse(value));
  }
}

/** A param value for a message: objects are not spelled out (they may be megabytes, or nested too deep to stringify). */
function describe(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  if (typeof value === "object") return "an object";
  const text = JSON.stringify(value);
  return `${typeof value} ${text.length > 40 ? `${text.slice(0, 40)}...` : text}`;
}

/**
 * Checks request params against the signature's params schema and fills in
 * defaults, as MLflow does: each param must have its declared type (a list for
 * shape [-1]); params the schema does not know are ignored, like MLflow (which logs
 * a warning); a model without a params schema ignores params.
 */
export function resolveParams(specs: readonly ParamSpec[] | undefined, params: Record<string, unknown> | undefined): Record<string, unknown> {
  const resolved: Record<string, unknown> = {};
  for (const spec of specs ?? []) {
    // Own keys only: a request without "toString" must not read Object.prototype's.
    const value = params !== undefined && Object.hasOwn(params, spec.name) ? params[spec.name] : undefined;
    if (value === undefined || value === null) {
      resolved[spec.name] = spec.default;
      continue;
    }
    const isList = spec.shape !== undefined;
    const ok = isList ? Array.isArray(value) && value.every((v) => fits(spec.type, v)) : fits(spec.type, value);
    if (!ok) {
      const expected = isList ? `a list of ${spec.type}` : spec.type;
      throw invalidInput(`param "${spec.name}" expects ${expected}, got ${describe(value)}`);
    }
    resolved[spec.name] = value;
  }
  return resolved;
}
