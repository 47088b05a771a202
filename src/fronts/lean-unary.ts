import type http2 from "node:http2";
import { type DescMethod, type DescService, create, fromBinary, isMessage, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, createHandlerContext } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { kModel } from "./call-info.js";
import { encodeGrpcMessage } from "./wire-error-fixes.js";

/** A service and the implementation object registered with the Connect router. */
export interface RegisteredService {
  service: DescService;
  impl: object;
}

export interface LeanUnaryOptions {
  /** Largest request message, as the router's readMaxBytes. */
  readMaxBytes: number;
  /** The router's error mapping (and logging), applied to everything an implementation throws. */
  mapError(error: unknown, method: DescMethod): ConnectError;
  /** Reports each answered call, as the router's call interceptor does. */
  onCall?(method: string, code: string, seconds: number, model: string | undefined): void;
}

type UnaryFn = (input: unknown, context: unknown) => Promise<unknown>;

interface Entry {
  service: DescService;
  method: DescMethod;
  fn: UnaryFn;
}

/** Connect's grpc handler caps timeouts at this (maxTimeoutMs default: no cap). */
const MAX_TIMEOUT_MS = Number.MAX_SAFE_INTEGER;

/**
 * The lean path for hot calls (DESIGN.md "Hot unary calls take a lean path"): gRPC
 * unary over HTTP/2 with identity encoding is answered here, decoding with
 * @bufbuild/protobuf and calling the very implementation object the Connect router
 * has, instead of going through connect-es' async-iterable plumbing (0.6-0.9 ms of CPU
 * per call measured here). Everything else goes to Fastify and connect-fastify. It
 * answers what connect-es answers, byte for byte in status, message and trailers:
 * test/e2e/lean-path.test.ts runs every RPC and error case through both.
 */
