import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { MLflow } from "../../gen/mlflow_pb.js";
import { until } from "../helpers/cli-server.js";
import { reference } from "../helpers/reference.js";
import { GREETER, ROOT, type RunningServer, SLOW, startServer } from "../helpers/server.js";
import { commandExists, toolSkip } from "../helpers/tools.js";

const exec = promisify(execFile);
const skip = toolSkip("openssl", commandExists("openssl"), "apt-get install -y openssl") || toolSkip("curl", commandExists("curl"), "apt-get install -y curl");
const { greeter } = reference;

describe("TLS on the one port (ALPN h2 and http/1.1)", { skip }, () => {
  let server: RunningServer;
  let ca: Buffer;
  let caPath: string;
  let url: string;
  before(async () => {
    // A self-signed certificate for 127.0.0.1, made here.
    const dir = mkdtempSync(join(tmpdir(), "tls-"));
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    caPath = join(dir, "cert.pem");
    ca = readFileSync(caPath);
    server = await startServer([GREETER], { tls: { cert: ca, key: readFileSync(join(dir, "key.pem")) } });
    url = server.url.replace("http:", "https:");
  });
  after(() => server?.close());

  it("answers connect-node over gRPC (h2), gRPC-Web and Connect (http/1.1)", async () => {
    const nodeOptions = { ca };
    for (const transport of [
      createGrpcTransport({ baseUrl: url, nodeOptions }),
      createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1", nodeOptions }),
      createConnectTransport({ baseUrl: url, httpVersion: "1.1", nodeOptions }),
      createConnectTransport({ baseUrl: url, httpVersion: "2", nodeOptions }),
    ]) {
      assert.equal((await createClient(MLflow, transport).predict({ value: greeter.texts[0]! })).value, greeter.labels[0]);
    }
  });

  it("answers @grpc/grpc-js over TLS", async () => {
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(`${ROOT}proto/mlflow.proto`)) as unknown as {
      MLflow: new (a: string, c: grpc.ChannelCredentials, o: grpc.ChannelOptions) => grpc.Client & { predict(i: object, cb: (e: grpc.ServiceError | null, o: { value: string }) => void): void };
    };
    // The certificate's DNS name as TLS server name: Node 26 refuses an IP address there (grpc-js would send the target's).
    const client = new def.MLflow(`127.0.0.1:${server.port}`, grpc.credentials.createSsl(ca), { "grpc.ssl_target_name_override": "localhost" });
    try {
      const out = await new Promise<{ value: string }>((resolve, reject) => client.predict({ value: "HELLO WORLD" }, (e, o) => (e ? reject(e) : resolve(o))));
      assert.equal(out.value, "greeting");
    } finally {
      client.close();
    }
  });

  it("answers curl over HTTP/1.1 and HTTP/2 negotiated by ALPN", async () => {
    for (const flag of ["--http1.1", "--http2"]) {
      const { stdout } = await exec("curl", ["-sS", flag, "--cacert", caPath, "-w", "\n%{http_version}", "-H", "content-type: application/json", "-d", '{"inputs": ["HELLO WORLD"]}', `${url}/invocations`]);
      const [body, version] = stdout.split("\n");
      assert.equal(version, flag === "--http1.1" ? "1.1" : "2");
      assert.deepEqual(JSON.parse(body!), { predictions: ["greeting"] });
    }
  });

  it("answers Connect JSON on the lean path over both, and a gRPC content type over HTTP/1.1 without falling over", async () => {
    const before = server.app.leanCalls();
    for (const flag of ["--http1.1", "--http2"]) {
      const { stdout } = await exec("curl", ["-sS", flag, "--cacert", caPath, "-H", "content-type: application/json", "-d", '{"value": "HELLO WORLD"}', `${url}/MLflow/predict`]);
      assert.deepEqual(JSON.parse(stdout), { value: "greeting" });
    }
    assert.equal(server.app.leanCalls() - before, 2);
    // The lean gRPC adapter needs HTTP/2: over HTTP/1.1 the full path answers, and the server goes on.
    const { stdout } = await exec("curl", ["-sS", "--http1.1", "--cacert", caPath, "-o", "/dev/null", "-w", "%{http_code}", "-H", "content-type: application/grpc", "--data-binary", "@/dev/null", `${url}/MLflow/predict`]);
    assert.equal(stdout, "200", "connect-es' gRPC handler answers (its status in trailers)");
    const again = await exec("curl", ["-sS", "--cacert", caPath, "-H", "content-type: application/json", "-d", '{"value": "HELLO WORLD"}', `${url}/MLflow/predict`]);
    assert.deepEqual(JSON.parse(again.stdout), { value: "greeting" });
  });

  // Were the idle socket waited for, close() would take the 10-minute drain timeout and
  // this test would time out.
  it("does not let an idle HTTP/1.1 keep-alive connection hold shutdown", { timeout: 30_000 }, async () => {
    const other = await startServer([GREETER], { tls: { cert: ca, key: readFileSync(caPath.replace("cert.pem", "key.pem")) }, drainTimeoutMs: 600_000 });
    const agent = new https.Agent({ keepAlive: true, ca });
    try {
      const socket = await new Promise<net.Socket>((resolve, reject) =>
        https.get(`${other.url.replace("http:", "https:")}/ping`, { agent }, (res) => {
          const { socket } = res; // released to the agent at the end of the answer
          res.resume().on("end", () => resolve(socket));
        }).on("error", reject),
      );
      const socketClosed = once(socket, "close");
      await other.close();
      await socketClosed; // by the server: the client kept it for reuse
    } finally {
      agent.destroy();
    }
  });

  it("drains: calls in flight over h2 and HTTP/1.1 are answered after close() began, the HTTP/1.1 ones with Connection: close", async () => {
    const other = await startServer([SLOW], { workers: 2, tls: { cert: ca, key: readFileSync(caPath.replace("cert.pem", "key.pem")) } });
    const base = other.url.replace("http:", "https:");
    const agent = new https.Agent({ keepAlive: true, ca });
    const body = (n: number) => JSON.stringify({ value: JSON.stringify({ inputs: [n] }) });
    const answer = (value: string) => (JSON.parse(value) as { predictions: number }).predictions;
    const h1Call = (n: number) =>
      new Promise<{ value: number; connection: string | undefined; afterClose: boolean }>((resolve, reject) => {
        const req = https.request(`${base}/MLflow/predict`, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
          let text = "";
          res.on("data", (chunk: Buffer) => (text += chunk));
          res.on("end", () => resolve({ value: answer((JSON.parse(text) as { value: string }).value), connection: res.headers.connection, afterClose: closed !== undefined }));
        });
        req.on("error", reject);
        req.end(body(n));
      });
    const h2 = createClient(MLflow, createGrpcTransport({ baseUrl: base, nodeOptions: { ca } }));
    const sizes = [1024, 1280, 1024, 1280, 1024, 1280]; // n^3 exact in float32; ~0.1-0.2 s each here
    let closed: Promise<void> | undefined;
    let done = 0;
    const h2Calls = sizes.map(async (n) => answer((await h2.predict({ value: JSON.stringify({ inputs: [n] }) }).finally(() => done++)).value));
    const h1Calls = sizes.map((n) => h1Call(n).finally(() => done++));
    // Every call received: two run (one per worker), the others wait in the queue.
    const queued = async () => Number(/mlflow_connect_queue_depth\{model="slow"\} (\d+)/.exec((await other.app.fastify.inject("/metrics")).body)?.[1] ?? 0);
    await until("the calls to be running or queued", async () => {
      const depth = await queued();
      return (depth > 0 && depth + 2 + done >= 2 * sizes.length) || done === 2 * sizes.length;
    });
    closed = other.close();
    assert.deepEqual(await Promise.all(h2Calls), sizes.map((n) => n ** 3));
    const h1 = await Promise.all(h1Calls);
    assert.deepEqual(h1.map((r) => r.value), sizes.map((n) => n ** 3));
    const answeredWhileClosing = h1.filter((r) => r.afterClose);
    assert.ok(answeredWhileClosing.length > 0);
    assert.deepEqual(answeredWhileClosing.map((r) => r.connection), answeredWhileClosing.map(() => "close"));
    await closed;
    agent.destroy();
  });

  it("the container's health check passes over TLS and plaintext, and fails when nothing answers", async () => {
    const check = (env: Record<string, string>) =>
      new Promise<number | null>((resolve) => execFile(process.execPath, [`${ROOT}bin/healthcheck.js`], { env: { ...process.env, ...env } }, (error) => resolve(error ? ((error as { code?: number }).code ?? 1) : 0)));
    assert.equal(await check({ MLFLOW_CONNECT_PORT: String(server.port), MLFLOW_CONNECT_TLS_CERT: caPath }), 0);
    assert.equal(await check({ MLFLOW_CONNECT_PORT: String(server.port), MLFLOW_CONNECT_TLS_CERT: "" }), 1, "plaintext against TLS fails");
    const plain = await startServer([GREETER]);
    try {
      assert.equal(await check({ MLFLOW_CONNECT_PORT: String(plain.port), MLFLOW_CONNECT_TLS_CERT: "" }), 0);
    } finally {
      await plain.close();
    }
    // A port that takes connections and answers nothing (a port just closed could be
    // taken again by then).
    const silent = net.createServer((socket) => socket.destroy()).listen(0, "127.0.0.1");
    await once(silent, "listening");
    try {
      assert.equal(await check({ MLFLOW_CONNECT_PORT: String((silent.address() as net.AddressInfo).port), MLFLOW_CONNECT_TLS_CERT: "" }), 1, "nothing answers");
    } finally {
      silent.close();
    }
  });

  it("refuses plaintext on the TLS port", async () => {
    await assert.rejects(fetch(`${server.url}/ping`));
  });
});
