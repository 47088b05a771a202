import { createHash, timingSafeEqual } from "node:crypto";
import type http2 from "node:http2";
import type { FastifyReply, FastifyRequest } from "fastify";

/** Routes that stay open: health probes (Kubernetes, load balancers) and the web demo's static files. */
const OPEN_ROUTES = new Set(["/ping", "/health", "/v2/health/live", "/v2/health/ready", "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch", "/", "/*"]);

const MESSAGE = "missing or wrong bearer token (send Authorization: Bearer <token>)";

/**
 * Checks "Authorization: Bearer <token>" in constant time: both sides are hashed
 * first, so neither the token's length nor its prefix leaks through timing.
 */
export function createTokenCheck(token: string): (authorization: string | undefined) => boolean {
  const expected = createHash("sha256").update(token).digest();
  return (authorization) => {
    const given = /^Bearer (.+)$/i.exec(authorization ?? "")?.[1] ?? "";
    return timingSafeEqual(createHash("sha256").update(given).digest(), expected);
  };
}

/**
 * An onRequest hook enforcing the token on every protocol and route but the open
 * ones, answering each protocol in its own way: gRPC and gRPC-Web UNAUTHENTICATED
 * (status 16, trailers-only), Connect and HTTP 401.
 */
export function createAuthHook(check: (authorization: string | undefined) => boolean) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (OPEN_ROUTES.has(req.routeOptions.url ?? "") || check(req.headers.authorization)) return;
    const contentType = req.headers["content-type"] ?? "";
    if (contentType.startsWith("application/grpc")) {
      const web = contentType.startsWith("application/grpc-web");
      const headers = { "content-type": web ? "application/grpc-web+proto" : "application/grpc+proto", "grpc-status": "16", "grpc-message": MESSAGE };
      const raw = reply.raw as unknown as { stream?: http2.ServerHttp2Stream };
      if (!web && raw.stream) {
        // gRPC's trailers-only answer: one HEADERS frame that ends the stream.
        reply.hijack();
        raw.stream.respond({ ":status": 200, ...headers }, { endStream: true });
        return;
      }
      return reply.code(200).headers(headers).send();
    }
    reply.code(401).header("www-authenticate", "Bearer");
    const url = req.routeOptions.url ?? req.url;
    if (url === "/invocations" || url === "/version") return reply.send({ error_code: "UNAUTHENTICATED", message: MESSAGE });
    if (url.startsWith("/v2")) return reply.send({ error: MESSAGE });
    return reply.send({ code: "unauthenticated", message: MESSAGE });
  };
}
