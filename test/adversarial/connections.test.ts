import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import tls from "node:tls";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { MLflow } from "../../gen/mlflow_pb.js";
import { reference } from "../helpers/reference.js";
import {
  CANCEL,
  DATA,
  GOAWAY,
  HEADERS,
  NO_ERROR,
  PREFACE,
  REFUSED_STREAM,
  RST_STREAM,
  RawH2,
  SETTINGS,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_HEADER_LIST_SIZE,
  END_STREAM,
  errorCode,
  frame,
  headersFrame,
  rstStreamFrame,
  settingsOf,
} from "../helpers/raw-h2.js";
import { GREETER, ROOT, startServer } from "../helpers/server.js";
import { commandExists, toolSkip } from "../helpers/tools.js";

/**
 * An attacker's view of the listener: raw frames and sockets against the real server
 * (the CLI, so the flags, their environment twins and config-file keys are the ones
 * users set), with small limits so that every bound is reached in well under a second.
 */
const TOKEN = "t0ken";
const LIMITS = {
  maxConcurrentStreams: 10,
  maxOpenStreams: 60, // set through MLFLOW_CONNECT_MAX_OPEN_STREAMS
  maxHealthWatchStreams: 20, // set through the config file
  maxHeaderBytes: 4096,
  prefaceTimeoutMs: 1000,
  headersTimeoutMs: 1000,
  requestTimeoutMs: 1500,
};
/** How far past a deadline the server may close (node:http checks its timeouts every headersTimeout/4; the machine may be busy). */
const SLACK_MS = 3000;

const BIN = `${ROOT}bin/mlflow-connect.js`;
const greeterBody = (() => {
  // MLflow.predict's Input{value = "HELLO WORLD"} in a gRPC envelope.
  const value = Buffer.from(reference.greeter.texts[0]!);
  return Buffer.concat([Buffer.from([0, 0, 0, 0, value.length + 2, 0x0a, value.length]), value]);
})();
const EMPTY_MESSAGE = Buffer.from([0, 0, 0, 0, 0]);

function grpcRequest(path: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ":method": "POST", ":scheme": "http", ":path": path, ":authority": "127.0.0.1", "content-type": "application/grpc", te: "trailers", ...extra };
}

/** The server process's resident set, in MB (what an operator's dashboard shows). */
function rssMb(child: ChildProcess): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))![1]) / 1024;
}

/**
 * A node:http2 session that has the server's SETTINGS: until then node:http2 assumes 100
 * concurrent streams, and the server refuses those beyond its own limit (REFUSED_STREAM,
 * which gRPC clients retry).
 */
async function connect(url: string): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(url);
  session.on("error", () => undefined);
  await once(session, "remoteSettings");
  return session;
}

/** A gRPC call over a node:http2 session: resolves with the first sign of an answer (a message, or a status). */
function grpcCall(session: http2.ClientHttp2Session, path: string, body: Buffer, end = true): Promise<{ status?: string; message?: boolean; rstCode?: number; stream: http2.ClientHttp2Stream }> {
  return new Promise((resolve) => {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" }, { endStream: false });
    stream.on("error", () => undefined);
    stream.once("response", (headers) => {
      if (headers["grpc-status"] !== undefined) resolve({ status: String(headers["grpc-status"]), stream });
    });
    stream.once("trailers", (trailers) => resolve({ status: String(trailers["grpc-status"]), stream }));
    stream.once("data", () => resolve({ message: true, stream }));
    stream.once("close", () => resolve({ rstCode: stream.rstCode, stream }));
    if (end) stream.end(body);
    else stream.write(body);
  });
}

