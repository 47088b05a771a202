import http2 from "node:http2";
import type net from "node:net";

/**
 * The listener's limits (DESIGN.md "Every connection, stream and queue has a limit with
 * a flag"): each comes from a ServerConfig field of the same name, documented there.
 */
export interface ListenerLimits {
  /** Connections open at once; more are closed as they are accepted. */
  maxConnections: number;
  /** HTTP/2 streams open at once per connection, advertised in SETTINGS. */
  maxConcurrentStreams: number;
  /** HTTP/2 streams open at once over all connections; more are refused with REFUSED_STREAM. */
  maxOpenStreams: number;
  /** Largest request header block, in bytes (HTTP/1.1 headers, HTTP/2 header list). */
  maxHeaderBytes: number;
  /** From accepting a connection to its HTTP/2 preface and SETTINGS or first HTTP/1.1 bytes, in ms. */
  prefaceTimeoutMs: number;
  /** From an HTTP/1.1 request's first byte to the end of its headers, in ms. */
  headersTimeoutMs: number;
  /** From an HTTP/1.1 request's first byte or an HTTP/2 stream's HEADERS to the end of its body, in ms. */
  requestTimeoutMs: number;
  /** How long an HTTP/1.1 keep-alive connection or an HTTP/2 connection may stay idle, in ms. */
  idleTimeoutMs: number;
}

const { NGHTTP2_STREAM_STATE_OPEN, NGHTTP2_STREAM_STATE_HALF_CLOSED_LOCAL } = http2.constants;

/**
 * HTTP/2 flow-control windows. HTTP/2's defaults (64 KiB per stream and per
 * connection) let a client have only 64 KiB of request bodies in flight: 64 streams of
 * 3 KiB tensors waited for window updates (p99 50 ms here, 21 ms with these), and a
 * large tensor crosses a long link at 64 KiB per round trip. gRPC servers in Go and
 * Java open their windows by bandwidth-delay estimates; fixed larger ones do here.
 */
const INITIAL_WINDOW_BYTES = 1 << 20;
export const CONNECTION_WINDOW_BYTES = 16 << 20;

/**
 * The SETTINGS the server sends. Node's HTTP/2 layer (nghttp2 and its C++ around it)
 * enforces both limits before any JavaScript runs: a header block over
 * maxHeaderListSize resets its stream (ENHANCE_YOUR_CALM); a stream over
 * maxConcurrentStreams is refused (REFUSED_STREAM) while the client has not
 * acknowledged the SETTINGS, and ends the connection after that (nghttp2 makes it a
 * connection error; gRPC clients never get there: they queue calls beyond the limit).
 */
export function h2Settings(limits: ListenerLimits): http2.Settings {
  return { initialWindowSize: INITIAL_WINDOW_BYTES, maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderBytes };
}

/** The HTTP/1.1 parser's limits, as node:http server options (and Http2SecureServer properties for its HTTP/1.1 fallback). */
export function h1Limits(limits: ListenerLimits) {
  const requestTimeout = limits.requestTimeoutMs;
  // node:http refuses headersTimeout > requestTimeout, and checks both every
  // connectionsCheckingInterval (30 s by default): often enough here for a deadline of
  // seconds to mean something.
  const headersTimeout = Math.min(limits.headersTimeoutMs, requestTimeout);
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout,
    requestTimeout,
    keepAliveTimeout: limits.idleTimeoutMs,
    connectionsCheckingInterval: checkingInterval(headersTimeout),
  };
}

/**
 * An absolute deadline for a new connection to say what it is: destroys the socket
 * when it passes, unless clear() came first. A byte now and then does not extend it
 * (a socket idle timer would restart on every byte: one byte of the preface every
 * minute held a connection forever).
 */
export function connectionDeadline(socket: net.Socket, ms: number): () => void {
  const timer = setTimeout(() => socket.destroy(), ms);
  const clear = (): void => clearTimeout(timer);
  socket.once("close", clear);
  return clear;
}

