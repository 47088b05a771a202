/**
 * `npm run bench`: this server against the limit (raw onnxruntime-node in-process)
 * and the peer (a boilerplate @grpc/grpc-js wrapper, as the original), measured in one
 * run on this machine. Prints a table, writes BENCHMARKS.md and bench/throughput.svg.
 * Needs h2load (Debian nghttp2-client) and, to make the MLP once, python3-onnx.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import autocannon from "autocannon";
import { InputSchema, MLflow } from "../gen/mlflow_pb.js";
import { PredictRequestSchema } from "../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType } from "../gen/mlflow/serving/v1/tensor_pb.js";
import { type LoadResult, grpcFrame, h2loadGrpc, percentile } from "./h2load.js";
import { rawRunsPerSecond } from "./limit.js";

const ROOT = new URL("../../", import.meta.url).pathname; // runs from dist/bench/
const IRIS = `${ROOT}models/iris`;
const MLP = `${ROOT}bench/models/mlp`;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const STREAMS = [1, 16, 64];
const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];
const MLP_ROW = Array.from({ length: 784 }, (_, i) => ((i * 37) % 255) / 255);

function requireTool(name: string): void {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`]);
  } catch {
    process.stderr.write(`bench: ${name} is missing (apt-get install -y nghttp2-client)\n`);
    process.exit(1);
  }
}

function ensureMlp(): void {
  if (existsSync(`${MLP}/model.onnx`)) return;
  process.stdout.write("making the 784-1024-1024-10 MLP (python3-onnx)...\n");
  execFileSync("/usr/bin/python3", [`${ROOT}scripts/make_models.py`, "--mlp", MLP], { stdio: "inherit" });
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${what} did not come up`);
}

const children: ChildProcess[] = [];
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));

function startProcess(args: string[]): ChildProcess {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"] });
  children.push(child);
  return child;
}

async function startServer(models: string[], port: number, ...flags: string[]): Promise<ChildProcess> {
  const child = startProcess([`${ROOT}bin/mlflow-connect.js`, "serve", ...models, "--port", String(port), "--log-level", "warn", ...flags]);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/ping`)).ok, `the server on ${port}`);
  return child;
}

async function startPeer(model: string, port: number, row: number[]): Promise<ChildProcess> {
  const child = startProcess([`${ROOT}dist/bench/peers/grpc-js-peer.js`, model, String(port)]);
  await waitFor(async () => Boolean(await predictSeed(port, [row])), `the peer on ${port}`);
  return child;
}

/** The probabilities a server or the peer answers (MLflow gives a lone output as a plain list). */
async function predictSeed(port: number, rows: number[][]): Promise<{ probabilities: number[]; label?: number }> {
  const client = createClient(MLflow, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const { predictions } = JSON.parse((await client.predict({ value: JSON.stringify({ inputs: rows }) })).value) as {
    predictions: unknown[] | Record<string, unknown[]>;
  };
  if (Array.isArray(predictions)) return { probabilities: predictions.flat(2) as number[] };
  return { probabilities: predictions.probabilities!.flat(2) as number[], label: predictions.label?.[0] as number };
}

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  return kb / 1024;
}

const seedBody = (row: number[]) => grpcFrame(toBinary(InputSchema, create(InputSchema, { value: JSON.stringify({ inputs: [row] }) })));
const typedBody = (model: string, row: number[]) =>
  grpcFrame(
    toBinary(
      PredictRequestSchema,
      create(PredictRequestSchema, {
        modelName: model,
        inputs: { input: { dtype: DataType.FLOAT32, shape: [1n, BigInt(row.length)], rawData: new Uint8Array(new Float32Array(row).buffer) } },
      }),
    ),
  );

interface Row {
  scenario: string;
  model: string;
  streams: number;
  result: LoadResult;
}

