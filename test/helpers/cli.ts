import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { ROOT } from "./server.js";

export const BIN = `${ROOT}bin/mlflow-connect.js`;

/** A `mlflow-connect serve` process, started as a user would start it. */
export interface CliServer {
  child: ChildProcess;
  /** The URL of the start-up line ("listening on ..."). */
  url: string;
  /** stdout's JSON log lines so far (more arrive while it runs). */
  lines: Array<Record<string, unknown>>;
  /** stderr so far. */
  stderr(): string;
  /** Sends a signal and resolves with the exit code and signal. */
  stop(signal?: NodeJS.Signals): Promise<[number | null, NodeJS.Signals | null]>;
}

/** Starts `serve` with these arguments and environment; resolves once it logs that it listens. */
export async function startCli(args: string[], env: Record<string, string> = {}): Promise<CliServer> {
  const child = spawn(process.execPath, [BIN, "serve", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  const lines: Array<Record<string, unknown>> = [];
  let err = "";
  child.stderr!.on("data", (chunk: Buffer) => (err += chunk));
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk;
      const parts = out.split("\n");
      out = parts.pop()!;
      for (const part of parts) {
        const line = JSON.parse(part) as Record<string, unknown>;
        lines.push(line);
        const match = /listening on (https?:\/\/[^ ]+) /.exec(String(line.msg));
        if (match) resolve(match[1]!);
      }
    });
    void exited.then(([code]) => reject(new Error(`serve exited ${code} before listening: ${err}`)));
  });
  return {
    child,
    url,
    lines,
    stderr: () => err,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
