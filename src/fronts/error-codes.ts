import { Code, ConnectError } from "@connectrpc/connect";
import { type ErrorKind, InferenceError } from "../core/errors.js";

/**
 * The one table from core error kinds to protocol codes. Connect derives the gRPC
 * status and the HTTP status of the Connect protocol from the Code (e.g.
 * InvalidArgument -> grpc-status 3 / HTTP 400), so every front agrees.
 */
const CONNECT_CODES: Record<ErrorKind, Code> = {
  invalid_input: Code.InvalidArgument,
  not_found: Code.NotFound,
  overloaded: Code.ResourceExhausted,
  deadline: Code.DeadlineExceeded,
  cancelled: Code.Canceled,
  unavailable: Code.Unavailable,
  internal: Code.Internal,
};

/** HTTP status of each kind for plain HTTP routes (MLflow REST, OIP REST). */
export const HTTP_STATUS: Record<ErrorKind, number> = {
  invalid_input: 400,
  not_found: 404,
  overloaded: 429,
  deadline: 504,
  cancelled: 499,
  unavailable: 503,
  internal: 500,
};

/** Converts anything a handler threw into the ConnectError the client sees. */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  const e = InferenceError.from(error);
  return new ConnectError(e.message, CONNECT_CODES[e.kind], undefined, undefined, e);
}