export function createLeanUnary(services: readonly RegisteredService[], options: LeanUnaryOptions) {
  const methods = new Map<string, Entry>();
  for (const { service, impl } of services) {
    for (const method of service.methods) {
      const fn = (impl as Record<string, UnaryFn | undefined>)[method.localName];
      if (method.methodKind === "unary" && fn) methods.set(`/${service.typeName}/${method.name}`, { service, method, fn: fn.bind(impl) });
    }
  }

  // Answers through Node's compatibility response, which owns the stream's trailers.
  // Headers and trailers an implementation set, and error details and metadata, go out
  // as connect-es sends them (its own setTrailerStatus); grpc-message is encoded as the
  // gRPC spec asks, as wire-error-fixes makes the full path do.
  function respond(
    res: http2.Http2ServerResponse,
    body: Uint8Array | undefined,
    error: ConnectError | undefined,
    started?: number,
    context?: HandlerContext,
  ): void {
    if (started !== undefined) {
      const path = res.req.headers[":path"] ?? "";
      options.onCall?.(path.slice(1), error ? codeToString(error.code) : "ok", (performance.now() - started) / 1000, context?.values.get(kModel));
    }
    if (res.stream.destroyed || res.stream.closed) return;
    res.writeHead(200, { ...Object.fromEntries(context?.responseHeader ?? []), "content-type": "application/grpc+proto" });
    const trailer = setTrailerStatus(new Headers(context?.responseTrailer), error);
    const message = trailer.get("grpc-message");
    if (message !== null && error) trailer.set("grpc-message", encodeGrpcMessage(error.rawMessage));
    res.addTrailers(Object.fromEntries(trailer));
    if (body) res.end(body);
    else res.end();
  }

  async function serve(entry: Entry, res: http2.Http2ServerResponse, headers: http2.IncomingHttpHeaders, body: Buffer, started: number): Promise<void> {
    const stream = res.stream;
    const timeout = parseTimeout(typeof headers["grpc-timeout"] === "string" ? headers["grpc-timeout"] : null, MAX_TIMEOUT_MS);
    const requestAbort = new AbortController();
    stream.once("close", () => requestAbort.abort());
    const context = createHandlerContext({
      service: entry.service,
      method: entry.method,
      protocolName: "grpc",
      requestMethod: "POST",
      url: `http://${headers[":authority"] ?? "localhost"}${headers[":path"]}`,
      timeoutMs: timeout.timeoutMs,
      requestSignal: requestAbort.signal,
      requestHeader: Object.fromEntries(Object.entries(headers).filter(([k]) => !k.startsWith(":")).map(([k, v]) => [k, String(v)])),
    });
    try {
      if (timeout.error) throw timeout.error;
      const bytes = readSingleMessage(body, options.readMaxBytes);
      let input: unknown;
      try {
        input = fromBinary(entry.method.input, bytes);
      } catch (error) {
        // The client's mistake: invalid_argument, as wire-error-fixes makes connect-es say.
        throw new ConnectError(`parse binary: ${(error as Error).message}`, Code.InvalidArgument);
      }
      const result = await entry.fn(input, context);
      const output = isMessage(result, entry.method.output) ? result : create(entry.method.output, result as never);
      const message = toBinary(entry.method.output, output);
      const frame = new Uint8Array(5 + message.length);
      new DataView(frame.buffer).setUint32(1, message.length);
      frame.set(message, 5);
      respond(res, frame, undefined, started, context);
    } catch (error) {
      respond(res, undefined, error instanceof ConnectError ? error : options.mapError(error, entry.method), started, context);
    } finally {
      context.abort();
    }
  }

  return {
    /**
     * Takes the request when it is a lean case (then returns true), else leaves it to
     * the full path. Call it before any other handler reads the request.
     */
    handle(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): boolean {
      if (req.method !== "POST") return false;
      const contentType = req.headers["content-type"];
      if (contentType !== "application/grpc" && contentType !== "application/grpc+proto") return false;
      const encoding = req.headers["grpc-encoding"];
      if (encoding !== undefined && encoding !== "identity") return false;
      const entry = methods.get(req.headers[":path"] ?? "");
      if (!entry) return false;
      const { stream, headers } = req;
      const started = performance.now();
      const chunks: Buffer[] = [];
      let size = 0;
      let refused = false;
      // Envelopes are checked as they arrive, so no more than one message is ever held:
      // an oversized one is refused from its header (as connect-es does), a second one
      // at once (connect-es refuses it too, once it is read).
      let next = 0; // where the next envelope header starts
      let envelopes = 0;
      stream.on("data", (chunk: Buffer) => {
        if (refused) return;
        chunks.push(chunk);
        size += chunk.length;
        while (!refused && size >= next + 5) {
          const header = Buffer.concat(chunks, size).subarray(next, next + 5);
          const announced = header.readUInt32BE(1);
          envelopes++;
          if (announced > options.readMaxBytes) {
            refuse(new ConnectError(`message size ${announced} is larger than configured readMaxBytes ${options.readMaxBytes}`, Code.ResourceExhausted));
          } else if (envelopes > 1) {
            refuse(new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented));
          }
          next += 5 + announced;
        }
      });
      const refuse = (error: ConnectError) => {
        refused = true;
        chunks.length = 0;
        respond(res, undefined, error, started);
      };
      stream.once("end", () => {
        if (!refused) void serve(entry, res, headers, Buffer.concat(chunks, size), started);
      });
      return true;
    },
  };
}

/** The one message of a unary request body, with connect-es' errors for anything else. */
function readSingleMessage(body: Buffer, readMaxBytes: number): Uint8Array {
  let at = 0;
  let message: Uint8Array | undefined;
  while (at < body.length) {
    if (body.length - at < 5) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
    const flags = body[at]!;
    const length = body.readUInt32BE(at + 1);
    if (length > readMaxBytes) throw new ConnectError(`message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted);
    if (body.length - at - 5 < length) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
    if (message) throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
    if ((flags & 0x01) === 0x01) throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
    message = body.subarray(at + 5, at + 5 + length);
    at += 5 + length;
  }
  if (!message) throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
  return message;
}
