import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type tls from "node:tls";
import { type ListenerLimits, CONNECTION_WINDOW_BYTES, clearOnSettings, connectionDeadline, createStreamLimiter, h1Limits, h2Settings } from "./listener-limits.js";

/** The client connection preface every HTTP/2 connection starts with (RFC 9113, 3.4). */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Answers a request itself (returns true) or leaves it to Fastify's handler. */
export type InterceptHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => boolean;

/**
 * The listener's limits and timeouts (Fastify applies none of its own with a
 * serverFactory: the inner servers get them here).
 */
export interface OnePortOptions extends ListenerLimits {
  /** After close(), how long in-flight requests may take before every connection is destroyed. */
  closeGraceMs: number;
  /**
   * Gets every request first (HTTP/2 and HTTP/1.1) and returns true for one it answers
   * itself (the lean unary path); read at each request, so it may be set after the
   * server exists.
   */
  intercept?: { handle?: InterceptHandler };
  /** PEM certificate and key: serve TLS, with ALPN choosing h2 or http/1.1 on the same port. */
  tls?: { cert: Buffer; key: Buffer };
}

/**
 * One plaintext port for HTTP/2 with prior knowledge (gRPC clients) and HTTP/1.1
 * (browsers, curl): each connection's first bytes decide which inner server gets it.
 * Used as Fastify's serverFactory, so both inner servers share Fastify's handler.
 *
 * close() stops accepting: new connections are refused, HTTP/2 clients get a graceful
 * GOAWAY (see trackSessions) and HTTP/1.1 requests are answered with
 * `Connection: close`. Every request already received is answered; then idle
 * keep-alive sockets close, and HTTP/2 streams whose answer is out but whose request
 * body was never read are ended. Whatever is still open after closeGraceMs is
 * destroyed, so Fastify's close() never hangs on a client.
 */
export function createOnePortServer(handler: Handler, options: OnePortOptions): net.Server {
  const streamLimiter = createStreamLimiter(options);
  const sockets = new Set<net.Socket>();
  let inFlight = 0;
  let closing = false;

  const destroyAll = (): void => {
    for (const socket of sockets) socket.destroy();
  };
  // HTTP/2 streams, to end those whose answer is out but whose client still sends
  // (a refused oversized request): a graceful session close would wait for them forever.
  const streams = new Set<http2.ServerHttp2Stream>();
  // HTTP/1.1 answers not yet sent, to ask for `Connection: close` on those in flight at close().
  const h1Responses = new Set<http.ServerResponse>();
  let sweepLater: NodeJS.Timeout | undefined;
  const drained = (): void => {
    let pending = false;
    for (const stream of streams) {
      if (stream.closed || !stream.writableEnded) continue;
      // Only once END_STREAM is out (localClose): "finish" comes before Node hands the
      // last DATA or trailers to nghttp2, which would send an RST_STREAM queued now
      // first, and the client would lose an answered call (RFC 9113 8.1 allows the
      // NO_ERROR reset only after a complete response).
      if (stream.state.localClose) stream.close(http2.constants.NGHTTP2_NO_ERROR);
      else pending = true;
    }
    if (pending) sweepLater ??= setTimeout(() => ((sweepLater = undefined), drained()), 10).unref();
    if (inFlight > 0) return;
    // Idle keep-alive sockets stay until nothing is in flight: a request a client sends
    // on one meanwhile is answered (with Connection: close). Closed at once, those met
    // requests already on their way (a reset, and a lost call for clients that do not
    // retry POSTs); now only a client idle for the whole drain can meet that race.
    h1.closeIdleConnections();
    // Connected before close() but silent since (a browser's preconnect): nothing of theirs was received.
    for (const socket of silent) socket.destroy();
  };
  const track = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void => {
    inFlight++;
    let done = false;
    const finished = (): void => {
      if (done) return;
      done = true;
      inFlight--;
      if (closing) setImmediate(drained); // let the last bytes go out first
    };
    // An HTTP/2 response's "finish" waits for the whole stream to close; the stream's
    // own "finish" marks the answer as written.
    ("stream" in req ? req.stream : res).once("finish", finished);
    res.once("close", finished);
  };

  const h2Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
    // Over TLS, HTTP/1.1 requests come here too (they have no stream).
    if ("stream" in req && !streamLimiter.admit(req.stream)) return;
    track(req, res);
    if (options.intercept?.handle?.(req, res)) return;
    handler(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse);
  };
  if (options.tls) return createTlsServer(h2Handler, options);

  const h1 = http.createServer(h1Limits(options), (req, res) => {
    track(req, res);
    // Answered, then the connection closes: the client sends its next request elsewhere.
    if (closing) res.shouldKeepAlive = false;
    h1Responses.add(res);
    res.once("finish", () => h1Responses.delete(res));
    res.once("close", () => h1Responses.delete(res));
    if (options.intercept?.handle?.(req, res)) return;
    handler(req, res);
  });
  const h2 = http2.createServer({ settings: h2Settings(options) }, h2Handler);
  const { sessions, goAway } = trackSessions(h2, options.idleTimeoutMs);
  h2.on("stream", (stream) => {
    streams.add(stream);
    stream.once("close", () => streams.delete(stream));
  });

  // Sockets that have not sent a byte yet.
  const silent = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    silent.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      silent.delete(socket);
    });
    // Until a protocol is known no inner server times the socket out: do it here, with
    // a deadline that runs on for HTTP/2 until the client's SETTINGS.
    const clearDeadline = connectionDeadline(socket, options.prefaceTimeoutMs);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      silent.delete(socket);
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, H2_PREFACE.length);
      const isH2 = head.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (isH2 && n < H2_PREFACE.length) return; // a prefix of the preface: wait for more bytes
      socket.off("data", onData);
      socket.pause();
      socket.unshift(head);
      // http2 reads the unshifted bytes off the socket's buffer by itself; the
      // HTTP/1.1 server listens for "data", so the paused socket must flow again.
      if (isH2) {
        let session: http2.ServerHttp2Session | undefined;
        const created = (s: http2.ServerHttp2Session): void => {
          session = s;
        };
        h2.once("session", created); // emitted while the connection is handed over
        h2.emit("connection", socket);
        h2.off("session", created);
        if (session) clearOnSettings(session, clearDeadline);
        // Accepted before close() but identified after it: GOAWAY at once, as close()
        // gave the others (streams it refuses are safe for the client to retry).
        if (closing && session) goAway(session);
      } else {
        // From here node:http's headersTimeout and requestTimeout bound the request.
        clearDeadline();
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });
  // Beyond it, node:net closes new connections as they are accepted.
  server.maxConnections = options.maxConnections;

  // closeIdleConnections() is a no-op on a server that never emitted "listening".
  server.on("listening", () => h1.emit("listening"));
  const close = server.close.bind(server);
  return Object.assign(server, {
    /** Called by Fastify on close: close() closes idle keep-alive sockets itself, once nothing is in flight. */
    closeIdleConnections() {
      if (!closing && inFlight === 0) h1.closeIdleConnections();
    },
    close(callback?: (err?: Error) => void) {
      closing = true;
      // GOAWAY to HTTP/2 clients (idle gRPC channels): no new streams on this connection.
      for (const session of sessions) goAway(session);
      for (const res of h1Responses) if (!res.headersSent) res.shouldKeepAlive = false;
      close(callback);
      if (inFlight === 0) setImmediate(drained);
      setTimeout(destroyAll, options.closeGraceMs).unref();
      return server;
    },
  });
}

