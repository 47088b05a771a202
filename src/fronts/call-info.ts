import type http from "node:http";
import type http2 from "node:http2";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { FastifyBaseLogger } from "fastify";

/**
 * What the access log and metrics learn about a call besides its method and code:
 * the model it addressed, and the logger that carries the request id.
 */
export const kModel = createContextKey<string | undefined>(undefined, { description: "model of the call" });
export const kLog = createContextKey<FastifyBaseLogger | undefined>(undefined, { description: "request logger" });

/** Notes the model an RPC addressed, for its access-log line. */
export function noteModel(context: HandlerContext, model: string): void {
  context.values.set(kModel, model);
}

const httpModels = new WeakMap<object, string>();

/** Notes the model a plain HTTP request addressed. */
export function noteHttpModel(raw: http.IncomingMessage | http2.Http2ServerRequest, model: string): void {
  httpModels.set(raw, model);
}

export function httpModel(raw: http.IncomingMessage | http2.Http2ServerRequest): string | undefined {
  return httpModels.get(raw);
}
