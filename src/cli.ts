/**
 * Process entry: flags -> configuration -> build() -> listen(), and signals.
 * Start-up failures print one line and exit 1, without a stack trace.
 */
import { readFileSync, writeSync } from "node:fs";
import { basename } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { build } from "./app.js";
import { DEFAULT_BATCHER_OPTIONS } from "./core/batcher.js";
import { type ServerConfig, DEFAULT_DEADLINE_MS, DEFAULT_DRAIN_DELAY_MS, DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_HOST, DEFAULT_LOG_LEVEL, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MODEL_CONTROL_MODE, DEFAULT_PORT, LOG_LEVELS, defaultWorkers } from "./config.js";
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT_STREAMS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_HEALTH_WATCH_STREAMS,
  DEFAULT_MAX_OPEN_STREAMS,
  DEFAULT_PREFACE_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from "./config.js";
import { MODEL_CONTROL_MODES } from "./fronts/oip/repository-guard.js";
import { ConfigError, type ModelConfig, readConfigFile } from "./config-file.js";
import { ModelLoadError } from "./mlflow/model-directory.js";
import { packageVersion } from "./locations.js";

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

function fail(message: string): never {
  process.stderr.write(`mlflow-connect: error: ${message}\n`);
  process.exit(1);
}

/** The serve command's flags: the server's settings plus the ones the CLI turns into settings. */
type ServeOptions = Omit<ServerConfig, "models" | "tls" | "corsOrigins" | "modelBatching"> & {
  authTokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  corsOrigin?: string[];
  config?: string;
};

/**
 * Applies a --config file: its values fill every flag given neither on the command
 * line nor in the environment; its models come after the command line's.
 */
function applyConfigFile(path: string, modelUris: string[], options: ServeOptions, command: Command): Record<string, ModelConfig["batching"]> {
  let file;
  try {
    file = readConfigFile(path);
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  const { models = [], ...flags } = file;
  for (const [key, value] of Object.entries(flags)) {
    if (command.getOptionValueSource(key) === "default" || command.getOptionValueSource(key) === undefined) {
      (options as unknown as Record<string, unknown>)[key] = value;
    }
  }
  modelUris.push(...models.map((m) => (m.name ? `${m.name}=${m.path}` : m.path)));
  const batching: Record<string, ModelConfig["batching"]> = {};
  for (const m of models) if (m.batching) batching[m.name ?? basename(m.path)] = m.batching;
  return batching;
}

/**
 * The server configuration a `serve` command line gives, with its environment and
 * --config file (a flag beats its environment variable, which beats the file); exits 1
 * with one line for a configuration that cannot work. Exported for tests.
 */
export function resolveConfig(modelUris: string[], allOptions: ServeOptions, command: Command): ServerConfig {
  const modelBatching = allOptions.config ? applyConfigFile(allOptions.config, modelUris, allOptions, command) : {};
  const { authTokenFile, tlsCert, tlsKey, corsOrigin, config: _configFile, ...options } = allOptions;
  // commander sets a negated flag's twin to false whatever its value: read it as a boolean.
  if (command.getOptionValueSource("fastPath") === "env") options.fastPath = !/^(false|0|no|off)$/i.test(process.env.MLFLOW_CONNECT_FAST_PATH ?? "");
  if (modelUris.length === 0) fail("no model to serve: give MODEL_URI arguments or models in --config");
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) fail("--tls-cert and --tls-key go together");
  if (tlsCert !== undefined && tlsKey !== undefined) {
    try {
      tls = { cert: readFileSync(tlsCert), key: readFileSync(tlsKey) };
    } catch (error) {
      fail(`cannot read the TLS certificate or key: ${(error as Error).message}`);
    }
  }
  if (authTokenFile !== undefined) {
    try {
      options.authToken = readFileSync(authTokenFile, "utf8").trim();
    } catch (error) {
      fail(`cannot read the auth token file "${authTokenFile}": ${(error as Error).message}`);
    }
  }
  if (options.authToken === "") fail("the auth token is empty");
  return { models: modelUris, ...options, tls, corsOrigins: corsOrigin, modelBatching: modelBatching as ServerConfig["modelBatching"] };
}

