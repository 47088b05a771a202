import type { HandlerContext } from "@connectrpc/connect";
import type { FastifyReply } from "fastify";

/** When a request must be done by, and a signal that says its client went away. */
export interface CallLimits {
  deadline: number;
  signal: AbortSignal;
}

/**
 * Limits of an RPC: the client's deadline (grpc-timeout, connect-timeout-ms), else the
 * server default. Connect aborts the context's signal at the deadline and when the
 * client disconnects.
 */
export function rpcLimits(context: HandlerContext, defaultDeadlineMs: number): CallLimits {
  return { deadline: Date.now() + (context.timeoutMs() ?? defaultDeadlineMs), signal: context.signal };
}

/** Limits of a plain HTTP request: the server default deadline, and a signal for a client that disconnects first. */
export function httpLimits(reply: FastifyReply, defaultDeadlineMs: number): CallLimits {
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return { deadline: Date.now() + defaultDeadlineMs, signal: controller.signal };
}
