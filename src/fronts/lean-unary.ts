import type http2 from "node:http2";
import { type LeanRequest, type LeanResponse, type LeanUnaryOptions, type RegisteredService, createLeanCore } from "./lean-core.js";
import { createLeanConnect } from "./lean-connect.js";
import { createLeanGrpc } from "./lean-grpc.js";

export type { LeanUnaryOptions, RegisteredService } from "./lean-core.js";

/**
 * The lean path for hot calls (DESIGN.md "Hot unary calls take a lean path"): gRPC
 * unary over HTTP/2 and Connect unary POSTs (HTTP/1.1 and HTTP/2), with identity
 * request encoding, are answered here, decoding with @bufbuild/protobuf and calling
 * the very implementation object the Connect router has, instead of going through
 * connect-es' async-iterable plumbing (0.6-0.9 ms of CPU per call measured here).
 * Everything else goes to Fastify and connect-fastify. It answers what connect-es
 * answers, byte for byte in status, body and trailers: test/e2e/lean-path.test.ts
 * runs every RPC and error case through both.
 */
export function createLeanUnary(services: readonly RegisteredService[], options: LeanUnaryOptions) {
  const { methods, core } = createLeanCore(services, options);
  const grpc = createLeanGrpc(core);
  const connect = createLeanConnect(core);
  return {
    /**
     * Takes the request when it is a lean case (then returns true), else leaves it to
     * the full path. Call it before any other handler reads the request.
     */
    handle(req: LeanRequest, res: LeanResponse): boolean {
      if (req.method !== "POST") return false;
      // Browsers' calls carry an Origin: the full path answers them, with CORS headers.
      if (req.headers.origin !== undefined) return false;
      const entry = methods.get(req.url ?? "");
      if (!entry) return false;
      // gRPC needs HTTP/2 (over TLS, HTTP/1.1 requests arrive here too).
      if ("stream" in req && grpc.handle(entry, req, res as http2.Http2ServerResponse)) return true;
      return connect.handle(entry, req, res);
    },
  };
}
