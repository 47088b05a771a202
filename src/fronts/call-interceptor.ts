import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { FastifyBaseLogger } from "fastify";
import { kLog, kModel } from "./call-info.js";

/** The RPC protocol of a request, from its content type. */
export function rpcProtocol(contentType: string | null | undefined): string {
  if (contentType?.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType?.startsWith("application/grpc")) return "grpc";
  return "connect";
}

/** One finished call, for metrics and the access log. */
export interface CallRecord {
  protocol: string;
  method: string;
  code: string;
  seconds: number;
  model?: string;
  log?: FastifyBaseLogger;
}

/** Counts, times and logs every RPC on the Connect router (the lean path reports its own). */
export function createCallInterceptor(record: (call: CallRecord) => void): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const protocol = rpcProtocol(req.header.get("content-type"));
    const method = `${req.service.typeName}/${req.method.name}`;
    const done = (code: string) =>
      record({ protocol, method, code, seconds: (performance.now() - started) / 1000, model: req.contextValues.get(kModel), log: req.contextValues.get(kLog) });
    try {
      const res = await next(req);
      done("ok");
      return res;
    } catch (error) {
      done(codeToString(ConnectError.from(error).code));
      throw error;
    }
  };
}