async function main(): Promise<void> {
  requireTool("h2load");
  ensureMlp();
  const rows: Row[] = [];
  const run = async (scenario: string, model: string, url: string, body: Uint8Array, streams: number) => {
    const result = await h2loadGrpc(url, body, streams, SECONDS);
    rows.push({ scenario, model, streams, result });
    process.stdout.write(`${scenario.padEnd(34)} ${model.padEnd(5)} x${String(streams).padEnd(3)} ${result.reqPerSec.toFixed(0).padStart(7)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms${result.failed ? `  ${result.failed} FAILED` : ""}\n`);
  };

  // The limit: raw onnxruntime, batch 1 and 32.
  const limit: Record<string, { b1: number; b32: number }> = {};
  for (const [name, path, row] of [["iris", IRIS, IRIS_ROW], ["mlp", MLP, MLP_ROW]] as const) {
    limit[name] = { b1: await rawRunsPerSecond(`${path}/model.onnx`, row, 1, 2), b32: await rawRunsPerSecond(`${path}/model.onnx`, row, 32, 2) };
    process.stdout.write(`limit ${name}: batch 1 ${limit[name]!.b1.toFixed(0)} runs/s, batch 32 ${(limit[name]!.b32 * 32).toFixed(0)} rows/s\n`);
  }

  // Cold start: process start to the first successful predict, and memory once warm.
  const cold: number[] = [];
  let rss = 0;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const child = startProcess([`${ROOT}bin/mlflow-connect.js`, "serve", IRIS, "--port", "50190", "--log-level", "warn"]);
    await waitFor(async () => (await predictSeed(50190, [IRIS_ROW])).label === 0, "cold start");
    cold.push(performance.now() - started);
    for (let k = 0; k < 200; k++) await predictSeed(50190, [IRIS_ROW]);
    rss = Math.max(rss, rssMb(child.pid!));
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }

  const server = await startServer([IRIS, `mlp=${MLP}`], 50191);
  const serverMlp = await startServer([`mlp=${MLP}`], 50192);
  const serverFull = await startServer([IRIS, `mlp=${MLP}`], 50195, "--no-fast-path");
  const peerIris = await startPeer(IRIS, 50193, IRIS_ROW);
  const peerMlp = await startPeer(MLP, 50194, MLP_ROW);

  // Correct answers first: the server and the peer agree, and iris says setosa.
  assertClose((await predictSeed(50191, [IRIS_ROW])).probabilities, (await predictSeed(50193, [IRIS_ROW])).probabilities);
  assertClose((await predictSeed(50192, [MLP_ROW])).probabilities, (await predictSeed(50194, [MLP_ROW])).probabilities);

  for (const streams of [1, 64]) {
    await run("mlflow-connect, no lean path: MLflow/predict, JSON", "iris", "http://127.0.0.1:50195/MLflow/predict", seedBody(IRIS_ROW), streams);
    await run("mlflow-connect, no lean path: typed Predict, raw", "mlp", "http://127.0.0.1:50195/mlflow.serving.v1.ModelService/Predict", typedBody("mlp", MLP_ROW), streams);
  }
  for (const streams of STREAMS) {
    await run("peer: grpc-js wrapper, JSON", "iris", "http://127.0.0.1:50193/MLflow/predict", seedBody(IRIS_ROW), streams);
    await run("mlflow-connect: MLflow/predict, JSON", "iris", "http://127.0.0.1:50191/MLflow/predict", seedBody(IRIS_ROW), streams);
    await run("mlflow-connect: typed Predict, raw", "iris", "http://127.0.0.1:50191/mlflow.serving.v1.ModelService/Predict", typedBody("iris", IRIS_ROW), streams);
  }
  for (const streams of STREAMS) {
    await run("peer: grpc-js wrapper, JSON", "mlp", "http://127.0.0.1:50194/MLflow/predict", seedBody(MLP_ROW), streams);
    await run("mlflow-connect: MLflow/predict, JSON", "mlp", "http://127.0.0.1:50192/MLflow/predict", seedBody(MLP_ROW), streams);
    await run("mlflow-connect: typed Predict, raw", "mlp", "http://127.0.0.1:50191/mlflow.serving.v1.ModelService/Predict", typedBody("mlp", MLP_ROW), streams);
  }

  // Connect JSON over HTTP/1.1 (curl-like clients) with autocannon.
  const connectRuns = [["mlflow-connect, no lean path: Connect JSON, HTTP/1.1", "iris", 50195, IRIS_ROW], ["mlflow-connect: Connect JSON, HTTP/1.1", "iris", 50191, IRIS_ROW], ["mlflow-connect: Connect JSON, HTTP/1.1", "mlp", 50192, MLP_ROW]] as const;
  for (const [scenario, model, port, row] of connectRuns) {
    const result = await autocannon({
      url: `http://127.0.0.1:${port}/MLflow/predict`,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ value: JSON.stringify({ inputs: [row] }) }),
      connections: 16,
      duration: SECONDS,
    });
    const failed = result.non2xx + result.errors;
    const r: LoadResult = { requests: result.requests.total, reqPerSec: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99, failed };
    rows.push({ scenario, model, streams: 16, result: r });
    process.stdout.write(`${scenario} ${model} x16 ${r.reqPerSec.toFixed(0)} req/s p50 ${r.p50Ms} ms p99 ${r.p99Ms} ms\n`);
  }

  // /ping while the MLP is saturated by 64 streams.
  const pings: number[] = [];
  const saturate = h2loadGrpc("http://127.0.0.1:50191/mlflow.serving.v1.ModelService/Predict", typedBody("mlp", MLP_ROW), 64, SECONDS + 1);
  const until = Date.now() + SECONDS * 1000;
  await new Promise((r) => setTimeout(r, 1000));
  while (Date.now() < until) {
    const t0 = performance.now();
    const res = await fetch("http://127.0.0.1:50191/ping");
    await res.text();
    pings.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 10));
  }
  await saturate;
  const pingP99 = percentile(pings.sort((a, b) => a - b), 99);

  for (const c of [server, serverMlp, serverFull, peerIris, peerMlp]) c.kill("SIGTERM");
  writeReport(rows, limit, { coldMs: percentile(cold.sort((a, b) => a - b), 50), rssMb: rss, pingP99 });
}

