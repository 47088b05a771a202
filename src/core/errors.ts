import { ScoringFormatError } from "../mlflow/scoring-format.js";

/**
 * The closed set of error kinds the core raises. Each front maps a kind to its
 * protocol's code in one table (fronts/error-codes.ts), so the same bad input
 * gets the matching gRPC code, Connect code and HTTP status everywhere.
 */
export type ErrorKind =
  | "invalid_input"
  | "not_found"
  | "overloaded"
  | "deadline"
  | "cancelled"
  | "unavailable"
  | "internal";

/**
 * The one error type of the inference core. Its message is safe to show to the
 * client and names the entity at fault; the cause stays in server logs.
 */
export class InferenceError extends Error {
  override name = "InferenceError";

  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: {
      cause?: unknown;
      /**
       * For invalid_input: "malformed" when the request itself cannot be read (MLflow
       * answers BAD_REQUEST), "schema" when it does not fit the model's signature
       * (INVALID_PARAMETER_VALUE). Default "schema".
       */
      reason?: "malformed" | "schema";
    },
  ) {
    super(clip(message, MAX_MESSAGE_CHARS), options);
    this.reason = options?.reason ?? "schema";
  }

  readonly reason: "malformed" | "schema";

  /** Wraps anything caught into an InferenceError; unknown errors become internal. */
  static from(error: unknown): InferenceError {
    if (error instanceof InferenceError) return error;
    if (error instanceof ScoringFormatError) return new InferenceError("invalid_input", error.message, { reason: "malformed" });
    return new InferenceError("internal", "internal error while running the model", { cause: error });
  }
}

/**
 * Longest message an InferenceError carries. Messages quote what the client sent
 * (names, values), and gRPC carries the message in a trailer: a message of a megabyte
 * makes the HTTP/2 frame too large, and the client sees INTERNAL instead of the error.
 */
export const MAX_MESSAGE_CHARS = 1024;

/** Longest client string quoted in a message, so that the rest of the message stays readable. */
const MAX_QUOTED_CHARS = 100;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/** A client-supplied name as messages quote it: in double quotes, clipped when long. */
export function quote(name: string): string {
  return `"${clip(name, MAX_QUOTED_CHARS)}"`;
}

/** The input does not fit the model: a missing input, a wrong dtype or shape, a bad param. */
export function invalidInput(message: string): InferenceError {
  return new InferenceError("invalid_input", message);
}

