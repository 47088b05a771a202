import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Ajv } from "ajv";
import { parse as parseYaml } from "yaml";
import type { BatcherOptions } from "./core/batcher.js";

/** Per-model settings of a config file. */
export interface ModelConfig {
  /** MLflow model directory or repository folder, relative to the config file. */
  path: string;
  /** Name to serve it under (a model directory only). */
  name?: string;
  /** Batching and queue settings of this model. */
  batching?: Partial<Omit<BatcherOptions, "concurrency">>;
}

/** What a --config YAML file may hold: the flags (camelCase) and per-model settings. */
export interface ConfigFile {
  models?: ModelConfig[];
  [flag: string]: unknown;
}

const batching = {
  type: "object",
  additionalProperties: false,
  properties: {
    maxBatchSize: { type: "integer", minimum: 1 },
    maxBatchDelayMs: { type: "integer", minimum: 0 },
    maxQueue: { type: "integer", minimum: 1 },
  },
} as const;

const schema = {
  type: "object",
  additionalProperties: false,
  properties: {
    port: { type: "integer", minimum: 0, maximum: 65535 },
    host: { type: "string", minLength: 1 },
    workers: { type: "integer", minimum: 1, maximum: 256 },
    maxMessageBytes: { type: "integer", minimum: 1 },
    logLevel: { enum: ["fatal", "error", "warn", "info", "debug", "trace", "silent"] },
    maxBatchSize: { type: "integer", minimum: 1 },
    maxBatchDelayMs: { type: "integer", minimum: 0 },
    maxQueue: { type: "integer", minimum: 1 },
    defaultDeadlineMs: { type: "integer", minimum: 1 },
    fastPath: { type: "boolean" },
    drainTimeoutMs: { type: "integer", minimum: 0 },
    authTokenFile: { type: "string" },
    corsOrigin: { type: "array", items: { type: "string" } },
    tlsCert: { type: "string" },
    tlsKey: { type: "string" },
    modelControlMode: { enum: ["none", "explicit"] },
    models: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["path"],
        properties: { path: { type: "string", minLength: 1 }, name: { type: "string", pattern: "^[A-Za-z0-9_.-]+$" }, batching },
      },
    },
    drainDelayMs: { type: "integer", minimum: 0 },
    maxConnections: { type: "integer", minimum: 1 },
    maxConcurrentStreams: { type: "integer", minimum: 1, maximum: 2147483647 },
    maxOpenStreams: { type: "integer", minimum: 1 },
    maxHealthWatchStreams: { type: "integer", minimum: 0 },
    maxHeaderBytes: { type: "integer", minimum: 1024, maximum: 16777216 },
    prefaceTimeoutMs: { type: "integer", minimum: 1 },
    headersTimeoutMs: { type: "integer", minimum: 1 },
    requestTimeoutMs: { type: "integer", minimum: 1 },
    idleTimeoutMs: { type: "integer", minimum: 1 },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile<ConfigFile>(schema);

/** Thrown for a config file that cannot be used; the message names the file and every problem. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Reads and checks a YAML config file. Paths in it are relative to the file. Flags on
 * the command line and environment variables win over it.
 */
export function readConfigFile(path: string): ConfigFile {
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ConfigError(`cannot read the config file "${path}": ${(error as Error).message.split("\n")[0]}`);
  }
  if (!validate(parsed)) {
    const problems = (validate.errors ?? []).map((e) =>
      `${e.instancePath || "(top level)"} ${e.message}${e.keyword === "additionalProperties" ? ` ("${(e.params as { additionalProperty: string }).additionalProperty}")` : ""}`,
    );
    throw new ConfigError(`invalid config file "${path}": ${problems.join("; ")}`);
  }
  const base = dirname(resolve(path));
  const rel = (p: string) => resolve(base, p);
  return {
    ...parsed,
    ...(typeof parsed.authTokenFile === "string" ? { authTokenFile: rel(parsed.authTokenFile) } : {}),
    ...(typeof parsed.tlsCert === "string" ? { tlsCert: rel(parsed.tlsCert) } : {}),
    ...(typeof parsed.tlsKey === "string" ? { tlsKey: rel(parsed.tlsKey) } : {}),
    models: parsed.models?.map((m) => ({ ...m, path: rel(m.path) })),
  };
}
