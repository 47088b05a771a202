import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { InferenceError } from "../core/errors.js";
import { toConnectError } from "./error-codes.js";

/** Where internal failures are reported (their cause never reaches the client). */
export type ErrorLogger = (error: unknown, message: string) => void;

/**
 * Maps core errors to Connect codes for every RPC of every service, in one place,
 * and logs internal failures with their cause.
 */
export function createErrorInterceptor(logError: ErrorLogger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (error) {
      throw mapRpcError(error, req.method.name, logError);
    }
  };
}

/** The ConnectError for anything an RPC threw; internal failures are logged with their cause. Shared with the lean path. */
export function mapRpcError(error: unknown, methodName: string, logError: ErrorLogger): ConnectError {
  if (!(error instanceof ConnectError)) {
    const e = InferenceError.from(error);
    if (e.kind === "internal") logError(e.cause ?? e, `${methodName} failed`);
  }
  return toConnectError(error);
}
