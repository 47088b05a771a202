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
      if (!(error instanceof ConnectError)) {
        const e = InferenceError.from(error);
        if (e.kind === "internal") logError(e.cause ?? e, `${req.method.name} failed`);
      }
      throw toConnectError(error);
    }
  };
}