/** Ends the preface deadline once the client's SETTINGS arrived: the preface was whole and the session is set up. */
export function clearOnSettings(session: http2.ServerHttp2Session, clear: () => void): void {
  session.once("remoteSettings", clear);
  session.once("close", clear);
}

/**
 * Admission of HTTP/2 streams over all connections, and their release, checked as the
 * request arrives, before any handler sees it; and the request deadline of HTTP/2
 * streams: as node:http's requestTimeout does for HTTP/1.1 (and Envoy's request_timeout
 * for both), a stream whose request has not ended requestTimeoutMs after its HEADERS is
 * reset (CANCEL), whatever waits for it (an open Health/Check whose body never comes).
 */
export function createStreamLimiter({ maxOpenStreams, requestTimeoutMs }: Pick<ListenerLimits, "maxOpenStreams" | "requestTimeoutMs">) {
  let open = 0;
  // Streams whose request may still be coming, by admission time, oldest first (a Map
  // keeps insertion order): a sweep looks at the expired ones only, as node:http checks
  // its connections every connectionsCheckingInterval, instead of a timer per stream.
  const pending = new Map<http2.ServerHttp2Stream, number>();
  let sweeper: NodeJS.Timeout | undefined;
  const sweep = (): void => {
    const expired = performance.now() - requestTimeoutMs;
    for (const [stream, admitted] of pending) {
      if (admitted > expired) break;
      pending.delete(stream);
      if (requestUnfinished(stream)) stream.close(http2.constants.NGHTTP2_CANCEL);
    }
    if (pending.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };
  return {
    /**
     * Takes a new stream (returns true) or refuses it with REFUSED_STREAM, which tells
     * the client that no work was done and the call is safe to retry.
     */
    admit(stream: http2.ServerHttp2Stream): boolean {
      if (open >= maxOpenStreams) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return false;
      }
      open++;
      stream.once("close", () => {
        open--;
        pending.delete(stream);
      });
      stream.once("finish", () => resetUnfinishedRequest(stream));
      if (!stream.endAfterHeaders) {
        pending.set(stream, performance.now());
        sweeper ??= setInterval(sweep, checkingInterval(requestTimeoutMs)).unref();
      }
      return true;
    },
  };
}

/**
 * Once the answer is out, a stream whose client has not finished sending is reset with
 * NO_ERROR, as RFC 9113 (8.1) allows and grpc-go does: a call answered early (no token,
 * over the size limit, not found) must hold nothing while its client dawdles. Node
 * closes such a stream by itself only if nobody read from it and no trailers were sent.
 */
function resetUnfinishedRequest(stream: http2.ServerHttp2Stream): void {
  if (!requestUnfinished(stream)) return;
  const reset = (): void => stream.close(http2.constants.NGHTTP2_NO_ERROR);
  // Node's compatibility response ends a stream with trailers (gRPC's status, or an
  // empty DATA frame with END_STREAM) when nghttp2 asks for them, after "finish", and
  // hands them to nghttp2 in a setImmediate: a stream closed before that would lose
  // them. This immediate is queued after that one; Node writes what nghttp2 has queued
  // before the RST_STREAM.
  if (stream.sentTrailers === undefined && stream.listenerCount("wantTrailers") > 0) stream.once("wantTrailers", () => setImmediate(reset));
  else reset();
}

/** Whether the client has yet to end its request on a stream that is still open. */
function requestUnfinished(stream: http2.ServerHttp2Stream): boolean {
  // Read to the end, or ended with its headers (GET): finished (the common case, decided
  // without a call into nghttp2).
  if (stream.closed || stream.readableEnded || stream.endAfterHeaders) return false;
  const { state } = stream.state;
  return state === NGHTTP2_STREAM_STATE_OPEN || state === NGHTTP2_STREAM_STATE_HALF_CLOSED_LOCAL;
}

/** How often deadlines of this length are checked: within a quarter of themselves, at most every 30 s (node:http's default). */
function checkingInterval(deadlineMs: number): number {
  return Math.max(10, Math.min(30_000, Math.floor(deadlineMs / 4)));
}
