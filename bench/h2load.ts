import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** Throughput and latency of one load run. */
export interface LoadResult {
  requests: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Responses that were not a success (HTTP status, or gRPC status where checked). */
  failed: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** One gRPC message in its length-prefixed frame (gRPC over HTTP/2). */
export function grpcFrame(message: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + message.length);
  new DataView(frame.buffer).setUint32(1, message.length);
  frame.set(message, 5);
  return frame;
}

/**
 * gRPC unary load with h2load (nghttp2): one connection, `streams` concurrent
 * streams, for `seconds`. Latencies come from h2load's per-request log.
 */
export async function h2loadGrpc(url: string, body: Uint8Array, streams: number, seconds: number): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), "h2load-"));
  writeFileSync(join(dir, "body"), body);
  const { stdout } = await exec(
    "h2load",
    [
      "-c", "1", "-m", String(streams), "-D", String(seconds), "--warm-up-time", "1",
      "-H", "content-type: application/grpc", "-H", "te: trailers",
      "-d", join(dir, "body"), "--log-file", join(dir, "log"), url,
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const reqPerSec = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(stdout)?.[1]);
  const summary = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  // The log also lists the streams still open when the duration ended (status 0): not failures.
  const lines = readFileSync(join(dir, "log"), "utf8").trim().split("\n").filter((l) => l.split("\t")[1] === "200");
  const latencies = lines.map((l) => Number(l.split("\t")[2]) / 1000).sort((a, b) => a - b);
  return {
    requests: Number(summary?.[2] ?? lines.length),
    reqPerSec,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    failed: Number(summary?.[4] ?? 0) + Number(summary?.[5] ?? 0) + Number(status?.[3] ?? 0) + Number(status?.[4] ?? 0),
  };
}
