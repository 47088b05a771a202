import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Code, ConnectError, type Interceptor, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { MLflow } from "../../gen/mlflow_pb.js";
import { startCli } from "../helpers/cli.js";
import { GREETER, SLOW } from "../helpers/server.js";
import { commandExists, toolSkip } from "../helpers/tools.js";
import { settled } from "../helpers/wait.js";

const skip = toolSkip("openssl", commandExists("openssl"), "apt-get install -y openssl");

const bearer = (token: string | undefined): Interceptor => (next) => (req) => {
  if (token !== undefined) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

describe("mlflow-connect serve: flags that only the command line sets", { skip }, () => {
  it("serves TLS from --tls-cert/--tls-key, the token of --auth-token-file, --default-deadline-ms, --no-fast-path, and exits 0 on SIGINT", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-flags-"));
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    const ca = readFileSync(join(dir, "cert.pem"));
    writeFileSync(join(dir, "token"), "t0ken-from-a-file\n"); // as a Kubernetes secret mounts it, newline and all
    // slow first: the default model of MLflow/predict.
    const cli = await startCli([
      SLOW, GREETER, "--port", "0", "--workers", "1",
      "--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem"),
      "--auth-token-file", join(dir, "token"),
      "--default-deadline-ms", "100",
      "--no-fast-path",
    ]);
    let exit: unknown;
    try {
      assert.match(cli.url, /^https:\/\/127\.0\.0\.1:\d+$/, "the start-up line names https");
      const client = (token?: string) => createClient(MLflow, createGrpcTransport({ baseUrl: cli.url, nodeOptions: { ca }, interceptors: [bearer(token)] }));
      for (const token of [undefined, "wrong"]) {
        const refused = await client(token).predict({ value: '{"inputs": [10]}' }).then(
          () => assert.fail(`accepted ${JSON.stringify(token)}`),
          (e: unknown) => ConnectError.from(e),
        );
        assert.equal(refused.code, Code.Unauthenticated, JSON.stringify(token));
      }
      const authorised = client("t0ken-from-a-file");
      assert.deepEqual(JSON.parse((await authorised.predict({ value: '{"inputs": [10]}' })).value), { predictions: 1000 });

      // A call without a deadline gets the 100 ms default: it expires behind a run of
      // a second (n = 3500), sent first on the same connection with a deadline of its own.
      const busy = authorised.predict({ value: '{"inputs": [3500]}' }, { timeoutMs: 60_000 });
      const late = await authorised.predict({ value: '{"inputs": [10]}' }).then(
        () => assert.fail("ran without the default deadline"),
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(late.code, Code.DeadlineExceeded, late.message);
      assert.equal(await settled(busy), false, "expired while the busy run went on");
      assert.equal(JSON.parse((await busy).value).predictions > 0, true);
    } finally {
      exit = await cli.stop("SIGINT");
    }
    assert.deepEqual(exit, [0, null], cli.stderr());
    assert.ok(cli.lines.some((l) => l.msg === "SIGINT received, shutting down"), "SIGINT handled as a shutdown");
    // --no-fast-path: no call was answered on the lean path (its access lines carry lean-N ids).
    // (Calls refused for their token get no access line: the three that passed it.)
    const calls = cli.lines.filter((l) => l.msg === "call" && l.protocol === "grpc");
    assert.deepEqual(calls.map((c) => c.code), ["ok", "deadline_exceeded", "ok"], JSON.stringify(calls));
    for (const c of calls) assert.doesNotMatch(String(c.reqId), /^lean-/, JSON.stringify(c));
  });
});