async function serve(modelUris: string[], allOptions: ServeOptions, command: Command): Promise<void> {
  const config = resolveConfig(modelUris, allOptions, command);
  let app;
  try {
    app = await build(config);
  } catch (error) {
    if (error instanceof ModelLoadError) fail(error.message);
    throw error;
  }
  try {
    await app.listen();
  } catch (error) {
    await app.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") fail(`port ${config.port} on ${config.host} is already in use (choose another with --port)`);
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") fail(`cannot listen on host "${config.host}"`);
    throw error;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.fastify.log.info(`${signal} received, shutting down`);
    // Whatever hangs (a worker inside a long native run, a stuck stdout), the process
    // leaves a second after the drain may last at most; unref'd, so it never holds it.
    setTimeout(() => {
      try {
        writeSync(2, "mlflow-connect: error: shutdown took longer than --drain-delay-ms + --drain-timeout-ms + 1 s; exiting\n");
      } catch {
        // stderr is gone too
      }
      process.exit(1);
    }, config.drainDelayMs + config.drainTimeoutMs + HARD_EXIT_AFTER_DRAIN_MS).unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => fail(`shutdown failed: ${(error as Error).message}`),
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

/** How long after the drain's end (delay + timeout) a shutdown that still hangs is cut short. */
const HARD_EXIT_AFTER_DRAIN_MS = 1_000;

/**
 * A flag with an environment-variable twin: --max-queue <-> MLFLOW_CONNECT_MAX_QUEUE
 * (commander reads it when the flag is absent; the flag wins).
 */
class EnvOption extends Option {
  constructor(flags: string, description: string) {
    super(flags, description);
    this.env(`MLFLOW_CONNECT_${this.attributeName().replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`);
  }
}

/** The command line; exported so that tests can read its options (main() parses process.argv). */
export const program = new Command("mlflow-connect")
  .description("Serve an MLflow model (ONNX flavor) over gRPC, gRPC-Web, Connect and JSON on one port.")
  .version(packageVersion, "-V, --version", "print the version")
  .showHelpAfterError();

program
  .command("serve")
  .description("serve MLflow models (ONNX flavor); the first is the default model")
  .argument(
    "[MODEL_URI...]",
    "an MLflow model directory (a path or a file:// URI), NAME=PATH to serve it under NAME, or a repository folder " +
      "whose subfolders are model directories (or hold numeric version folders; the highest is served)",
  )
  .addOption(new EnvOption("-c, --config <file>", "YAML file with any of these settings (camelCase) and per-model ones: models: [{path, name, batching}]"))
  .addOption(new EnvOption("-p, --port <n>", "TCP port for every protocol (0 picks a free one)").default(DEFAULT_PORT).argParser(integer(0, 65535)))
  .addOption(new EnvOption("-H, --host <host>", "interface to listen on; 0.0.0.0 exposes the server to the network").default(DEFAULT_HOST))
  .addOption(new EnvOption("-w, --workers <n>", "onnxruntime worker threads, one model session each").default(defaultWorkers(), `${defaultWorkers()}, one per core`).argParser(integer(1, 256)))
  .addOption(
    new EnvOption("--max-message-bytes <n>", "largest request message accepted, in bytes")
      .default(DEFAULT_MAX_MESSAGE_BYTES)
      .argParser(integer(1, 2 ** 31 - 1)),
  )
  .addOption(new EnvOption("--log-level <level>", "log level").choices(LOG_LEVELS).default(DEFAULT_LOG_LEVEL))
  .addOption(new EnvOption("--max-batch-size <rows>", "most rows one merged model run may hold (1 turns batching off)").default(DEFAULT_BATCHER_OPTIONS.maxBatchSize).argParser(integer(1, 65536)))
  .addOption(
    new EnvOption("--max-batch-delay-ms <ms>", "longest a request waits for others to join its batch, only while its model is busy")
      .default(DEFAULT_BATCHER_OPTIONS.maxBatchDelayMs)
      .argParser(integer(0, 10_000)),
  )
  .addOption(new EnvOption("--max-queue <n>", "requests that may wait per model before new ones fail as overloaded").default(DEFAULT_BATCHER_OPTIONS.maxQueue).argParser(integer(1, 1_000_000)))
  .addOption(new EnvOption("--auth-token <token>", "bearer token every call must carry (health probes excepted)"))
  .addOption(new EnvOption("--auth-token-file <path>", "read the bearer token from a file (e.g. a Kubernetes secret)"))
  .addOption(new EnvOption("--cors-origin <origins>", "comma-separated origins whose pages may call the server (CORS); none by default").argParser((v) => v.split(",").map((o) => o.trim()).filter(Boolean)))
  .addOption(new EnvOption("--tls-cert <path>", "PEM certificate: serve TLS on the same port (ALPN h2 and http/1.1)"))
  .addOption(new EnvOption("--tls-key <path>", "PEM private key for --tls-cert"))
  .addOption(
    new EnvOption("--drain-timeout-ms <ms>", "on SIGTERM/SIGINT, how long calls in flight may take before connections are cut")
      .default(DEFAULT_DRAIN_TIMEOUT_MS)
      .argParser(integer(0, 3_600_000)),
  )
  .addOption(new EnvOption("--no-fast-path", "answer gRPC and Connect unary calls through connect-es too, instead of the lean path"))
  .addOption(new EnvOption("--default-deadline-ms <ms>", "deadline of a request whose client set none").default(DEFAULT_DEADLINE_MS).argParser(integer(1, 86_400_000)))
  .addOption(
    new EnvOption("--model-control-mode <mode>", "explicit: clients may load and unload models through /v2/repository (as Triton's flag); none: only a restart changes them")
      .choices(MODEL_CONTROL_MODES)
      .default(DEFAULT_MODEL_CONTROL_MODE),
  )
  .addOption(
    new EnvOption("--drain-delay-ms <ms>", "on SIGTERM/SIGINT, how long to go on serving after readiness turned NOT_SERVING, before refusing new connections (Kubernetes endpoints update meanwhile)")
      .default(DEFAULT_DRAIN_DELAY_MS)
      .argParser(integer(0, 3_600_000)),
  )
  // Connection and stream limits (rule 11: each bounds a resource a client could hold).
  .addOption(new EnvOption("--max-connections <n>", "connections open at once; more are closed as they are accepted").default(DEFAULT_MAX_CONNECTIONS).argParser(integer(1, 1_000_000)))
  .addOption(
    new EnvOption("--max-concurrent-streams <n>", "HTTP/2 streams open at once per connection (advertised in SETTINGS; clients queue beyond it)")
      .default(DEFAULT_MAX_CONCURRENT_STREAMS)
      .argParser(integer(1, 2 ** 31 - 1)),
  )
  .addOption(
    new EnvOption("--max-open-streams <n>", "HTTP/2 streams open at once over all connections; more are refused with REFUSED_STREAM")
      .default(DEFAULT_MAX_OPEN_STREAMS)
      .argParser(integer(1, 10_000_000)),
  )
  .addOption(
    new EnvOption("--max-health-watch-streams <n>", "open grpc.health.v1.Health/Watch streams; more fail with RESOURCE_EXHAUSTED")
      .default(DEFAULT_MAX_HEALTH_WATCH_STREAMS)
      .argParser(integer(0, 10_000_000)),
  )
  .addOption(
    new EnvOption("--max-header-bytes <n>", "largest request header block, in bytes (HTTP/1.1 headers, HTTP/2 header list)")
      .default(DEFAULT_MAX_HEADER_BYTES)
      .argParser(integer(1024, 2 ** 24)),
  )
  .addOption(
    new EnvOption("--preface-timeout-ms <ms>", "deadline from accepting a connection to its HTTP/2 preface and SETTINGS or first HTTP/1.1 bytes (TLS: handshake included)")
      .default(DEFAULT_PREFACE_TIMEOUT_MS)
      .argParser(integer(1, 3_600_000)),
  )
  .addOption(
    new EnvOption("--headers-timeout-ms <ms>", "deadline for an HTTP/1.1 request's headers, from its first byte (at most --request-timeout-ms)")
      .default(DEFAULT_HEADERS_TIMEOUT_MS)
      .argParser(integer(1, 3_600_000)),
  )
  .addOption(
    new EnvOption("--request-timeout-ms <ms>", "deadline for a whole request, body included, from its first byte (HTTP/1.1) or its HEADERS (HTTP/2)")
      .default(DEFAULT_REQUEST_TIMEOUT_MS)
      .argParser(integer(1, 86_400_000)),
  )
  .addOption(
    new EnvOption("--idle-timeout-ms <ms>", "how long a keep-alive HTTP/1.1 or an HTTP/2 connection may stay idle")
      .default(DEFAULT_IDLE_TIMEOUT_MS)
      .argParser(integer(1, 86_400_000)),
  )
  .action(serve);


/** Runs the command line (bin/mlflow-connect.js calls it: importing this module starts nothing). */
export function main(): void {
  program.parseAsync().catch((error: unknown) => {
    process.stderr.write(`mlflow-connect: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  });
}
