import { createRequire } from "node:module";
import type http from "node:http";
import { fileURLToPath } from "node:url";
import { createContextValues } from "@connectrpc/connect";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import Fastify, { type FastifyInstance, LogController } from "fastify";
import { type ServerConfig, intraOpThreads } from "./config.js";
import { createInferenceService, type InferenceService } from "./core/inference-service.js";
import { type ModelRepository, createModelRepository } from "./core/model-repository.js";
import { createErrorInterceptor, mapRpcError } from "./fronts/error-interceptor.js";
import { type CallRecord, createCallInterceptor } from "./fronts/call-interceptor.js";
import { httpModel, kLog } from "./fronts/call-info.js";
import { createMetrics } from "./server/metrics.js";
import { createAuthHook, createTokenCheck } from "./server/auth.js";
import { registerCors } from "./server/cors.js";
import { type RegisteredService, createLeanUnary } from "./fronts/lean-unary.js";
import { Health, createHealthService } from "./fronts/health/health-service.js";
import { mlflowRestRoutes } from "./fronts/mlflow-rest/mlflow-rest-routes.js";
import { GRPCInferenceService, createGrpcInferenceService } from "./fronts/oip/grpc-inference-service.js";
import { oipRestRoutes } from "./fronts/oip/rest-routes.js";
import { ServerReflectionV1, ServerReflectionV1alpha, createReflectionServices } from "./fronts/reflection/reflection-service.js";
import { MLflow, createSeedService } from "./fronts/seed/seed-service.js";
import { ModelService, createModelService } from "./fronts/serving-v1/model-service.js";
import { applyWireErrorFixes } from "./fronts/wire-error-fixes.js";
import { type ModelSources, resolveModelArguments } from "./mlflow/model-repository.js";
import { type OrtPool, createOrtPool } from "./runtime/ort-pool.js";
import { packageVersion, projectRoot } from "./locations.js";
import { type InterceptHandler, createOnePortServer } from "./server/one-port.js";
import { createLogDestination } from "./server/log-destination.js";
import { finishUnreadRequestBody } from "./server/unread-request-body.js";
import { answerNotFoundEarly } from "./server/early-not-found.js";
import { webDemoStatic } from "./server/web-demo-static.js";
function canResolve(module: string): boolean {
  try {
    createRequire(import.meta.url).resolve(module);
    return true;
  } catch {
    return false;
  }
}

/** Whether a listen address only takes connections from this machine. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^(::ffff:)?127\./.test(host);
}

/** A built server, models loaded, not yet listening. */
export interface App {
  fastify: FastifyInstance;
  core: InferenceService;
  repository: ModelRepository;
  /** The onnxruntime worker pool. */
  pool: OrtPool;
  /** Every HTTP route the server registered (RPC paths included), as method and URL pattern. */
  routes(): ReadonlyArray<{ method: string; url: string }>;
  /** Calls answered on the lean unary path so far. */
  leanCalls(): number;
  /** Listens on the configured host and port; resolves with the URL. */
  listen(): Promise<string>;
  /**
   * Shuts down gracefully: readiness turns NOT_SERVING at once; for drainDelayMs
   * everything is still served (load balancers take the server out meanwhile); then
   * new connections and HTTP/2 streams are refused, every call received is answered
   * (within drainTimeoutMs), and the workers stop. Later calls get the same promise.
   */
  close(): Promise<void>;
}

const webDemoRoot = fileURLToPath(new URL("dist/public", projectRoot));
/** How long a clean shutdown waits for log lines still queued (a slow or absent reader). */
const LOG_FLUSH_TIMEOUT_MS = 500;

/**
 * The composition root: loads the models into a worker pool, then mounts every
 * front on one Fastify instance. Throws ModelLoadError for a model that cannot be served.
 */
export async function build(config: ServerConfig): Promise<App> {
  const sources = await resolveModelArguments(config.models);
  const pool = createOrtPool({ workers: config.workers, settings: { intraOpNumThreads: intraOpThreads(config.workers), interOpNumThreads: 1 } });
  try {
    return await mount(config, sources, pool);
  } catch (error) {
    await pool.close(); // no worker thread may outlive a failed start
    throw error;
  }
}

