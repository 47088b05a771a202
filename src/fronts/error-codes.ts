import { Code, ConnectError } from "@connectrpc/connect";
import type { FastifyReply } from "fastify";
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

/**
 * Answers an error on a plain HTTP route: Fastify's own refusals (body too large, bad
 * JSON, ...) keep their status; anything else goes through the table. Internal
 * failures are logged with their cause; overload gets Retry-After. `render` shapes the
 * body the front's protocol uses from the MLflow error code and the message.
 */
export function replyHttpError(
  error: unknown,
  reply: FastifyReply,
  logError: (error: unknown, message: string) => void,
  where: string,
  render: (errorCode: string, message: string) => unknown,
): FastifyReply {
  const fastifyStatus = (error as { statusCode?: number }).statusCode;
  if (fastifyStatus !== undefined && fastifyStatus < 500) return reply.code(fastifyStatus).send(render("BAD_REQUEST", (error as Error).message));
  const { status, body } = toMlflowError(error);
  if (status >= 500) logError(InferenceError.from(error).cause ?? error, `${where} failed`);
  if (status === 429) reply.header("retry-after", "1");
  return reply.code(status).send(render(body.error_code, body.message));
}
