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
    super(message, options);
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

/** The input does not fit the model: a missing input, a wrong dtype or shape, a bad param. */
export function invalidInput(message: string): InferenceError {
  return new InferenceError("invalid_input", message);
}