function assertClose(a: number[], b: number[]): void {
  if (a.length !== b.length || a.some((v, i) => Math.abs(v - b[i]!) > 1e-5)) throw new Error(`server and peer disagree: ${a} vs ${b}`);
}

function writeReport(rows: Row[], limit: Record<string, { b1: number; b32: number }>, extra: { coldMs: number; rssMb: number; pingP99: number }): void {
  const find = (scenario: string, model: string, streams: number) => rows.find((r) => r.scenario.startsWith(scenario) && r.model === model && r.streams === streams)?.result;
  const lines = [
    "| scenario | model | streams | req/s (= rows/s) | p50 ms | p99 ms | failed | rows/s vs limit (batch 32) | req/s vs peer |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const peer = find("peer", r.model, r.streams);
    const vsLimit = r.result.reqPerSec / (limit[r.model]!.b32 * 32);
    lines.push(
      `| ${r.scenario} | ${r.model} | ${r.streams} | ${r.result.reqPerSec.toFixed(0)} | ${r.result.p50Ms.toFixed(2)} | ${r.result.p99Ms.toFixed(2)} | ${r.result.failed} | ${(vsLimit * 100).toFixed(1)}% | ${peer && !r.scenario.startsWith("peer") ? `${(r.result.reqPerSec / peer.reqPerSec).toFixed(2)}x` : ""} |`,
    );
  }
  const best = (model: string, streams: number) =>
    Math.max(...rows.filter((r) => r.scenario.startsWith("mlflow-connect:") && r.model === model && r.streams === streams).map((r) => r.result.reqPerSec));
  const peerIris64 = find("peer", "iris", 64)!;
  const seedIris64 = find("mlflow-connect: MLflow/predict", "iris", 64)!;
  const mlp64 = best("mlp", 64);
  const c1 = find("mlflow-connect: typed Predict", "mlp", 1)!;
  const targets = [
    `| tiny model gRPC unary vs peer (MLflow/predict, 64 streams) | >= 2x req/s, p99 no worse | ${(seedIris64.reqPerSec / peerIris64.reqPerSec).toFixed(2)}x, p99 ${seedIris64.p99Ms.toFixed(2)} vs ${peerIris64.p99Ms.toFixed(2)} ms |`,
    `| MLP at 64 streams vs raw batch-32 rows/s | >= 70% | ${((mlp64 / (limit.mlp!.b32 * 32)) * 100).toFixed(1)}% |`,
    `| MLP at 64 streams vs peer | >= 4x | ${(mlp64 / find("peer", "mlp", 64)!.reqPerSec).toFixed(2)}x |`,
    `| concurrency 1 p50 minus raw batch-1 time (MLP, typed) | <= 0.25 ms | ${(c1.p50Ms - 1000 / limit.mlp!.b1).toFixed(2)} ms |`,
    `| /ping p99 while the MLP is saturated | < 5 ms | ${extra.pingP99.toFixed(2)} ms |`,
    `| cold start to first predict (iris) | <= 300 ms | ${extra.coldMs.toFixed(0)} ms |`,
    `| RSS after warm-up (iris) | <= 150 MB | ${extra.rssMb.toFixed(0)} MB |`,
  ];
  const machine = `${cpus()[0]?.model ?? "unknown CPU"}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, onnxruntime-node ${JSON.parse(readFileSync(`${ROOT}node_modules/onnxruntime-node/package.json`, "utf8")).version}`;
  const report = [
    "# Benchmarks",
    "",
    `Measured by \`npm run bench\` in one run on ${new Date().toISOString().slice(0, 10)}: ${machine}.`,
    `Each load ran ${SECONDS} s after 1 s of warm-up; gRPC with h2load (one connection, N concurrent streams), Connect JSON with autocannon (16 connections; it reports latency in whole milliseconds).`,
    "The failed column counts requests h2load reports failed or errored and 4xx/5xx answers (h2load cannot read grpc-status trailers, so before the runs the server and the peer must give the same predictions, and the functional tests check statuses).",
    "The server runs 2 workers (one per core) with dynamic batching (max 32 rows, 1 ms delay only while busy); gRPC and Connect unary calls take the lean path unless the row says \"no lean path\" (--no-fast-path).",
    "",
    `Limit (raw onnxruntime-node in-process, ${availableParallelism()} intra-op threads): iris ${limit.iris!.b1.toFixed(0)} runs/s at batch 1, ${(limit.iris!.b32 * 32).toFixed(0)} rows/s at batch 32; MLP ${limit.mlp!.b1.toFixed(0)} runs/s at batch 1, ${(limit.mlp!.b32 * 32).toFixed(0)} rows/s at batch 32.`,
    "",
    ...lines,
    "",
    "## Targets",
    "",
    "| target | wanted | measured |",
    "|---|---|---|",
    ...targets,
    "",
    "![Throughput vs concurrent streams, MLP](bench/throughput.svg)",
    "",
  ].join("\n");
  writeFileSync(`${ROOT}BENCHMARKS.md`, report);
  writeFileSync(`${ROOT}bench/throughput.svg`, chart(rows, limit));
  process.stdout.write(`\n${report}\n`);
}

