import type { FastifyInstance } from "fastify";
import type { InferenceService } from "../../core/inference-service.js";

/** MLflow's scoring-server health checks: 200 with "\n" once a model is loaded. */
export async function healthRoutes(app: FastifyInstance, opts: { core: InferenceService }): Promise<void> {
  const handler = async (_req: unknown, reply: import("fastify").FastifyReply) => {
    if (opts.core.models().length === 0) return reply.code(503).send("no model loaded\n");
    return reply.type("text/plain").send("\n");
  };
  app.get("/ping", handler);
  app.get("/health", handler);
}