/** The largest stream id (RFC 9113 5.1.1): a GOAWAY naming it refuses no stream. */
const MAX_STREAM_ID = 2 ** 31 - 1;

/**
 * The server's open HTTP/2 sessions, and goAway() to close one gracefully. An idle
 * session gets a GOAWAY too (streams in flight still finish); gRPC clients reconnect
 * when they need to.
 *
 * goAway() sends two GOAWAY frames to a session with calls in flight, as grpc-go's
 * GracefulStop and nghttp2's shutdown notice do: the first names the largest stream
 * id, so the client opens no more streams but none it sent is refused; the final one
 * (session.close(): the last stream taken) goes once the streams the session took are
 * all closed, and the session then ends. An idle session gets the final one at once.
 * A final GOAWAY sent while calls run lost them all: python grpcio (grpc-core 1.51)
 * answers it with RST_STREAM for stream ids it had numbered but never sent, nghttp2
 * takes a reset of a stream it never saw as a connection error (RFC 9113 5.1, "idle"
 * stream) and Node destroys the session, failing every call in it with INTERNAL
 * (RST_STREAM 2). After the last answer that error costs nothing: the client already
 * knows from the final GOAWAY which of its streams were never taken (it retries those).
 * Streams the client sends between the two frames are ignored by nghttp2, and refused
 * by the final one.
 */
function trackSessions(server: http2.Http2Server | http2.Http2SecureServer, idleTimeoutMs: number) {
  const sessions = new Set<http2.ServerHttp2Session>();
  const openStreams = new Map<http2.Http2Session, number>();
  const leaving = new Set<http2.Http2Session>();
  const finalGoAway = (session: http2.Http2Session): void => {
    if (!session.closed && !session.destroyed) session.close();
  };
  const goAway = (session: http2.ServerHttp2Session): void => {
    if (leaving.has(session) || session.closed || session.destroyed) return;
    leaving.add(session);
    // No call to lose: the final GOAWAY alone (a reset that follows it costs nothing).
    if (!openStreams.get(session)) return finalGoAway(session);
    session.goaway(http2.constants.NGHTTP2_NO_ERROR, MAX_STREAM_ID);
  };
  server.on("session", (session: http2.ServerHttp2Session) => {
    session.setTimeout(idleTimeoutMs, () => goAway(session));
    session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    sessions.add(session);
    session.once("close", () => {
      sessions.delete(session);
      openStreams.delete(session);
      leaving.delete(session);
    });
  });
  server.on("stream", (stream: http2.ServerHttp2Stream) => {
    const session = stream.session!;
    openStreams.set(session, (openStreams.get(session) ?? 0) + 1);
    stream.once("close", () => {
      const left = (openStreams.get(session) ?? 1) - 1;
      openStreams.set(session, left);
      if (left === 0 && leaving.has(session)) finalGoAway(session);
    });
  });
  return { sessions, goAway };
}

