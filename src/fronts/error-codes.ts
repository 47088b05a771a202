import { Code, ConnectError } from "@connectrpc/connect";
import { type ErrorKind, InferenceError } from "../core/errors.js";

/**
 * The one table from core error kinds to protocol codes. Connect derives the gRPC
 * status and the Connect protocol's HTTP status from the Code (InvalidArgument ->
 * grpc-status 3 / HTTP 400); plain HTTP routes use the status and MLflow error_code
 * columns. So the same bad input gets the matching code on every front.
 */
const CODES: Record<ErrorKind, { connect: Code; http: number; mlflow: string }> = {
  invalid_input: { connect: Code.InvalidArgument, http: 400, mlflow: "INVALID_PARAMETER_VALUE" },
  not_found: { connect: Code.NotFound, http: 404, mlflow: "RESOURCE_DOES_NOT_EXIST" },
  overloaded: { connect: Code.ResourceExhausted, http: 429, mlflow: "RESOURCE_EXHAUSTED" },
  deadline: { connect: Code.DeadlineExceeded, http: 504, mlflow: "DEADLINE_EXCEEDED" },
  cancelled: { connect: Code.Canceled, http: 499, mlflow: "CANCELLED" },
  unavailable: { connect: Code.Unavailable, http: 503, mlflow: "TEMPORARILY_UNAVAILABLE" },
  internal: { connect: Code.Internal, http: 500, mlflow: "INTERNAL_ERROR" },
};

/** Converts anything a handler threw into the ConnectError the client sees. */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  const e = InferenceError.from(error);
  return new ConnectError(e.message, CODES[e.kind].connect, undefined, undefined, e);
}

/** MLflow's error body, as its scoring server answers. */
export interface MlflowErrorBody {
  error_code: string;
  message: string;
}

/**
 * The HTTP status and MLflow error body for anything a REST handler threw. A request
 * that cannot be read is BAD_REQUEST; one that does not fit the model is
 * INVALID_PARAMETER_VALUE, as in `mlflow models serve`.
 */
export function toMlflowError(error: unknown): { status: number; body: MlflowErrorBody } {
  const e = InferenceError.from(error);
  const code = CODES[e.kind];
  const mlflow = e.kind === "invalid_input" && e.reason === "malformed" ? "BAD_REQUEST" : code.mlflow;
  return { status: code.http, body: { error_code: mlflow, message: e.message } };
}
