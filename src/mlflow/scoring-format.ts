import { parseCsv } from "./csv.js";

/**
 * MLflow's JSON scoring formats (the request bodies `mlflow models serve` accepts),
 * parsed into a form that knows nothing of the model yet. Binding to the model's
 * inputs, with all type and shape checks, happens in the core.
 */

/** A request body that is not a readable MLflow scoring request (MLflow's BAD_REQUEST). */
export class ScoringFormatError extends Error {
  override name = "ScoringFormatError";
}

function malformedRequest(message: string): ScoringFormatError {
  return new ScoringFormatError(message);
}

/** The input of a scoring request. */
export type ScoringInput =
  /**
   * A table: from `dataframe_split`, `dataframe_records` or CSV. Columns are undefined
   * when the client sent none. CSV cells are text (`textCells`), typed by the model's columns.
   */
  | { kind: "dataframe"; columns: string[] | undefined; rows: unknown[][]; textCells?: boolean }
  /**
   * A table as `dataframe_records`: one object per row, as sent. Kept as records so
   * that only the model's columns are ever read: records with distinct keys would
   * make rows x (union of keys) cells, most of which no byte of the request backs.
   */
  | { kind: "records"; records: Array<Record<string, unknown>> }
  /** One unnamed tensor: `inputs` or `instances` holding a list. */
  | { kind: "tensor"; value: unknown }
  /** Named tensors: `inputs` as a dict, or `instances` as a list of dicts. A Map: the names are the client's. */
  | { kind: "named"; tensors: Map<string, unknown> };

export interface ScoringRequest {
  input: ScoringInput;
  /** MLflow `params`, passed through as sent. */
  params?: Record<string, unknown>;
}

export const SCORING_FORMATS = ["dataframe_split", "dataframe_records", "instances", "inputs"] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseDataframeSplit(value: unknown): ScoringInput {
  if (!isRecord(value)) throw malformedRequest(`"dataframe_split" must be an object with "columns" and "data"`);
  const { columns, data } = value;
  if (!Array.isArray(data)) throw malformedRequest(`"dataframe_split" needs "data", a list of rows`);
  if (columns !== undefined && (!Array.isArray(columns) || !columns.every((c) => typeof c === "string"))) {
    throw malformedRequest(`"dataframe_split.columns" must be a list of column names`);
  }
  // Every row as wide as the columns, or as the first row when there are none.
  const width = (columns as string[] | undefined)?.length ?? (Array.isArray(data[0]) ? data[0].length : 0);
  const what = columns ? `for ${width} columns` : `where "dataframe_split.data[0]" has ${width}`;
  for (let i = 0; i < data.length; i++) {
    const row: unknown = data[i];
    if (!Array.isArray(row)) throw malformedRequest(`"dataframe_split.data[${i}]" must be a list of values, one per column`);
    if (row.length !== width) throw malformedRequest(`"dataframe_split.data[${i}]" has ${row.length} values ${what}`);
  }
  return { kind: "dataframe", columns: columns as string[] | undefined, rows: data as unknown[][] };
}

function parseDataframeRecords(value: unknown): ScoringInput {
  if (!Array.isArray(value)) throw malformedRequest(`"dataframe_records" must be a list of records (objects)`);
  for (let i = 0; i < value.length; i++) {
    if (!isRecord(value[i])) throw malformedRequest(`"dataframe_records[${i}]" must be an object mapping column names to values`);
  }
  return { kind: "records", records: value as Array<Record<string, unknown>> };
}

function parseTensors(key: "inputs" | "instances", value: unknown): ScoringInput {
  if (isRecord(value)) return { kind: "named", tensors: new Map(Object.entries(value)) };
  if (!Array.isArray(value)) throw malformedRequest(`"${key}" must be a list (one tensor) or an object of named tensors`);
  if (key === "instances" && value.length > 0 && value.every(isRecord)) {
    // TF-serving row format: a list of {name: value} rows becomes one tensor per name.
    const tensors = new Map<string, unknown[]>();
    for (const [name, v] of Object.entries(value[0] as Record<string, unknown>)) tensors.set(name, [v]);
    for (let i = 1; i < value.length; i++) {
      const row = Object.entries(value[i] as Record<string, unknown>);
      if (row.length !== tensors.size) throw malformedRequest(`"instances[${i}]" has other names than "instances[0]"`);
      for (const [name, v] of row) {
        const column = tensors.get(name);
        // The name last: it is the client's, and long messages are clipped.
        if (!column) throw malformedRequest(`"instances[${i}]" has a name that "instances[0]" has not: "${name}"`);
        column.push(v);
      }
    }
    return { kind: "named", tensors };
  }
  return { kind: "tensor", value };
}

/** Some of an object's keys, for a message: the client may have sent thousands. */
function someKeys(body: Record<string, unknown>): string {
  const keys: string[] = [];
  for (const key in body) {
    if (keys.length === 5) return `${keys.join(", ")}, ...`;
    keys.push(key.length > 40 ? `${key.slice(0, 40)}...` : key);
  }
  return keys.join(", ");
}

/** Parses a scoring request from an already decoded JSON value. */
export function parseScoringRequest(body: unknown): ScoringRequest {
  if (!isRecord(body)) {
    throw malformedRequest(`the request must be a JSON object with one of the fields ${SCORING_FORMATS.join(", ")}`);
  }
  const present = SCORING_FORMATS.filter((f) => Object.hasOwn(body, f));
  if (present.length !== 1) {
    throw malformedRequest(
      `the request must have exactly one of the fields ${SCORING_FORMATS.join(", ")}; it has ${present.length ? present.join(", ") : `only ${someKeys(body) || "no fields"}`}`,
    );
  }
  const format = present[0]!;
  const value = body[format];
  const input =
    format === "dataframe_split"
      ? parseDataframeSplit(value)
      : format === "dataframe_records"
        ? parseDataframeRecords(value)
        : parseTensors(format, value);
  const params = body.params;
  if (params !== undefined && params !== null && !isRecord(params)) throw malformedRequest(`"params" must be an object`);
  return { input, params: (params ?? undefined) as Record<string, unknown> | undefined };
}

/** Parses a scoring request from JSON text. */
export function parseScoringJson(text: string): ScoringRequest {
  if (text.trim() === "") {
    throw malformedRequest(`the request is empty: send a JSON object with one of the fields ${SCORING_FORMATS.join(", ")}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw malformedRequest(`the request is not valid JSON: ${(error as Error).message}`);
  }
  return parseScoringRequest(body);
}

/**
 * Parses a `text/csv` body as MLflow reads it with pandas: a header row with the
 * column names, then one row per record.
 */
export function parseScoringCsv(text: string): ScoringRequest {
  let records: string[][];
  try {
    records = parseCsv(text);
  } catch (error) {
    throw malformedRequest(`the CSV cannot be parsed: ${(error as Error).message}`);
  }
  const columns = records[0];
  if (!columns) throw malformedRequest("the CSV is empty: it needs a header row with the column names");
  return { input: { kind: "dataframe", columns, rows: records.slice(1), textCells: true } };
}

/**
 * MLflow's response body: `{"predictions": ...}` holding the one output's value, or
 * an object of named outputs when the model has several.
 */
export function formatPredictions(outputs: ReadonlyArray<readonly [string, unknown]>): { predictions: unknown } {
  if (outputs.length === 1) return { predictions: outputs[0]![1] };
  return { predictions: Object.fromEntries(outputs) };
}
