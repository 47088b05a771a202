import fastifyCors from "@fastify/cors";
import { cors as connectCors } from "@connectrpc/connect";
import type { FastifyInstance } from "fastify";

/**
 * CORS for browsers on other origins: only the listed origins, with the headers
 * Connect, gRPC-Web and our auth need (connect-es' recommended lists). Without a
 * list no CORS headers are sent, so browsers keep other origins out.
 */
export async function registerCors(app: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return;
  await app.register(fastifyCors, {
    origin: [...origins],
    methods: [...connectCors.allowedMethods],
    allowedHeaders: [...connectCors.allowedHeaders, "Authorization"],
    exposedHeaders: [...connectCors.exposedHeaders, "Retry-After"],
    maxAge: 7200,
  });
}
