import { availableParallelism } from "node:os";
import { type BatcherOptions, DEFAULT_BATCHER_OPTIONS } from "./core/batcher.js";
import type { ModelControlMode } from "./fronts/oip/repository-guard.js";

/** Port of the original mlflow-grpc wrapper, so its clients work unchanged. */
export const DEFAULT_PORT = 50051;
/** Loopback only unless asked: a model server should not be exposed by accident. */
export const DEFAULT_HOST = "127.0.0.1";
/** gRPC's customary default message limit. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
export const DEFAULT_LOG_LEVEL = "info";
export const DEFAULT_DEADLINE_MS = 60_000;
export const DEFAULT_DRAIN_TIMEOUT_MS = 20_000;
/** No delay: outside Kubernetes nothing needs time to stop sending. */
export const DEFAULT_DRAIN_DELAY_MS = 0;
/** Models change only with a restart unless asked: a repository API open to any caller is a way in. */
export const DEFAULT_MODEL_CONTROL_MODE: ModelControlMode = "none";
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Connections open at once. An idle HTTP/2 connection holds ~25 KB here (an HTTP/1.1 one
 * ~16 KB), so a full server holds ~100 MB in connections: room for thousands of client
 * channels (gRPC multiplexes calls on few connections), not for a socket flood.
 */
export const DEFAULT_MAX_CONNECTIONS = 4096;
/**
 * HTTP/2 streams per connection, advertised in SETTINGS: RFC 9113's recommended minimum
 * (6.5.2), Apache httpd's default and Envoy's edge-proxy recommendation, and what
 * node:http2 clients (grpc-js, connect-node) assume until the SETTINGS arrive (a lower
 * limit would refuse part of a new connection's first calls). gRPC clients queue calls
 * beyond it; the benchmarks use 64 streams per connection at most.
 */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 100;
/**
 * HTTP/2 streams open at once over all connections: 100 connections at full concurrency,
 * more than the batcher queues (1024 per model) can hold. A stream whose request never
 * ends holds ~12-16 KB here (measured, with its share of connections), so a flood of them
 * holds ~150 MB, not gigabytes.
 */
export const DEFAULT_MAX_OPEN_STREAMS = 10_000;
/**
 * Open grpc.health.v1.Health/Watch streams (~50 KB each, measured): one per client
 * channel that checks health, so a thousand channels; 50 MB at most.
 */
export const DEFAULT_MAX_HEALTH_WATCH_STREAMS = 1000;
/**
 * Request header bytes: Node's own HTTP/1.1 limit, and gRPC C-core's hard metadata limit
 * (grpc-java takes 8 KiB); HTTP/2 counts 32 bytes more per field (RFC 9113, 6.5.2).
 */
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
/**
 * Time from accepting a connection to knowing its protocol (the HTTP/2 preface and the
 * client's SETTINGS, or the first bytes of HTTP/1.1; with TLS, the handshake first): a
 * client sends these at once, so 10 s is many slow round trips.
 */
export const DEFAULT_PREFACE_TIMEOUT_MS = 10_000;
/** Time to receive an HTTP/1.1 request's headers, as Apache's mod_reqtimeout (header=20). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 20_000;
/** Time to receive a whole request, body included: Node's default for HTTP/1.1. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;
/** Idle keep-alive and HTTP/2 connections close after this: above the 60 s idle timeout of common load balancers, so they close first. */
export const DEFAULT_IDLE_TIMEOUT_MS = 65_000;

