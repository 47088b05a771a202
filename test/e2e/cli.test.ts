import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { reference } from "../helpers/reference.js";
import { BROKEN, GREETER, ROOT } from "../helpers/server.js";

const BIN = `${ROOT}bin/mlflow-connect.js`;
const exec = promisify(execFile);

async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Starts `serve` and resolves with the process and the start-up log line once it listens. */
async function startCli(args: string[]): Promise<{ child: ChildProcess; line: { msg: string } }> {
  const child = spawn(process.execPath, [BIN, "serve", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  for await (const chunk of child.stdout!) {
    out += chunk;
    if (out.includes("\n")) break;
  }
  return { child, line: JSON.parse(out.split("\n")[0]!) as { msg: string } };
}

describe("mlflow-connect serve: start-up errors", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["a missing directory", "/nonexistent/model", /model path "\/nonexistent\/model" does not exist/],
    ["a directory without MLmodel", `${BROKEN}/no-mlmodel`, /no-mlmodel" is neither an MLflow model directory \(it has no MLmodel file\) nor a repository of them/],
    ["an MLmodel that is not YAML", `${BROKEN}/bad-yaml`, /cannot parse ".*bad-yaml\/MLmodel"/],
    ["a model without an onnx flavor", `${BROKEN}/sklearn-only`, /sklearn-only" has no onnx flavor \(its flavors: python_function, sklearn\)\. mlflow-connect runs ONNX models: export yours with mlflow\.onnx/],
    ["a missing ONNX file", `${BROKEN}/missing-onnx-file`, /ONNX file ".*missing-onnx-file\/model\.onnx" named by .* does not exist/],
    ["an invalid ONNX file", `${BROKEN}/invalid-onnx`, /cannot load the ONNX model ".*invalid-onnx\/model\.onnx": .*Protobuf parsing failed/],
    ["a remote URI", "s3://bucket/model", /only local paths and file:\/\/ URIs are supported/],
  ];
  for (const [what, path, message] of cases) {
    it(`exits 1 with one clear line, no stack trace, for ${what}`, async () => {
      const { code, stdout, stderr } = await runCli(["serve", path, "--port", "0"]);
      assert.equal(code, 1);
      assert.match(stderr, message);
      assert.match(stderr, /^mlflow-connect: error: /);
      assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
      assert.equal(stdout, "");
    });
  }

  it("refuses a bad flag value", async () => {
    const { code, stderr } = await runCli(["serve", GREETER, "--port", "http"]);
    assert.equal(code, 1);
    assert.match(stderr, /--port <n>' argument 'http' is invalid/);
  });

  it("exits 1 with a clear message when the port is taken", async () => {
    const blocker = createServer().listen(0, "127.0.0.1");
    await once(blocker, "listening");
    const port = (blocker.address() as { port: number }).port;
    const { code, stderr } = await runCli(["serve", GREETER, "--port", String(port), "--workers", "1"]);
    blocker.close();
    assert.equal(code, 1);
    assert.match(stderr, new RegExp(`port ${port} on 127.0.0.1 is already in use`));
  });
});

describe("mlflow-connect serve", () => {
  it("documents every flag in --help", async () => {
    const { code, stdout } = await runCli(["serve", "--help"]);
    assert.equal(code, 0);
    for (const flag of ["--port", "--host", "--workers", "--max-message-bytes", "--log-level", "MODEL_URI"]) assert.ok(stdout.includes(flag), flag);
    assert.match(stdout, /default: 50051/);
    assert.match(stdout, /default: "127\.0\.0\.1"/);
  });

  it("serves a file:// URI, logs one line with address and model, and exits 0 on SIGTERM", async () => {
    const { child, line } = await startCli([pathToFileURL(GREETER).href, "--port", "0", "--workers", "1"]);
    try {
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+) .*model "greeter" ready/.exec(line.msg);
      assert.ok(match, line.msg);
      const res = await fetch(`${match[1]}/MLflow/predict`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ value: reference.greeter.texts[0] }),
      });
      assert.deepEqual(await res.json(), { value: reference.greeter.labels[0] });
    } finally {
      child.kill("SIGTERM");
    }
    const [code] = await once(child, "exit");
    assert.equal(code, 0);
  });
});
