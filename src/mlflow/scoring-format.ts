import { parse as parseCsv } from "csv-parse/sync";

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
  /** One unnamed tensor: `inputs` or `instances` holding a list. */
  | { kind: "tensor"; value: unknown }
  /** Named tensors: `inputs` as a dict, or `instances` as a list of dicts. */
  | { kind: "named"; tensors: Record<string, unknown> };

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
  const rows = data.map((row, i) => {
    if (!Array.isArray(row)) throw malformedRequest(`"dataframe_split.data[${i}]" must be a list of values, one per column`);
    if (columns && row.length !== columns.length) {
      throw malformedRequest(`"dataframe_split.data[${i}]" has ${row.length} values for ${columns.length} columns`);
    }
    return row as unknown[];
  });
  return { kind: "dataframe", columns: columns as string[] | undefined, rows };
}

function parseDataframeRecords(value: unknown): ScoringInput {
  if (!Array.isArray(value)) throw malformedRequest(`"dataframe_records" must be a list of records (objects)`);
  const columns: string[] = [];
  for (const [i, record] of value.entries()) {
    if (!isRecord(record)) throw malformedRequest(`"dataframe_records[${i}]" must be an object mapping column names to values`);
    for (const key of Object.keys(record)) if (!columns.includes(key)) columns.push(key);
  }
  // Like pandas, a column missing from a record is null in that row.
  const rows = value.map((record: Record<string, unknown>) => columns.map((c) => record[c] ?? null));
  return { kind: "dataframe", columns, rows };
}

function parseTensors(key: "inputs" | "instances", value: unknown): ScoringInput {
  if (isRecord(value)) return { kind: "named", tensors: value };
  if (!Array.isArray(value)) throw malformedRequest(`"${key}" must be a list (one tensor) or an object of named tensors`);
  if (key === "instances" && value.length > 0 && value.every(isRecord)) {
    // TF-serving row format: a list of {name: value} rows becomes one tensor per name.
    const tensors: Record<string, unknown[]> = {};
    for (const [i, row] of (value as Record<string, unknown>[]).entries()) {
      const names = Object.keys(row);
      if (i > 0 && names.length !== Object.keys(tensors).length) throw malformedRequest(`"instances[${i}]" has other names than "instances[0]"`);
      for (const name of names) {
        if (i > 0 && !(name in tensors)) throw malformedRequest(`"instances[${i}]" has "${name}", which "instances[0]" has not`);
        (tensors[name] ??= []).push(row[name]);
      }
    }
    return { kind: "named", tensors };
  }
  return { kind: "tensor", value };
}

/** Parses a scoring request from an already decoded JSON value. */
export function parseScoringRequest(body: unknown): ScoringRequest {
  if (!isRecord(body)) {
    throw malformedRequest(`the request must be a JSON object with one of the fields ${SCORING_FORMATS.join(", ")}`);
  }
  const present = SCORING_FORMATS.filter((f) => f in body);
  if (present.length !== 1) {
    throw malformedRequest(
      `the request must have exactly one of the fields ${SCORING_FORMATS.join(", ")}; it has ${present.length ? present.join(", ") : `only ${Object.keys(body).join(", ") || "no fields"}`}`,
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
    records = parseCsv(text, { skip_empty_lines: true }) as string[][];
  } catch (error) {
    throw malformedRequest(`the CSV cannot be parsed: ${(error as Error).message}`);
  }
  const [columns, ...rows] = records;
  if (!columns) throw malformedRequest("the CSV is empty: it needs a header row with the column names");
  return { input: { kind: "dataframe", columns, rows, textCells: true } };
}

/**
 * MLflow's response body: `{"predictions": ...}` holding the one output's value, or
 * an object of named outputs when the model has several.
 */
export function formatPredictions(outputs: ReadonlyArray<readonly [string, unknown]>): { predictions: unknown } {
  if (outputs.length === 1) return { predictions: outputs[0]![1] };
  return { predictions: Object.fromEntries(outputs) };
}
