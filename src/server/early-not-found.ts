import type { FastifyReply, FastifyRequest } from "fastify";

/**
 * An onRequest hook that answers a request for no route at once, with Fastify's own
 * 404 body. Fastify reads a 404's request body before its not-found handler runs, so a
 * client that never finished one held its stream (or socket) for good; answered here,
 * the body is never waited for (the listener resets an HTTP/2 stream whose request is
 * unfinished once the answer is out; HTTP/1.1 bodies are drained within the request
 * timeout). Registered after the auth hook, so that without the token an unknown route
 * still says 401, not whether it exists.
 */
export async function answerNotFoundEarly(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (!request.is404) return;
  return reply.code(404).send({ message: `Route ${request.method}:${request.url} not found`, error: "Not Found", statusCode: 404 });
}
