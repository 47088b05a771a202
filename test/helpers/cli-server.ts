import { type ChildProcess, spawn } from "node:child_process";
import { ROOT } from "./server.js";

export const BIN = `${ROOT}bin/mlflow-connect.js`;

/** A `mlflow-connect serve` child process, listening, whose JSON log lines are collected. */
export interface CliServer {
  child: ChildProcess;
  url: string;
  port: number;
  /** Every log line so far, parsed. */
  lines: Array<Record<string, unknown>>;
  /** Resolves with the exit code and signal, and how long after `since` (performance.now()) it came. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Sends SIGTERM; resolves with performance.now() at that moment. */
  term(): number;
  /** The access-log lines of calls to `method` (e.g. "mlflow.serving.v1.ModelService/Predict"), by code. */
  callCodes(method: string): Record<string, number>;
}

/** Starts the real CLI on a free port; rejects when it exits before listening. */
export async function startCliServer(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliServer> {
  const child = spawn(process.execPath, [BIN, "serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  const lines: Array<Record<string, unknown>> = [];
  let rest = "";
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const part of parts) {
        const line = JSON.parse(part) as Record<string, unknown>;
        lines.push(line);
        const url = /listening on (https?:\/\/127\.0\.0\.1:\d+)/.exec(String(line.msg))?.[1];
        if (url) resolve(url);
      }
    });
    void exited.then(({ code }) => reject(new Error(`the server exited (${code}) before listening: ${stderr}`)));
  });
  const url = await listening;
  return {
    child,
    url,
    port: Number(new URL(url).port),
    lines,
    exited,
    term() {
      const at = performance.now();
      child.kill("SIGTERM");
      return at;
    },
    callCodes(method) {
      const codes: Record<string, number> = {};
      for (const line of lines) if (line.msg === "call" && line.method === method) codes[String(line.code)] = (codes[String(line.code)] ?? 0) + 1;
      return codes;
    },
  };
}

/** Resolves once `check` returns true, polling every 10 ms; rejects after timeoutMs. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The value of a gauge or counter sample in the server's /metrics, e.g. ("mlflow_connect_queue_depth", 'model="slow"'). */
export async function metric(url: string, name: string, labels: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}
