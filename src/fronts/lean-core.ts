import type http from "node:http";
import type http2 from "node:http2";
import { type DescMessage, type DescMethod, type DescService, create, isMessage } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, createContextValues } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { type Compression, type MethodSerializationLookup, compressionNegotiate, createMethodSerializationLookup } from "@connectrpc/connect/protocol";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { MAX_TIMER_MS } from "../core/batcher.js";
import { kModel } from "./call-info.js";

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
  onCall?(protocol: LeanProtocol, method: string, code: string, seconds: number, model: string | undefined): void;
}

export type LeanProtocol = "grpc" | "connect";
export type LeanRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type LeanResponse = http.ServerResponse | http2.Http2ServerResponse;

type UnaryFn = (input: unknown, context: unknown) => Promise<unknown>;

/** A handler context that knows when its call is answered. */
export interface LeanContext extends HandlerContext {
  /**
   * The call is answered: the deadline timer and the close listener go. Unlike
   * connect-es, the signal is not aborted then: the only listener, the batcher's, is
   * gone once a request leaves its queue, and an abort event per call cost 3% of a call.
   */
  end(): void;
}

/** One unary method as the lean path runs it. */
export interface LeanMethod {
  service: DescService;
  method: DescMethod;
  /** "pkg.Service/Method", as the call interceptor names it. */
  name: string;
  fn: UnaryFn;
  serialization: MethodSerializationLookup<DescMessage, DescMessage>;
}

/** What the gRPC and Connect adapters share: how a call is set up, run and reported. */
export interface LeanCore {
  options: LeanUnaryOptions;
  /**
   * How to compress the answer, for the client's (grpc-)accept-encoding header: what
   * connect-fastify accepts, in its order, so the header gets the same answer.
   */
  responseCompression(accepted: string | string[] | undefined, headerName: string): Compression | null;
  /** connect-es' default: smaller answers are not worth compressing. */
  compressMinBytes: number;
  /**
   * A handler context as connect-es' createHandlerContext makes one (its signal aborts
   * at the deadline and when the client goes away), with less work per call: one
   * AbortController, request headers copied only when read, and abort reasons that need
   * no DOMException (those were 6% of a call's CPU here).
   */
  createContext(entry: LeanMethod, protocol: LeanProtocol, req: LeanRequest, res: LeanResponse, timeoutMs: number | undefined): LeanContext;
  /** Decodes, runs the implementation, encodes; throws a ConnectError for a bad message. */
  invoke(entry: LeanMethod, context: HandlerContext, binary: boolean, bytes: Uint8Array): Promise<Uint8Array>;
  /** Anything thrown, as the ConnectError the full path would answer. */
  toConnectError(error: unknown, entry: LeanMethod): ConnectError;
  /** Reports an answered call to metrics and the access log. */
  report(protocol: LeanProtocol, entry: LeanMethod, error: ConnectError | undefined, started: number, context?: HandlerContext): void;
}

/** Why a signal aborts: connect-es' reasons, without an AbortError DOMException (and its stack trace) per call. */
const timedOut = () => new ConnectError("the operation timed out", Code.DeadlineExceeded);
const CLIENT_GONE = new ConnectError("the client went away", Code.Canceled);

/** A request header's value, as connect-es' parsers take it (a repeated header counts as absent). */
export function headerValue(value: string | string[] | undefined): string | null {
  return typeof value === "string" ? value : null;
}

/** Request headers as a Headers object, without HTTP/2 pseudo-headers. */
function toHeaders(headers: http.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    out.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  return out;
}

/** connect-es' Connect and gRPC handlers cap timeouts at maxTimeoutMs (default: no cap). */
export const MAX_TIMEOUT_MS = Number.MAX_SAFE_INTEGER;

/** The unary methods of the registered services by request path, and the shared call machinery. */
export function createLeanCore(services: readonly RegisteredService[], options: LeanUnaryOptions): { methods: Map<string, LeanMethod>; core: LeanCore } {
  const compressMinBytes = 1024;
  const methods = new Map<string, LeanMethod>();
  for (const { service, impl } of services) {
    for (const method of service.methods) {
      const fn = (impl as Record<string, UnaryFn | undefined>)[method.localName];
      if (method.methodKind !== "unary" || !fn) continue;
      // connect-es' own (de)serializers: the same size checks and error messages.
      const serialization = createMethodSerializationLookup(method, undefined, undefined, {
        readMaxBytes: options.readMaxBytes,
        writeMaxBytes: 0xffffffff,
      });
      methods.set(`/${service.typeName}/${method.name}`, { service, method, name: `${service.typeName}/${method.name}`, fn: fn.bind(impl), serialization });
    }
  }

  const compressions = [compressionGzip, compressionBrotli];
  const core: LeanCore = {
    options,
    responseCompression: (accepted, headerName) => compressionNegotiate(compressions, null, headerValue(accepted), headerName).response,
    compressMinBytes,
    createContext(entry, protocol, req, res, timeoutMs) {
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
      if (timeoutMs !== undefined) {
        if (timeoutMs <= 0) controller.abort(timedOut());
        else if (timeoutMs <= MAX_TIMER_MS) timer = setTimeout(() => controller.abort(timedOut()), timeoutMs);
      }
      const end = () => {
        clearTimeout(timer);
        res.off("close", clientGone);
      };
      const clientGone = () => {
        end();
        if (!controller.signal.aborted) controller.abort(CLIENT_GONE);
      };
      res.once("close", clientGone);
      const headers = req.headers;
      let requestHeader: Headers | undefined;
      return {
        service: entry.service,
        method: entry.method,
        protocolName: protocol,
        requestMethod: "POST",
        get url() {
          return `http://${headers[":authority"] ?? headers.host ?? "localhost"}${req.url}`;
        },
        signal: controller.signal,
        timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
        get requestHeader() {
          return (requestHeader ??= toHeaders(headers));
        },
        responseHeader: new Headers(),
        responseTrailer: new Headers(),
        values: createContextValues(),
        end,
      };
    },
    async invoke(entry, context, binary, bytes) {
      let input: unknown;
      try {
        input = entry.serialization.getI(binary).parse(bytes);
      } catch (error) {
        // Undecodable protobuf is the client's mistake: invalid_argument, as wire-error-fixes makes connect-es say.
        if (error instanceof ConnectError && error.code === Code.Internal && error.rawMessage.startsWith("parse binary:")) {
          throw new ConnectError(error.rawMessage, Code.InvalidArgument);
        }
        throw error;
      }
      const result = await entry.fn(input, context);
      return entry.serialization.getO(binary).serialize(isMessage(result, entry.method.output) ? result : create(entry.method.output, result as never));
    },
    toConnectError(error, entry) {
      return error instanceof ConnectError ? error : options.mapError(error, entry.method);
    },
    report(protocol, entry, error, started, context) {
      options.onCall?.(protocol, entry.name, error ? codeToString(error.code) : "ok", (performance.now() - started) / 1000, context?.values.get(kModel));
    },
  };
  return { methods, core };
}