async function mount(config: ServerConfig, sources: ModelSources, pool: OrtPool): Promise<App> {
  const { maxBatchSize, maxBatchDelayMs, maxQueue } = config;
  const metrics = createMetrics();
  const core = createInferenceService({ pool, batching: { maxBatchSize, maxBatchDelayMs, maxQueue }, observer: metrics });
  const repository = createModelRepository(core, sources, config.modelBatching);
  // The models load in the worker threads while this thread mounts the fronts (a
  // third of the start-up time); a failure is thrown by the await below.
  const loading = repository.loadAll();
  loading.catch(() => undefined);
  const server = { name: "mlflow-connect", version: packageVersion };

  const intercept: { handle?: InterceptHandler } = {};
  // JSON lines; pretty in a terminal when the optional dev tool pino-pretty is installed.
  const pretty = process.stdout.isTTY && canResolve("pino-pretty");
  const logs = pretty ? undefined : createLogDestination(1);
  const fastify = Fastify({
    logger: { level: config.logLevel, ...(logs ? { stream: logs } : { transport: { target: "pino-pretty" } }) },
    // A call received while closing is answered like any other (Fastify's default
    // answers 503, which gRPC clients take as UNAVAILABLE: a call lost, not refused).
    // Over HTTP/1.1 Fastify adds `Connection: close` to it.
    return503OnClosing: false,
    // Fastify's two lines per request are off: recordCall() writes one access line per call.
    logController: new LogController({ disableRequestLogging: true }),
    // Fastify types a serverFactory as an http.Server; ours is a net.Server that
    // hands connections to inner HTTP/1.1 and HTTP/2 servers (see one-port.ts).
    serverFactory: (handler) =>
      createOnePortServer(handler, {
        closeGraceMs: config.drainTimeoutMs,
        intercept,
        tls: config.tls,
        maxConnections: config.maxConnections,
        maxConcurrentStreams: config.maxConcurrentStreams,
        maxOpenStreams: config.maxOpenStreams,
        maxHeaderBytes: config.maxHeaderBytes,
        prefaceTimeoutMs: config.prefaceTimeoutMs,
        headersTimeoutMs: config.headersTimeoutMs,
        requestTimeoutMs: config.requestTimeoutMs,
        idleTimeoutMs: config.idleTimeoutMs,
      }) as unknown as http.Server,
  });
  const routes: Array<{ method: string; url: string }> = [];
  fastify.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
  // Health turns NOT_SERVING first, so balancers stop sending before the port closes.
  fastify.addHook("preClose", async () => core.beginShutdown());
  // onClose hooks run last-added first, after the listener's close (every connection done).
  fastify.addHook("onClose", async () => logs?.flush(LOG_FLUSH_TIMEOUT_MS));
  fastify.addHook("onClose", async () => pool.close());
  fastify.addHook("onRequest", finishUnreadRequestBody);
  // Before auth: a preflight carries no token and is answered by the CORS hook.
  await registerCors(fastify, config.corsOrigins ?? []);
  const tokenCheck = config.authToken === undefined ? undefined : createTokenCheck(config.authToken);
  if (tokenCheck) fastify.addHook("onRequest", createAuthHook(tokenCheck));
  fastify.addHook("onRequest", answerNotFoundEarly);
  // Every call: counted, timed and logged once (one access-log line, with its request id).
  const logsCalls = () => ["info", "debug", "trace"].includes(fastify.log.level);
  const recordCall = ({ protocol, method, code, seconds, model, log }: CallRecord): void => {
    metrics.call(protocol, method, code, seconds, model);
    (log ?? fastify.log).info({ protocol, method, model, code, durationMs: Number((seconds * 1000).toFixed(3)) }, "call");
  };
  // Plain HTTP routes are recorded here; RPCs by the router's interceptor or the lean path.
  const rpcPaths = new Set<string>();
  fastify.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unknown";
    if (rpcPaths.has(route) || route === "/metrics") return;
    // Clients choose the method freely (any :method over HTTP/2): unknown ones share a label.
    const method = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"].includes(req.method) ? req.method : "OTHER";
    recordCall({ protocol: "http", method: `${method} ${route}`, code: String(reply.statusCode), seconds: reply.elapsedTime / 1000, model: httpModel(req.raw), log: req.log });
  });
  fastify.get("/metrics", async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  // One implementation object per service, for the Connect router and the lean path alike.
  const exposed = [MLflow, ModelService, GRPCInferenceService, Health];
  const reflection = createReflectionServices(exposed);
  const services: RegisteredService[] = [
    { service: MLflow, impl: createSeedService(core, config.defaultDeadlineMs) },
    { service: ModelService, impl: createModelService(core, config.defaultDeadlineMs) },
    { service: GRPCInferenceService, impl: createGrpcInferenceService(core, server, config.defaultDeadlineMs) },
    { service: Health, impl: createHealthService(core, [...exposed, ServerReflectionV1, ServerReflectionV1alpha].map((s) => s.typeName), { maxWatchStreams: config.maxHealthWatchStreams }) },
    { service: ServerReflectionV1, impl: reflection.v1 },
    { service: ServerReflectionV1alpha, impl: reflection.v1alpha },
  ];
  const logError = (err: unknown, msg: string) => fastify.log.error({ err }, msg);
  await fastify.register(fastifyConnectPlugin, {
    routes: (router) => {
      for (const { service, impl } of services) router.service(service, impl as never);
      for (const handler of router.handlers) rpcPaths.add(handler.requestPath);
      applyWireErrorFixes(router);
    },
    interceptors: [createCallInterceptor(recordCall), createErrorInterceptor(logError)],
    contextValues: (req) => createContextValues().set(kLog, req.log),
    readMaxBytes: config.maxMessageBytes,
  });
  let leanCalls = 0;
  if (config.fastPath) {
    const lean = createLeanUnary(services, {
      readMaxBytes: config.maxMessageBytes,
      mapError: (error, method) => mapRpcError(error, method.name, logError),
      onCall: (protocol, method, code, seconds, model) => {
        leanCalls++;
        // Fastify gives the lean path no request: a child logger carries its request id.
        recordCall({ protocol, method, code, seconds, model, log: logsCalls() ? fastify.log.child({ reqId: `lean-${leanCalls}` }) : undefined });
      },
    });
    // A call without the token goes the full way, where the auth hook answers it. During
    // shutdown calls still come here: the listener refuses what must not be received.
    intercept.handle = (req, res) => (!tokenCheck || tokenCheck(req.headers.authorization)) && lean.handle(req, res);
  }
  await fastify.register(mlflowRestRoutes, {
    core,
    version: packageVersion,
    bodyLimit: config.maxMessageBytes,
    defaultDeadlineMs: config.defaultDeadlineMs,
    logError,
  });
  await fastify.register(oipRestRoutes, {
    core,
    repository,
    server,
    bodyLimit: config.maxMessageBytes,
    defaultDeadlineMs: config.defaultDeadlineMs,
    logError,
    modelControlMode: config.modelControlMode,
    corsOrigins: config.corsOrigins ?? [],
  });
  await fastify.register(webDemoStatic, { root: webDemoRoot });

  await loading;
  for (const model of core.models()) {
    if (model.source.inputExampleProblem) fastify.log.warn(model.source.inputExampleProblem);
  }
  let closing: Promise<void> | undefined;
  const names = `${core.models().length > 1 ? "models" : "model"} ${core.models().map((m) => `"${m.name}"`).join(", ")}`;

  return {
    fastify,
    core,
    repository,
    pool,
    routes: () => routes,
    leanCalls: () => leanCalls,
    listen: async () => {
      if (config.authToken === undefined && !isLoopback(config.host)) {
        fastify.log.warn(
          `listening on ${config.host} without --auth-token: anyone who can reach this port can run the models and read /metrics (set --auth-token or --auth-token-file)`,
        );
      }
      return fastify.listen({
        host: config.host,
        port: config.port,
        // The one start-up line: where it listens and what it serves.
        listenTextResolver: (address) =>
          config.tls
            ? `mlflow-connect listening on ${address.replace(/^http:/, "https:")} (gRPC, gRPC-Web, Connect; TLS, ALPN h2 and http/1.1); ${names} ready`
            : `mlflow-connect listening on ${address} (gRPC, gRPC-Web, Connect; HTTP/1.1 and h2c); ${names} ready`,
      });
    },
    close: () =>
      (closing ??= (async () => {
        core.beginShutdown();
        if (config.drainDelayMs > 0 && fastify.server.listening) await new Promise((resolve) => setTimeout(resolve, config.drainDelayMs));
        await fastify.close();
      })()),
  };
}
