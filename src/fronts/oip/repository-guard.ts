import type { FastifyReply, FastifyRequest } from "fastify";

/**
 * Who may change the served models through the repository API, after Triton's
 * `--model-control-mode`: "none" (the default) serves what the command line named and
 * refuses load/unload; "explicit" lets clients load and unload models by name.
 */
export const MODEL_CONTROL_MODES = ["none", "explicit"] as const;
export type ModelControlMode = (typeof MODEL_CONTROL_MODES)[number];

/**
 * A preHandler for the repository's load/unload routes. Besides the mode, it keeps
 * web pages out: a page on another origin can send a "simple" cross-site POST (no
 * preflight: text/plain, a form, or no body) that the browser delivers even though
 * the page cannot read the answer. Browsers send `Origin` on every cross-origin POST,
 * so a request whose Origin is not an allowed one (--cors-origin) is refused, and so
 * is any body that is not JSON (the content types a form can send). Clients other
 * than browsers (curl, tritonclient, SDKs) send no Origin and are unaffected. A page
 * that rebinds its own DNS name to this server is same-origin to the browser: only
 * --auth-token keeps it out (README: Limits and security).
 */
export function createRepositoryGuard(mode: ModelControlMode, allowedOrigins: readonly string[]) {
  const allowed = new Set(allowedOrigins);
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (mode === "none") {
      return reply.code(403).send({
        error: "loading and unloading models is off: start the server with --model-control-mode explicit to allow it",
      });
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !allowed.has(origin)) {
      return reply.code(403).send({ error: `origin "${origin}" may not change the model repository (allowed origins: --cors-origin)` });
    }
    const contentType = req.headers["content-type"];
    if (contentType !== undefined && !/^application\/json\s*(;|$)/i.test(contentType)) {
      return reply.code(415).send({ error: `the repository API takes application/json bodies, not "${contentType}"` });
    }
  };
}