/** Everything the server needs to start, after flags and defaults are merged. */
export interface ServerConfig {
  /** Model directories (paths or file:// URIs); the first is the default model. */
  models: string[];
  /** Interface to listen on. Default 127.0.0.1. */
  host: string;
  /** TCP port; 0 picks a free one. Default 50051. */
  port: number;
  /** onnxruntime worker threads. Default: one per core. */
  workers: number;
  /** Largest request message accepted, in bytes; larger ones are refused with resource_exhausted. Default 4 MiB. */
  maxMessageBytes: number;
  /** pino log level. Default info. */
  logLevel: LogLevel;
  /** Most rows one merged model run may hold. Default 32. */
  maxBatchSize: number;
  /** Longest a request waits for others to join its batch while its model is busy, in ms. Default 1. */
  maxBatchDelayMs: number;
  /** Requests that may wait per model before new ones fail as overloaded. Default 1024. */
  maxQueue: number;
  /** Deadline of a request whose client set none, in ms. Default 60000. */
  defaultDeadlineMs: number;
  /** Answer gRPC and Connect unary calls on the lean path (same answers, a fraction of the CPU). Default true. */
  fastPath: boolean;
  /** On shutdown, how long calls in flight may take before connections are cut, in ms. Default 20000 (under Kubernetes' 30 s grace period). */
  drainTimeoutMs: number;
  /** Bearer token every call must carry, but health probes; undefined: no authentication. */
  authToken?: string;
  /** PEM certificate and key: TLS on the same port (ALPN h2 and http/1.1); undefined: plaintext. */
  tls?: { cert: Buffer; key: Buffer };
  /** Origins (e.g. https://app.example.com) whose pages may call the server; none by default. */
  corsOrigins?: string[];
  /** Batching settings per model name, over the server-wide ones (from a config file). */
  modelBatching?: Record<string, Partial<Omit<BatcherOptions, "concurrency">>>;
  /** Whether clients may load and unload models through the repository API ("explicit") or not ("none"). Default none. */
  modelControlMode: ModelControlMode;
  /**
   * On shutdown, how long the server keeps accepting and serving everything after its
   * readiness turned NOT_SERVING and before it refuses new connections and streams, in
   * ms: Kubernetes removes a terminating pod from its Services' endpoints while it is
   * already being stopped, so clients and proxies keep sending for a few seconds (a
   * readiness period or two). Default 0. Delay + drainTimeoutMs + 1 s must fit in the
   * pod's terminationGracePeriodSeconds.
   */
  drainDelayMs: number;
  /** Connections open at once; more are closed as they are accepted. Default 4096. */
  maxConnections: number;
  /** HTTP/2 streams open at once per connection, advertised in SETTINGS (SETTINGS_MAX_CONCURRENT_STREAMS). Default 100. */
  maxConcurrentStreams: number;
  /** HTTP/2 streams open at once over all connections; more are refused with REFUSED_STREAM (safe to retry). Default 10000. */
  maxOpenStreams: number;
  /** Open grpc.health.v1.Health/Watch streams over all connections; more fail with RESOURCE_EXHAUSTED (0: Watch always does). Default 1000. */
  maxHealthWatchStreams: number;
  /** Largest request header block, in bytes (HTTP/1.1 header size, HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE). Default 16384. */
  maxHeaderBytes: number;
  /**
   * From accepting a connection to its HTTP/2 preface and SETTINGS or its first HTTP/1.1
   * bytes, in ms: a deadline, not an idle timer. With TLS, the handshake has this long, then
   * the preface and SETTINGS or the first HTTP/1.1 request's headers as long again. Default 10000.
   */
  prefaceTimeoutMs: number;
  /** From an HTTP/1.1 request's first byte to the end of its headers, in ms (at most requestTimeoutMs). Default 20000. */
  headersTimeoutMs: number;
  /**
   * From an HTTP/1.1 request's first byte, or an HTTP/2 stream's HEADERS, to the end of its
   * body, in ms; later, HTTP/1.1 gets 408 and HTTP/2 RST_STREAM CANCEL (a client-streaming
   * call that sends for longer needs more). Default 300000.
   */
  requestTimeoutMs: number;
  /** How long an HTTP/1.1 keep-alive connection or an HTTP/2 connection may stay idle, in ms. Default 65000. */
  idleTimeoutMs: number;
}

/** Default worker count: one per core, each running its sessions with one intra-op thread. */
export function defaultWorkers(): number {
  return availableParallelism();
}

/** onnxruntime threads per session so that workers x threads matches the cores, no more. */
export function intraOpThreads(workers: number): number {
  return Math.max(1, Math.floor(availableParallelism() / workers));
}

/** A full configuration from the given fields and the defaults. */
export function withDefaults(config: Partial<ServerConfig> & Pick<ServerConfig, "models">): ServerConfig {
  return {
    host: DEFAULT_HOST,
    port: DEFAULT_PORT,
    workers: defaultWorkers(),
    maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
    logLevel: DEFAULT_LOG_LEVEL,
    ...DEFAULT_BATCHER_OPTIONS,
    defaultDeadlineMs: DEFAULT_DEADLINE_MS,
    fastPath: true,
    drainTimeoutMs: DEFAULT_DRAIN_TIMEOUT_MS,
    modelControlMode: DEFAULT_MODEL_CONTROL_MODE,
    drainDelayMs: DEFAULT_DRAIN_DELAY_MS,
    maxConnections: DEFAULT_MAX_CONNECTIONS,
    maxConcurrentStreams: DEFAULT_MAX_CONCURRENT_STREAMS,
    maxOpenStreams: DEFAULT_MAX_OPEN_STREAMS,
    maxHealthWatchStreams: DEFAULT_MAX_HEALTH_WATCH_STREAMS,
    maxHeaderBytes: DEFAULT_MAX_HEADER_BYTES,
    prefaceTimeoutMs: DEFAULT_PREFACE_TIMEOUT_MS,
    headersTimeoutMs: DEFAULT_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
    idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
    ...config,
  };
}
