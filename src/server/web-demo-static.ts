import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";

/**
 * Serves the built web demo (dist/public, made by `npm run build`) at "/". Scripts and
 * styles carry a content hash in their names, so they are cached for good; the page
 * itself is revalidated on every load, so a new build shows at once.
 */
export async function webDemoStatic(app: FastifyInstance, opts: { root: string }): Promise<void> {
  await app.register(fastifyStatic, {
    root: opts.root,
    cacheControl: false,
    setHeaders(res, path) {
      res.header("cache-control", path.endsWith(".html") ? "no-cache" : "public, max-age=31536000, immutable");
    },
  });
}
