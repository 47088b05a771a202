import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { ROOT } from "./helpers/server.js";

const exec = promisify(execFile);
const BIN = join(ROOT, "node_modules", ".bin");
// buf runs the local protoc-gen-es plugin from node_modules/.bin.
const env = { ...process.env, PATH: `${BIN}:${process.env.PATH}` };

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

describe("proto/ and gen/", () => {
  it("passes buf lint (with the documented exceptions for the seed contract)", async () => {
    await exec(join(BIN, "buf"), ["lint"], { cwd: ROOT, env });
  });

  it("gen/ is exactly what buf generate makes from proto/", async () => {
    const out = mkdtempSync(join(tmpdir(), "buf-gen-"));
    await exec(join(BIN, "buf"), ["generate", "--output", out], { cwd: ROOT, env });
    const fresh = join(out, "gen");
    const committed = join(ROOT, "gen");
    assert.deepEqual(listFiles(fresh), listFiles(committed), "same files");
    for (const file of listFiles(committed)) {
      assert.equal(readFileSync(join(fresh, file), "utf8"), readFileSync(join(committed, file), "utf8"), `gen/${file} is stale: run npm run generate`);
    }
  });
});