/**
 * The TLS variant: Node's HTTP/2 secure server with allowHTTP1 negotiates h2 or
 * http/1.1 by ALPN itself, and hands both to the same handler (HTTP/1.1 requests
 * through the compatibility API too). Closing sends GOAWAY and lets streams finish.
 */
function createTlsServer(handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void, options: OnePortOptions): net.Server {
  let closing = false;
  // HTTP/1.1 calls in flight per socket: an idle keep-alive socket must not hold shutdown.
  const h1InFlight = new Map<net.Socket, number>();
  const h1Responses = new Set<http.ServerResponse>();
  // The preface deadline of each connection, until its first HTTP/1.1 request.
  const h1Deadlines = new WeakMap<net.Socket, () => void>();
  const tlsOptions: http2.SecureServerOptions = {
    cert: options.tls!.cert,
    key: options.tls!.key,
    allowHTTP1: true,
    settings: h2Settings(options),
    // The handshake has the preface deadline too (then it runs again for the preface).
    handshakeTimeout: options.prefaceTimeoutMs,
  };
  const server = http2.createSecureServer(tlsOptions, (req, res) => {
    if (!("stream" in req)) {
      const socket = (req as unknown as http.IncomingMessage).socket;
      h1Deadlines.get(socket)?.();
      const h1Res = res as unknown as http.ServerResponse;
      // Answered, then the connection closes (as on the plaintext port).
      if (closing) h1Res.shouldKeepAlive = false;
      h1Responses.add(h1Res);
      h1InFlight.set(socket, (h1InFlight.get(socket) ?? 0) + 1);
      let done = false;
      const finished = (): void => {
        if (done) return;
        done = true;
        h1Responses.delete(h1Res);
        const left = (h1InFlight.get(socket) ?? 1) - 1;
        h1InFlight.set(socket, left);
        // end(), not destroy(): the answer's last bytes may still be in the TLS socket.
        if (closing && left === 0) setImmediate(() => socket.end());
      };
      (res as unknown as http.ServerResponse).once("finish", finished);
      (res as unknown as http.ServerResponse).once("close", finished);
    }
    handler(req, res);
  });
  server.setTimeout(options.requestTimeoutMs);
  // The HTTP/1.1 fallback reads node:http's limits off the server itself.
  Object.assign(server, h1Limits(options));
  server.maxConnections = options.maxConnections;
  const { sessions, goAway } = trackSessions(server, options.idleTimeoutMs);
  // After the handshake, the preface deadline runs on until the client's HTTP/2
  // SETTINGS or its first HTTP/1.1 request. Node's own listener creates the session
  // between these two, and emits "session" then.
  let accepting: (() => void) | undefined;
  server.prependListener("secureConnection", (socket: net.Socket) => {
    accepting = connectionDeadline(socket, options.prefaceTimeoutMs);
  });
  server.on("session", (session: http2.ServerHttp2Session) => {
    if (accepting) clearOnSettings(session, accepting);
    accepting = undefined;
  });
  const sockets = new Set<net.Socket>();
  server.on("secureConnection", (socket: net.Socket) => {
    if (accepting) h1Deadlines.set(socket, accepting);
    accepting = undefined;
    sockets.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      h1InFlight.delete(socket);
    });
  });
  const close = server.close.bind(server);
  return Object.assign(server, {
    closeIdleConnections() {},
    close(callback?: (err?: Error) => void) {
      closing = true;
      for (const session of sessions) goAway(session);
      for (const res of h1Responses) if (!res.headersSent) res.shouldKeepAlive = false;
      // Idle HTTP/1.1 sockets go. HTTP/2 ones are told by ALPN: a session's `socket` is
      // a Proxy, never equal to the socket itself, so they were all destroyed here,
      // cancelling every call in flight (RST_STREAM CANCEL).
      for (const socket of sockets) {
        if ((socket as tls.TLSSocket).alpnProtocol !== "h2" && !h1InFlight.get(socket)) socket.destroy();
      }
      close(callback);
      setTimeout(() => sockets.forEach((s) => s.destroy()), options.closeGraceMs).unref();
      return server;
    },
  }) as unknown as net.Server;
}
