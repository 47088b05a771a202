import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ROOT } from "../helpers/server.js";

const exec = promisify(execFile);
const NPM = ["--no-audit", "--no-fund", "--prefer-offline", "--onnxruntime-node-install=skip"];
const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { version: string };
const irisRow = JSON.stringify({ inputs: [[5.1, 3.5, 1.4, 0.2]] });

/**
 * The package as users get it: `npm pack` of the built tree (`npm test` built it; npm
 * pack would run the same build through `prepare`), installed globally and as a
 * dependency of another project, from the tarball alone.
 */
describe("the npm package", () => {
  let dir: string;
  let tarball: string;
  let files: string[];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "package-"));
    const { stdout } = await exec("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: ROOT });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(dir, packed!.filename);
    files = packed!.files.map((f) => f.path);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("holds what runs and nothing else", () => {
    for (const needed of ["bin/mlflow-connect.js", "dist/src/cli.bundle.js", "dist/src/index.js", "dist/src/index.d.ts", "dist/src/runtime/worker.js", "dist/gen/mlflow_pb.d.ts", "dist/public/index.html", "proto/mlflow.proto", "models/iris/MLmodel", "models/iris/model.onnx", "README.md", "package.json"]) {
      assert.ok(files.includes(needed), needed);
    }
    const stray = files.filter((f) => /^(test|dist\/test|dist\/bench|bench|scripts|deploy|\.ci|web-demo)\/|^Dockerfile$|\.map$|\.ts$(?<!\.d\.ts$)/.test(f));
    assert.deepEqual(stray, []);
  });

  it("installs globally from the tarball: --version, and serves the bundled model", async () => {
    const prefix = join(dir, "global");
    await exec("npm", ["install", "--global", "--prefix", prefix, ...NPM, tarball], { timeout: 180_000 });
    const bin = join(prefix, "bin", "mlflow-connect");
    for (const flag of ["--version", "-V"]) assert.equal((await exec(bin, [flag])).stdout.trim(), version);
    const model = join(prefix, "lib", "node_modules", "mlflow-connect", "models", "iris");
    const child = spawn(bin, ["serve", model, "--port", "0", "--workers", "1"], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      let out = "";
      for await (const chunk of child.stdout!) {
        out += chunk;
        if (out.includes("\n")) break;
      }
      const url = /listening on (http:\/\/[\d.:]+)/.exec(out)?.[1];
      assert.ok(url, out);
      const res = await fetch(`${url}/invocations`, { method: "POST", headers: { "content-type": "application/json" }, body: irisRow });
      assert.equal(res.status, 200);
      assert.deepEqual(((await res.json()) as { predictions: { label: number[] } }).predictions.label, [0]);
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("works as a typed library: createServer() and the generated clients from subpath exports", async () => {
    const app = join(dir, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    await exec("npm", ["install", ...NPM, tarball], { cwd: app, timeout: 180_000 });
    const source = `
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createServer, type ServerOptions } from "mlflow-connect";
import { MLflow } from "mlflow-connect/gen/mlflow_pb.js";

const options: ServerOptions = { models: ["node_modules/mlflow-connect/models/iris"], port: 0, workers: 1, logLevel: "silent" };
const server = await createServer(options);
const url: string = await server.listen();
const client = createClient(MLflow, createGrpcTransport({ baseUrl: url }));
const answer = await client.predict({ value: ${JSON.stringify(irisRow)} });
process.stdout.write(answer.value);
await server.close();
`;
    writeFileSync(join(app, "main.ts"), source);
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        // Node's types as a user's project has them (@types/node), here from this project.
        compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: true, typeRoots: [`${ROOT}node_modules/@types`], types: ["node"] },
        files: ["main.ts"],
      }),
    );
    // The types resolve from the installed package's .d.ts files (tsc fails otherwise).
    await exec(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, "-p", "."], { cwd: app }).catch((e: { stdout: string }) => assert.fail(e.stdout));
    const { stdout } = await exec(process.execPath, ["main.js"], { cwd: app, timeout: 60_000 });
    assert.deepEqual((JSON.parse(stdout) as { predictions: { label: number[] } }).predictions.label, [0]);
  });
});