describe("the listener under attack: connection and stream limits", () => {
  let child: ChildProcess;
  let url: string;
  let port: number;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "limits-"));
    writeFileSync(join(dir, "server.yaml"), `maxHealthWatchStreams: ${LIMITS.maxHealthWatchStreams}\n`);
    child = spawn(
      process.execPath,
      [
        BIN, "serve", GREETER, "--port", "0", "--workers", "1", "--auth-token", TOKEN, "--config", join(dir, "server.yaml"),
        "--max-concurrent-streams", String(LIMITS.maxConcurrentStreams),
        "--max-header-bytes", String(LIMITS.maxHeaderBytes),
        "--preface-timeout-ms", String(LIMITS.prefaceTimeoutMs),
        "--headers-timeout-ms", String(LIMITS.headersTimeoutMs),
        "--request-timeout-ms", String(LIMITS.requestTimeoutMs),
      ],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, MLFLOW_CONNECT_MAX_OPEN_STREAMS: String(LIMITS.maxOpenStreams) } },
    );
    let out = "";
    for await (const chunk of child.stdout!) {
      out += chunk;
      if (out.includes("\n")) break;
    }
    child.stdout!.resume();
    url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
    port = Number(new URL(url).port);
  });

  after(async () => {
    child.kill("SIGKILL");
    await once(child, "exit");
  });

  /** The server still serves: /ping within a second, and a gRPC predict with the token. */
  async function stillServes(): Promise<void> {
    const started = performance.now();
    const ping = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) });
    assert.equal(ping.status, 200);
    await ping.arrayBuffer();
    assert.ok(performance.now() - started < 1000, "/ping within a second");
    const client = createClient(MLflow, createGrpcTransport({ baseUrl: url }));
    const out = await client.predict({ value: reference.greeter.texts[0]! }, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(5000) });
    assert.equal(out.value, reference.greeter.labels[0]);
  }

  it("advertises its stream and header limits in SETTINGS", async () => {
    const h2 = await RawH2.open(port);
    const settings = settingsOf(h2.frames.find((f) => f.type === SETTINGS)!);
    assert.equal(settings.get(SETTINGS_MAX_CONCURRENT_STREAMS), LIMITS.maxConcurrentStreams);
    assert.equal(settings.get(SETTINGS_MAX_HEADER_LIST_SIZE), LIMITS.maxHeaderBytes);
    h2.destroy();
  });

  it("refuses streams beyond --max-concurrent-streams with REFUSED_STREAM, and ends a connection that ignores acknowledged SETTINGS", async () => {
    // Streams that never end their body (open Health/Check calls wait for it).
    const opened = (h2: RawH2, count: number) => {
      for (let i = 0; i < count; i++) h2.send(headersFrame(1 + 2 * i, grpcRequest("/grpc.health.v1.Health/Check"), false));
    };
    // Before the client acknowledged the SETTINGS: each extra stream is refused, the connection stays.
    const early = await RawH2.open(port, { ack: false });
    opened(early, LIMITS.maxConcurrentStreams + 5);
    const refused = () => early.frames.filter((f) => f.type === RST_STREAM && errorCode(f) === REFUSED_STREAM);
    await early.until(() => refused().length === 5, "five REFUSED_STREAM");
    assert.deepEqual(refused().map((f) => f.streamId), [21, 23, 25, 27, 29]);
    // After: nghttp2 treats it as a connection error (RFC 9113 5.1.2 allows either).
    const late = await RawH2.open(port);
    opened(late, LIMITS.maxConcurrentStreams + 1);
    await late.closed;
    assert.ok(late.frames.some((f) => f.type === GOAWAY), "GOAWAY before the close");
    early.destroy();
    await early.closed;
    await stillServes();
  });

  it("refuses streams beyond --max-open-streams over all connections with REFUSED_STREAM", async () => {
    const connections = await Promise.all(Array.from({ length: 7 }, () => RawH2.open(port)));
    for (const h2 of connections) {
      for (let i = 0; i < LIMITS.maxConcurrentStreams; i++) h2.send(headersFrame(1 + 2 * i, grpcRequest("/grpc.health.v1.Health/Check"), false));
    }
    const refused = () => connections.flatMap((h2) => h2.frames.filter((f) => f.type === RST_STREAM && errorCode(f) === REFUSED_STREAM));
    const total = connections.length * LIMITS.maxConcurrentStreams;
    await Promise.race(connections.map((h2) => h2.until(() => refused().length >= total - LIMITS.maxOpenStreams, "the refusals")));
    assert.equal(refused().length, total - LIMITS.maxOpenStreams);
    for (const h2 of connections) h2.destroy();
    await Promise.all(connections.map((h2) => h2.closed));
    await stillServes();
  });

  it("answers Health/Watch beyond --max-health-watch-streams with RESOURCE_EXHAUSTED; a flood keeps the server's memory flat", async (t) => {
    const rssBefore = rssMb(child);
    const [holders, flooders] = await Promise.all([Promise.all([connect(url), connect(url)]), Promise.all([connect(url), connect(url), connect(url)])]);
    // The cap's worth of watchers (two connections: ten streams each at most).
    const held = await Promise.all(
      Array.from({ length: LIMITS.maxHealthWatchStreams }, (_, i) => grpcCall(holders[i % 2]!, "/grpc.health.v1.Health/Watch", EMPTY_MESSAGE)),
    );
    assert.ok(held.every((r) => r.message), "the first watchers get their status");
    // 1000 more from three connections (the client queues them ten at a time on each): refused, not held.
    let started = performance.now();
    const flood = await Promise.all(Array.from({ length: 1000 }, (_, i) => grpcCall(flooders[i % 3]!, "/grpc.health.v1.Health/Watch", EMPTY_MESSAGE)));
    t.diagnostic(`1000 watchers refused in ${(performance.now() - started).toFixed(0)} ms`);
    const outcomes = new Map<string, number>();
    for (const r of flood) {
      const outcome = r.status !== undefined ? `grpc-status ${r.status}` : r.message ? "a status message" : `reset ${r.rstCode}`;
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    assert.deepEqual([...outcomes], [["grpc-status 8", 1000]], "RESOURCE_EXHAUSTED for each");
    const grown = rssMb(child) - rssBefore;
    t.diagnostic(`server RSS ${rssBefore.toFixed(0)} -> ${(rssBefore + grown).toFixed(0)} MB`);
    assert.ok(grown < 100, `server RSS grew ${grown.toFixed(0)} MB for 1000 refused watchers`);
    // A watcher that leaves frees its slot (the stream's end reaches the service).
    started = performance.now();
    holders[0]!.destroy();
    let again: Awaited<ReturnType<typeof grpcCall>> | undefined;
    let attempts = 0;
    while (attempts++ < 100 && !again?.message) again = await grpcCall(flooders[0]!, "/grpc.health.v1.Health/Watch", EMPTY_MESSAGE);
    assert.equal(again?.message, true, "a new watcher gets in once others left");
    t.diagnostic(`a slot freed after ${attempts} attempts, ${(performance.now() - started).toFixed(0)} ms`);
    for (const session of [...flooders, ...holders]) session.destroy();
    await stillServes();
  });

  it("resets a stream answered early (no token, too large) once the answer is out, so a client that never ends its body holds nothing", async () => {
    const h2 = await RawH2.open(port);
    const oversized = Buffer.from([0, 0x7f, 0xff, 0xff, 0xff]); // announces 2 GiB, sends none of it
    const cases: Array<[string, Record<string, string>, Buffer]> = [
      ["gRPC without a token", grpcRequest("/MLflow/predict"), greeterBody.subarray(0, 8)],
      ["Connect without a token", { ...grpcRequest("/MLflow/predict"), "content-type": "application/json" }, Buffer.from('{"val')],
      ["gRPC-Web without a token", { ...grpcRequest("/MLflow/predict"), "content-type": "application/grpc-web+proto" }, greeterBody.subarray(0, 8)],
      ["gRPC over the size limit (lean path)", grpcRequest("/MLflow/predict", { authorization: `Bearer ${TOKEN}` }), oversized],
      ["gRPC over the size limit (connect-es)", grpcRequest("/mlflow.serving.v1.ModelService/PredictStream", { authorization: `Bearer ${TOKEN}` }), oversized],
    ];
    cases.forEach(([, headers, body], i) => h2.send(headersFrame(1 + 2 * i, headers, false), frame(DATA, 0, 1 + 2 * i, body)));
    for (const [what, , ,] of cases) {
      const id = 1 + 2 * cases.findIndex((c) => c[0] === what);
      await h2.until(() => h2.stream(id).some((f) => f.type === RST_STREAM), `the reset of "${what}"`);
      const frames = h2.stream(id);
      const rst = frames.findIndex((f) => f.type === RST_STREAM);
      assert.equal(errorCode(frames[rst]!), NO_ERROR, what);
      assert.ok(frames.slice(0, rst).some((f) => f.flags & END_STREAM), `${what}: the whole answer (END_STREAM) before the reset`);
    }
    h2.destroy();
  });

  it("a flood of unauthenticated streams that never end their body: each answered UNAUTHENTICATED and reset, memory flat", async (t) => {
    const rssBefore = rssMb(child);
    const sessions = await Promise.all(Array.from({ length: 5 }, () => connect(url)));
    const answers = await Promise.all(Array.from({ length: 4000 }, (_, i) => grpcCall(sessions[i % 5]!, "/MLflow/predict", greeterBody.subarray(0, 8), false)));
    const outcomes = new Map<string, number>();
    for (const r of answers) {
      const outcome = r.status !== undefined ? `grpc-status ${r.status}` : r.message ? "a message" : `reset ${r.rstCode}`;
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    assert.deepEqual([...outcomes], [["grpc-status 16", 4000]], "UNAUTHENTICATED for each");
    // The reset closes the client's stream too: nothing is left open on either side.
    await Promise.all(answers.map((a) => (a.stream.closed ? undefined : once(a.stream, "close"))));
    assert.ok(answers.every((a) => a.stream.rstCode === NO_ERROR));
    const grown = rssMb(child) - rssBefore;
    t.diagnostic(`server RSS ${rssBefore.toFixed(0)} -> ${(rssBefore + grown).toFixed(0)} MB`);
    assert.ok(grown < 100, `server RSS grew ${grown.toFixed(0)} MB for 4000 streams`);
    for (const session of sessions) session.destroy();
    await stillServes();
  });

  it("bounds a rapid-reset loop (HEADERS then RST_STREAM, CVE-2023-44487): GOAWAY, memory flat", async (t) => {
    const rssBefore = rssMb(child);
    const h2 = await RawH2.open(port);
    const frames: Buffer[] = [];
    for (let i = 0; i < 5000; i++) {
      const id = 1 + 2 * i;
      frames.push(headersFrame(id, { ":method": "GET", ":scheme": "http", ":path": "/ping", ":authority": "127.0.0.1" }, true), rstStreamFrame(id, CANCEL));
    }
    h2.socket.write(Buffer.concat(frames));
    await h2.until(() => h2.frames.some((f) => f.type === GOAWAY), "a GOAWAY");
    // nghttp2's reset rate limit (a burst of 1000, then 33 a second) ended the session.
    const answered = h2.frames.filter((f) => f.type === HEADERS).length;
    assert.ok(answered < 2000, `${answered} of 5000 streams reached a handler`);
    t.diagnostic(`${answered} of 5000 streams answered before the GOAWAY`);
    const grown = rssMb(child) - rssBefore;
    t.diagnostic(`server RSS ${rssBefore.toFixed(0)} -> ${(rssBefore + grown).toFixed(0)} MB`);
    assert.ok(grown < 100, `server RSS grew ${grown.toFixed(0)} MB`);
    h2.destroy();
    await stillServes();
  });

  it("resets an HTTP/2 stream whose request has not ended --request-timeout-ms after its HEADERS (CANCEL)", async () => {
    const h2 = await RawH2.open(port);
    const started = performance.now();
    // An open route, answered once its body ends; the body never does.
    h2.send(headersFrame(1, grpcRequest("/grpc.health.v1.Health/Check"), false), frame(DATA, 0, 1, EMPTY_MESSAGE.subarray(0, 3)));
    h2.send(headersFrame(3, grpcRequest("/grpc.health.v1.Health/Watch"), false));
    await h2.until(() => [1, 3].every((id) => h2.stream(id).some((f) => f.type === RST_STREAM)), "two resets");
    const ms = performance.now() - started;
    assert.deepEqual([1, 3].map((id) => errorCode(h2.stream(id).find((f) => f.type === RST_STREAM)!)), [CANCEL, CANCEL]);
    assert.ok(ms >= LIMITS.requestTimeoutMs - 50 && ms < LIMITS.requestTimeoutMs + SLACK_MS, `reset after ${ms.toFixed(0)} ms`);
    h2.destroy();
  });

  /**
   * Sends `prefix`, then one byte of `bytes` at each tick of the attacker's clock, until
   * the server closes the socket; resolves with how long it stayed open, the bytes of
   * `bytes` it took, and its answer.
   */
  async function dribble(prefix: Buffer, bytes: Buffer, everyMs: number): Promise<{ ms: number; sent: number; answer: string }> {
    const socket = net.connect(port, "127.0.0.1");
    await once(socket, "connect");
    const started = performance.now();
    socket.write(prefix);
    let sent = 0;
    let answer = "";
    socket.on("data", (chunk: Buffer) => (answer += chunk.toString("latin1")));
    socket.on("error", () => undefined);
    const tick = setInterval(() => sent < bytes.length && socket.write(bytes.subarray(sent, ++sent)), everyMs);
    const fuse = setTimeout(() => socket.destroy(), 10_000); // the test's own bound
    await once(socket, "close");
    clearInterval(tick);
    clearTimeout(fuse);
    return { ms: performance.now() - started, sent, answer };
  }

  it("closes a socket that dribbles the HTTP/2 preface at the absolute --preface-timeout-ms deadline", async () => {
    const { ms, sent } = await dribble(Buffer.alloc(0), PREFACE, 100);
    assert.ok(sent < PREFACE.length, `${sent} bytes of the preface`);
    assert.ok(ms >= LIMITS.prefaceTimeoutMs - 50 && ms < LIMITS.prefaceTimeoutMs + SLACK_MS, `closed after ${ms.toFixed(0)} ms`);
  });

  it("closes a socket that sends nothing, or the preface and then its SETTINGS a byte at a time, at the same deadline", async () => {
    const silent = dribble(Buffer.alloc(0), Buffer.alloc(0), 100);
    const settings = frame(SETTINGS, 0, 0, Buffer.from([0, SETTINGS_MAX_CONCURRENT_STREAMS, 0, 0, 0, 100]));
    const { ms, sent } = await dribble(PREFACE, settings, 150);
    assert.ok(sent < settings.length, `${sent} bytes of the SETTINGS frame`);
    assert.ok(ms >= LIMITS.prefaceTimeoutMs - 50 && ms < LIMITS.prefaceTimeoutMs + SLACK_MS, `SETTINGS dribbler closed after ${ms.toFixed(0)} ms`);
    const quiet = await silent;
    assert.ok(quiet.ms >= LIMITS.prefaceTimeoutMs - 50 && quiet.ms < LIMITS.prefaceTimeoutMs + SLACK_MS, `silent socket closed after ${quiet.ms.toFixed(0)} ms`);
  });

  it("answers 408 and closes an HTTP/1.1 request whose headers, or whose body, come a byte at a time", async () => {
    const headers = dribble(Buffer.alloc(0), Buffer.from(`GET /ping HTTP/1.1\r\nhost: 127.0.0.1\r\nx-pad: ${"a".repeat(100)}\r\n\r\n`), 100);
    const requestHead = `POST /invocations HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n`;
    const body = dribble(Buffer.from(requestHead), Buffer.from(`{"inputs": ["${"a".repeat(200)}`), 20);
    const [h, b] = await Promise.all([headers, body]);
    assert.match(h.answer, /^HTTP\/1\.1 408 /);
    assert.ok(h.ms >= LIMITS.headersTimeoutMs - 50 && h.ms < LIMITS.headersTimeoutMs + SLACK_MS, `headers dribbler closed after ${h.ms.toFixed(0)} ms`);
    assert.match(b.answer, /^HTTP\/1\.1 408 /);
    assert.ok(b.ms >= LIMITS.requestTimeoutMs - 50 && b.ms < LIMITS.requestTimeoutMs + SLACK_MS, `body dribbler closed after ${b.ms.toFixed(0)} ms`);
    await stillServes();
  });

  it("refuses request headers over --max-header-bytes: RST_STREAM on HTTP/2, 431 on HTTP/1.1", async () => {
    const big = "a".repeat(LIMITS.maxHeaderBytes);
    const h2 = await RawH2.open(port);
    h2.send(headersFrame(1, { ":method": "GET", ":scheme": "http", ":path": "/ping", ":authority": "127.0.0.1", "x-big": big }, true));
    await h2.until(() => h2.stream(1).some((f) => f.type === RST_STREAM), "a reset");
    assert.ok(!h2.stream(1).some((f) => f.type === HEADERS), "no answer");
    h2.destroy();
    const res = await fetch(`${url}/ping`, { headers: { "x-big": big } });
    assert.equal(res.status, 431);
    await stillServes();
  });
});

