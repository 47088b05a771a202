import type { FastifyInstance, FastifyReply } from "fastify";
import type { InferenceService } from "../../core/inference-service.js";
import { parseScoringCsv, parseScoringJson } from "../../mlflow/scoring-format.js";
import { noteHttpModel } from "../call-info.js";
import { httpLimits } from "../call-limits.js";
import { replyHttpError } from "../error-codes.js";
import { predictionsJson, requestFromScoring } from "../mlflow-json.js";

export interface MlflowRestOptions {
  core: InferenceService;
  /** Answered by GET /version. */
  version: string;
  /** Largest request body, in bytes. */
  bodyLimit: number;
  /** Deadline of every request, in ms. */
  defaultDeadlineMs: number;
  /** Where internal failures are reported. */
  logError: (error: unknown, message: string) => void;
}

const CONTENT_TYPES = ["application/json", "text/csv"];

/**
 * MLflow's scoring server API (`mlflow models serve`), so its clients work unchanged:
 * POST /invocations, GET /ping, /health and /version. Errors are MLflow's
 * {"error_code", "message"}.
 */
export async function mlflowRestRoutes(app: FastifyInstance, opts: MlflowRestOptions): Promise<void> {
  const { core } = opts;
  // Bodies are read as text here and parsed by the scoring codecs, so that a bad body
  // gets MLflow's error and not Fastify's. Encapsulated: other routes keep theirs.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string", bodyLimit: opts.bodyLimit }, (_req, body, done) => done(null, body));

  app.setErrorHandler((error, req, reply) =>
    replyHttpError(error, reply, opts.logError, `${req.method} ${req.url}`, (error_code, message) => ({ error_code, message })),
  );

  const ping = async (_req: unknown, reply: FastifyReply) => {
    if (!core.ready()) return reply.code(503).type("text/plain").send("not ready\n");
    return reply.type("text/plain").send("\n");
  };
  app.get("/ping", ping);
  app.get("/health", ping);
  app.get("/version", async (_req, reply) => reply.type("text/plain").send(opts.version));

  app.post("/invocations", async (req, reply) => {
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (!CONTENT_TYPES.includes(type)) {
      return reply.code(415).send({
        error_code: "BAD_REQUEST",
        message: `Content type must be one of ${CONTENT_TYPES.join(", ")}; got "${type || "none"}"`,
      });
    }
    const model = core.model();
    noteHttpModel(req.raw, model.name);
    const text = typeof req.body === "string" ? req.body : "";
    const scoring = type === "text/csv" ? parseScoringCsv(text) : parseScoringJson(text);
    const response = await core.infer({ ...requestFromScoring(model, scoring), ...httpLimits(reply, opts.defaultDeadlineMs) });
    return reply.type("application/json").send(predictionsJson(response));
  });
}
