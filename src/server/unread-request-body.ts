import type http2 from "node:http2";
import type { FastifyReply, FastifyRequest } from "fastify";

/**
 * An onRequest hook for HTTP/1.1 requests answered before their body was read (e.g.
 * refused over the size limit): the unread bytes would leave the keep-alive
 * connection neither idle nor reusable, so the rest is read and discarded (bounded
 * by the request timeout). HTTP/2 streams need nothing: closing the session ends them.
 */
export async function finishUnreadRequestBody(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const raw = request.raw as FastifyRequest["raw"] | http2.Http2ServerRequest;
  if ("stream" in raw) return;
  reply.raw.once("finish", () => {
    if (!raw.complete) raw.resume();
  });
}