describe("the listener under attack: requests for no route", () => {
  it("answers 404 at once, without waiting for a body that never ends, and resets the HTTP/2 stream", async () => {
    const server = await startServer([GREETER]);
    try {
      const h2 = await RawH2.open(server.port);
      h2.send(headersFrame(1, { ":method": "POST", ":scheme": "http", ":path": "/nowhere", ":authority": "127.0.0.1", "content-type": "application/json" }, false), frame(DATA, 0, 1, Buffer.from("{")));
      await h2.until(() => h2.stream(1).some((f) => f.type === RST_STREAM), "the reset");
      const frames = h2.stream(1);
      assert.equal(errorCode(frames.at(-1)!), NO_ERROR);
      assert.ok(frames.some((f) => f.type === HEADERS), "an answer before the reset");
      h2.destroy();
      const socket = net.connect(server.port, "127.0.0.1");
      socket.write("POST /nowhere HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{");
      const [chunk] = (await once(socket, "data")) as [Buffer];
      assert.match(chunk.toString(), /^HTTP\/1\.1 404 /);
      socket.destroy();
    } finally {
      await server.close();
    }
  });
});

/** One GET /ping on a new connection: its status line, or "" if the server closed the connection without one. */
async function pingOnce(port: number): Promise<string> {
  const socket = net.connect(port, "127.0.0.1");
  let got = "";
  socket.on("data", (chunk: Buffer) => (got += chunk));
  socket.on("error", () => undefined);
  socket.write("GET /ping HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
  await once(socket, "close");
  return got.split("\r\n")[0]!;
}

describe("the listener under attack: --max-connections", () => {
  it("closes connections beyond the limit as they are accepted, and takes new ones once others left", async () => {
    const server = await startServer([GREETER], { maxConnections: 4 });
    try {
      const sockets: net.Socket[] = [];
      const answers: string[] = [];
      // Four connections, each proven accepted by a complete HTTP/1.1 answer.
      for (let i = 0; i < 4; i++) {
        const socket = net.connect(server.port, "127.0.0.1");
        socket.write("GET /ping HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
        const [chunk] = (await once(socket, "data")) as [Buffer];
        answers.push(chunk.toString().split("\r\n")[0]!);
        sockets.push(socket);
      }
      assert.deepEqual(answers, Array(4).fill("HTTP/1.1 200 OK"));
      assert.equal(await pingOnce(server.port), "", "the fifth is closed without an answer");
      sockets[0]!.destroy();
      // The server counts the closed one once it sees its end: try again until it did.
      let answer = "";
      for (let attempt = 0; attempt < 100 && !answer; attempt++) answer = await pingOnce(server.port);
      assert.equal(answer, "HTTP/1.1 200 OK");
      for (const socket of sockets) socket.destroy();
    } finally {
      await server.close();
    }
  });
});

describe("the listener under attack: deadlines with TLS", { skip: toolSkip("openssl", commandExists("openssl"), "apt-get install -y openssl") }, () => {
  const prefaceTimeoutMs = 800;
  let server: Awaited<ReturnType<typeof startServer>>;
  let ca: Buffer;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "limits-tls-"));
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    ca = readFileSync(join(dir, "cert.pem"));
    server = await startServer([GREETER], { tls: { cert: ca, key: readFileSync(join(dir, "key.pem")) }, prefaceTimeoutMs });
  });
  after(() => server?.close());

  /** How long the server keeps a socket open; the client reads, so the server's close reaches it. */
  async function heldMs(socket: net.Socket, connected: string): Promise<number> {
    socket.on("error", () => undefined);
    await once(socket, connected);
    const started = performance.now();
    socket.resume();
    await once(socket, "close");
    return performance.now() - started;
  }
  const tlsTo = (alpn: string) => tls.connect({ port: server.port, host: "127.0.0.1", ca, ALPNProtocols: [alpn] });

  it("closes a connection that never starts its handshake, or stops after it (h2 or http/1.1), at --preface-timeout-ms", async () => {
    const held = await Promise.all([heldMs(net.connect(server.port, "127.0.0.1"), "connect"), heldMs(tlsTo("h2"), "secureConnect"), heldMs(tlsTo("http/1.1"), "secureConnect")]);
    for (const ms of held) assert.ok(ms >= prefaceTimeoutMs - 50 && ms < prefaceTimeoutMs + SLACK_MS, `closed after ${held.map((m) => m.toFixed(0)).join(", ")} ms`);
  });

  it("keeps a keep-alive HTTP/1.1 connection past the deadline once its first request came", async () => {
    const socket = tlsTo("http/1.1");
    await once(socket, "secureConnect");
    let answers = "";
    socket.on("data", (chunk: Buffer) => (answers += chunk));
    const answered = async (count: number) => {
      while ((answers.match(/HTTP\/1\.1 200 OK/g) ?? []).length < count) await once(socket, "data");
    };
    // A silent connection opened after this one: once the server closed it, this one's deadline has passed too.
    const witness = tlsTo("http/1.1");
    socket.write("GET /ping HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    await answered(1);
    await heldMs(witness, "secureConnect");
    socket.write("GET /ping HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    await answered(2);
    socket.destroy();
  });
});
