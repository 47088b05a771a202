import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import type { Option } from "commander";
import { stringify } from "yaml";
import { program, resolveConfig } from "../src/cli.js";
import type { ServerConfig } from "../src/config.js";
import { ROOT } from "./helpers/server.js";

/**
 * Every option of `serve`, read from the command line program itself: a flag added
 * later is checked here without a change to this file, unless it needs a sample value
 * of a kind below does not know (then the failure says so).
 */
const serve = program.commands.find((c) => c.name() === "serve")!;
const options = serve.options as readonly Option[];
const PREFIX = "MLFLOW_CONNECT_";
const envName = (option: Option) => `${PREFIX}${option.attributeName().replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

const dir = mkdtempSync(join(tmpdir(), "cli-options-"));
const file = (name: string, content: string) => {
  writeFileSync(join(dir, name), content);
  return join(dir, name);
};

/** Two values per option (flag or environment form), a first and a second, never the first the default. */
interface Sample {
  /** As typed on the command line or in the environment. */
  text: [string, string];
  /** As a --config file holds it. */
  yaml: [unknown, unknown];
  /** What the server configuration then holds, and where. */
  expected: [unknown, unknown];
  key: string;
  /** An option that must be set with this one (--tls-cert and --tls-key go together). */
  companion?: string;
}

/** Flags that the CLI turns into another setting (a file read, a renamed field). */
const SPECIAL: Record<string, Sample> = {
  authTokenFile: {
    text: [file("token-a", "token-a\n"), file("token-b", "token-b\n")],
    yaml: [join(dir, "token-a"), join(dir, "token-b")],
    expected: ["token-a", "token-b"],
    key: "authToken",
  },
  tlsCert: {
    text: [file("cert-a.pem", "cert a"), file("cert-b.pem", "cert b")],
    yaml: [join(dir, "cert-a.pem"), join(dir, "cert-b.pem")],
    expected: ["cert a", "cert b"],
    key: "tls.cert",
    companion: "tlsKey",
  },
  tlsKey: {
    text: [file("key-a.pem", "key a"), file("key-b.pem", "key b")],
    yaml: [join(dir, "key-a.pem"), join(dir, "key-b.pem")],
    expected: ["key a", "key b"],
    key: "tls.key",
    companion: "tlsCert",
  },
  corsOrigin: {
    text: ["https://a.example,https://b.example", "https://c.example"],
    yaml: [["https://a.example", "https://b.example"], ["https://c.example"]],
    expected: [["https://a.example", "https://b.example"], ["https://c.example"]],
    key: "corsOrigins",
  },
};
/** Settings a --config file does not take, and why. */
const NOT_IN_CONFIG_FILE: Record<string, string> = {
  config: "a config file does not name another",
  authToken: "a secret: config files take authTokenFile",
};

function sample(option: Option): Sample {
  const name = option.attributeName();
  if (SPECIAL[name]) return SPECIAL[name];
  if (option.negate) return { text: ["false", "true"], yaml: [false, true], expected: [false, true], key: name };
  const parse = (text: string) => (option.parseArg ? option.parseArg(text, undefined as never) : text);
  let text: [string, string];
  if (option.argChoices) {
    const others = option.argChoices.filter((c) => c !== option.defaultValue);
    text = [others[0]!, others[1] ?? String(option.defaultValue)];
  } else if (typeof option.defaultValue === "number") {
    // Next to the default: inside whatever range the option's parser takes.
    const d = option.defaultValue;
    const valid = [d + 1, d + 2, d - 1, d - 2].map(String).filter((t) => {
      try {
        parse(t);
        return true;
      } catch {
        return false;
      }
    });
    if (valid.length < 2) throw new Error(`${option.long}: no two valid values next to its default ${d}; add a sample to test/cli-options.test.ts`);
    text = [valid[0]!, valid[1]!];
  } else if (option.defaultValue === undefined || typeof option.defaultValue === "string") {
    text = ["value-a", "value-b"];
  } else {
    throw new Error(`${option.long}: no sample value for a default of ${JSON.stringify(option.defaultValue)}; add one to test/cli-options.test.ts`);
  }
  const expected: [unknown, unknown] = [parse(text[0]), parse(text[1])];
  return { text, yaml: expected, expected, key: name };
}

/** The command-line form of an option set to the first or second sample. */
const flag = (option: Option, s: Sample, which: 0 | 1): string[] => (option.negate ? (s.text[which] === "false" ? [option.long!] : []) : [option.long!, s.text[which]]);

/** The configuration `serve` resolves for these arguments and environment, without starting a server. */
async function resolve(args: string[], env: Record<string, string> = {}): Promise<ServerConfig> {
  const saved = { ...process.env };
  for (const key of Object.keys(process.env)) if (key.startsWith(PREFIX)) delete process.env[key];
  Object.assign(process.env, env);
  let config: ServerConfig | undefined;
  serve.action((...args: unknown[]) => {
    config = resolveConfig(args[0] as string[], args[1] as never, args[2] as never);
  });
  // The CLI exits 1 on a bad configuration: here that fails the test instead of ending the run.
  const exit = process.exit;
  const stderr = process.stderr.write;
  let said = "";
  process.exit = ((code: number) => {
    throw new Error(`serve exited ${code}: ${said}`);
  }) as typeof process.exit;
  process.stderr.write = ((chunk: string) => ((said += chunk), true)) as typeof process.stderr.write;
  try {
    await program.parseAsync(["serve", "model-dir", ...args], { from: "user" });
  } finally {
    process.exit = exit;
    process.stderr.write = stderr;
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
  return config!;
}

/** The value of a dotted key of the configuration, Buffers as text. */
function read(config: ServerConfig, key: string): unknown {
  const value = key.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], config);
  return Buffer.isBuffer(value) ? value.toString() : value;
}

/** Options set in bulk: every one but --config, which is checked on its own. */
const settable = options.filter((o) => o.attributeName() !== "config");
/**
 * The settable options in rounds, no two of a round setting the same configuration
 * field (--auth-token and --auth-token-file both set the token).
 */
function rounds(): Option[][] {
  const byKey = new Map<string, Option[]>();
  for (const o of settable) byKey.set(sample(o).key, [...(byKey.get(sample(o).key) ?? []), o]);
  const out: Option[][] = [];
  for (const group of byKey.values()) group.forEach((o, i) => (out[i] ??= []).push(o));
  return out;
}

describe("mlflow-connect serve options", () => {
  it("has a MLFLOW_CONNECT_* environment twin for every flag", () => {
    assert.ok(options.length > 10, `${options.length} options found`);
    for (const option of options) assert.equal(option.envVar, envName(option), option.long);
  });

  it("takes every flag from its environment twin", async () => {
    for (const round of rounds()) {
      const env = Object.fromEntries(round.map((o) => [envName(o), sample(o).text[0]]));
      const config = await resolve([], env);
      for (const option of round) assert.deepEqual(read(config, sample(option).key), sample(option).expected[0], `${envName(option)} sets ${option.long}`);
    }
  });

  it("lets every flag beat its environment twin", async () => {
    for (const round of rounds()) {
      const env = Object.fromEntries(round.map((o) => [envName(o), sample(o).text[1]]));
      const config = await resolve(round.flatMap((o) => flag(o, sample(o), 0)), env);
      for (const option of round) assert.deepEqual(read(config, sample(option).key), sample(option).expected[0], `${option.long} over ${envName(option)}`);
    }
  });

  it("takes every setting from a --config file, and lets the environment beat the file", async () => {
    for (const option of settable) {
      const name = option.attributeName();
      if (NOT_IN_CONFIG_FILE[name]) continue;
      const s = sample(option);
      const set = [option, ...(s.companion ? [optionNamed(s.companion)] : [])];
      const path = file(`${name}.yaml`, stringify(Object.fromEntries(set.map((o) => [o.attributeName(), sample(o).yaml[0]]))));
      assert.deepEqual(read(await resolve(["--config", path]), s.key), s.expected[0], `${name} from the file`);
      const env = Object.fromEntries(set.map((o) => [envName(o), sample(o).text[1]]));
      assert.deepEqual(read(await resolve(["--config", path], env), s.key), s.expected[1], `${envName(option)} over the file`);
    }
    const path = file("from-env.yaml", stringify({ maxQueue: 5 }));
    assert.equal((await resolve([], { [envName(optionNamed("config"))]: path })).maxQueue, 5, "MLFLOW_CONNECT_CONFIG names the file");
  });

  it("documents every flag, its environment twin and its default in --help and every flag in the README", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [`${ROOT}bin/mlflow-connect.js`, "serve", "--help"]);
    const help = stdout.replace(/\s+/g, " "); // lines wrap anywhere between words
    const readme = readFileSync(`${ROOT}README.md`, "utf8");
    for (const option of options) {
      assert.ok(help.includes(option.flags), `${option.flags} in --help`);
      assert.ok(help.includes(`env: ${envName(option)}`), `${envName(option)} in --help`);
      if (option.defaultValue !== undefined) {
        const shown = option.defaultValueDescription ?? JSON.stringify(option.defaultValue);
        assert.ok(help.includes(`default: ${shown}`), `${option.long}'s default ${shown} in --help`);
      }
      assert.ok(readme.includes(`\`${option.long}`) || readme.includes(`${option.long}\``), `${option.long} in the README`);
    }
  });
});

function optionNamed(name: string): Option {
  return options.find((o) => o.attributeName() === name)!;
}