/** Throughput (rows/s) vs concurrent streams for the MLP: server, peer, and the limit as lines. */
function chart(rows: Row[], limit: Record<string, { b1: number; b32: number }>): string {
  const W = 640, H = 360, L = 70, B = 40, T = 20, R = 180;
  const series = [
    { name: "mlflow-connect typed", color: "#2f6bf0", scenario: "mlflow-connect: typed" },
    { name: "mlflow-connect JSON", color: "#7aa2f7", scenario: "mlflow-connect: MLflow/predict" },
    { name: "peer (grpc-js)", color: "#d33", scenario: "peer" },
  ];
  const max = Math.max(limit.mlp!.b32 * 32, ...rows.filter((r) => r.model === "mlp").map((r) => r.result.reqPerSec)) * 1.1;
  const x = (i: number) => L + (i / (STREAMS.length - 1)) * (W - L - R);
  const y = (v: number) => H - B - (v / max) * (H - B - T);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  parts.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>`);
  STREAMS.forEach((s, i) => parts.push(`<text x="${x(i)}" y="${H - B + 16}" text-anchor="middle">${s}</text>`));
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">concurrent streams</text>`);
  for (let k = 0; k <= 4; k++) parts.push(`<text x="${L - 6}" y="${y((max / 4) * k) + 4}" text-anchor="end">${((max / 4) * k).toFixed(0)}</text>`);
  parts.push(`<text x="14" y="${T + 10}" transform="rotate(-90 14 ${T + 10})" text-anchor="end">MLP rows/s</text>`);
  for (const [label, value, dash] of [["limit, batch 32", limit.mlp!.b32 * 32, "6 4"], ["limit, batch 1", limit.mlp!.b1, "2 4"]] as const) {
    parts.push(`<line x1="${L}" y1="${y(value)}" x2="${W - R}" y2="${y(value)}" stroke="#555" stroke-dasharray="${dash}"/><text x="${W - R + 6}" y="${y(value) + 4}">${label}</text>`);
  }
  series.forEach((s, k) => {
    const points = STREAMS.map((n, i) => [x(i), y(rows.find((r) => r.scenario.startsWith(s.scenario) && r.model === "mlp" && r.streams === n)?.result.reqPerSec ?? 0)]);
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${points.map((p) => p.join(",")).join(" ")}"/>`);
    points.forEach(([px, py]) => parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${s.color}"/>`));
    parts.push(`<text x="${W - R + 6}" y="${T + 130 + k * 16}" fill="${s.color}">${s.name}</text>`); // clear of the limit labels
  });
  parts.push("</svg>");
  return parts.join("\n");
}

await main();
process.exit(0);
