import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { IRIS, ROOT, type RunningServer, startServer } from "../helpers/server.js";

const irisRow = JSON.stringify({ inputs: [[5.1, 3.5, 1.4, 0.2]] });

async function irisServed(server: RunningServer): Promise<boolean> {
  const res = await fetch(`${server.url}/v2/repository/index`, { method: "POST" });
  const index = (await res.json()) as Array<{ name: string; state: string }>;
  return index.some((m) => m.name === "iris" && m.state === "READY");
}

async function predictStatus(server: RunningServer): Promise<number> {
  const res = await fetch(`${server.url}/invocations`, { method: "POST", headers: { "content-type": "application/json" }, body: irisRow });
  await res.arrayBuffer();
  return res.status;
}

describe("repository API: no changes unless explicitly enabled", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([IRIS]);
  });
  after(() => server.close());

  for (const action of ["load", "unload"]) {
    it(`refuses ${action} with 403 and a hint at --model-control-mode by default`, async () => {
      const res = await fetch(`${server.url}/v2/repository/models/iris/${action}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      assert.equal(res.status, 403);
      assert.match(((await res.json()) as { error: string }).error, /--model-control-mode explicit/);
      assert.equal(await irisServed(server), true);
      assert.equal(await predictStatus(server), 200);
    });
  }

  it("still lists the repository (read-only)", async () => {
    assert.equal(await irisServed(server), true);
  });
});

describe("repository API with --model-control-mode explicit: web pages cannot change it", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([IRIS], { modelControlMode: "explicit", corsOrigins: ["https://app.example"] });
  });
  after(() => server.close());

  // What a page on another origin can send without a CORS preflight: the browser
  // delivers it (the page only cannot read the answer), so the server must refuse it.
  const simpleCrossSite: Array<[string, Record<string, string>, string | undefined]> = [
    ["a text/plain POST", { "content-type": "text/plain", origin: "https://evil.example" }, "{}"],
    ["a form POST", { "content-type": "application/x-www-form-urlencoded", origin: "https://evil.example" }, "a=1"],
    ["a POST without a body", { origin: "https://evil.example" }, undefined],
    ["a JSON POST from a page whose preflight was refused", { "content-type": "application/json", origin: "null" }, "{}"],
  ];
  for (const [what, headers, body] of simpleCrossSite) {
    it(`refuses ${what} from a foreign origin with 403, and the model keeps serving`, async () => {
      const res = await fetch(`${server.url}/v2/repository/models/iris/unload`, { method: "POST", headers, body });
      assert.equal(res.status, 403);
      assert.match(((await res.json()) as { error: string }).error, /may not change the model repository/);
      assert.equal(await irisServed(server), true);
      assert.equal(await predictStatus(server), 200);
    });
  }

  it("refuses a body that is not JSON with 415, whatever the origin", async () => {
    const res = await fetch(`${server.url}/v2/repository/models/iris/unload`, { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" });
    assert.equal(res.status, 415);
    assert.equal(await irisServed(server), true);
  });

  it("lets an allowed origin and clients without an Origin (curl, SDKs) reload and unload", async () => {
    const fromPage = await fetch(`${server.url}/v2/repository/models/iris/load`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: "https://app.example" },
      body: "{}",
    });
    assert.equal(fromPage.status, 200, await fromPage.text());
    const fromCli = await fetch(`${server.url}/v2/repository/models/iris/unload`, { method: "POST" });
    assert.equal(fromCli.status, 200, await fromCli.text());
    assert.equal(await irisServed(server), false);
    assert.equal((await fetch(`${server.url}/v2/repository/models/iris/load`, { method: "POST" })).status, 200);
    assert.equal(await predictStatus(server), 200);
  });
});

describe("exposure warning", () => {
  /** The CLI's log lines up to and including its listening line. */
  async function startupLines(args: string[]): Promise<Array<{ level: number; msg: string }>> {
    const child = spawn(process.execPath, [`${ROOT}bin/mlflow-connect.js`, "serve", IRIS, "--port", "0", "--workers", "1", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    try {
      for await (const chunk of child.stdout!) {
        out += chunk;
        if (/listening on/.test(out) && out.endsWith("\n")) break;
      }
    } finally {
      child.kill("SIGKILL");
    }
    return out.trim().split("\n").map((l) => JSON.parse(l) as { level: number; msg: string });
  }

  it("warns once when listening beyond loopback without a token", async () => {
    const lines = await startupLines(["--host", "0.0.0.0"]);
    const warnings = lines.filter((l) => /without --auth-token/.test(l.msg));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.level, 40);
  });

  for (const args of [["--host", "127.0.0.1"], ["--host", "0.0.0.0", "--auth-token", "s3cret"]]) {
    it(`does not warn with ${args.join(" ")}`, async () => {
      const lines = await startupLines(args);
      assert.ok(lines.some((l) => /listening on/.test(l.msg)));
      assert.equal(lines.filter((l) => /without --auth-token/.test(l.msg)).length, 0);
    });
  }
});
