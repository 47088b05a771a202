import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { makeRepository } from "../helpers/repository.js";
import { SLOW, startServer } from "../helpers/server.js";

/** The threads of this process (the server runs in it, its workers are threads of it). */
const threads = () => readdirSync("/proc/self/task").length;
const skip = existsSync("/proc/self/task") ? false : "counting threads needs Linux's /proc";

describe("MLmodel onnx_session_options", { skip }, () => {
  it("reach onnxruntime: a session with intra_op_num_threads 4 starts 3 more threads per worker than one with 1", async () => {
    // The slow fixture asks for intra_op_num_threads: 1; a copy asks for 4.
    const repo = makeRepository({ one: SLOW, four: SLOW });
    const mlmodel = join(repo, "four", "MLmodel");
    const text = readFileSync(mlmodel, "utf8");
    assert.match(text, /^ {6}intra_op_num_threads: 1$/m);
    writeFileSync(mlmodel, text.replace("intra_op_num_threads: 1", "intra_op_num_threads: 4"));
    const workers = 2;
    const server = await startServer([repo], { workers, modelControlMode: "explicit" });
    try {
      const post = async (path: string) => assert.equal((await fetch(`${server.url}/v2/repository/models/${path}`, { method: "POST" })).status, 200, path);
      await post("four/unload");
      const withOne = threads();
      await post("one/unload");
      const withNone = threads();
      await post("one/load");
      assert.equal(threads(), withNone, "one intra-op thread: the worker's own, no pool");
      await post("four/load");
      assert.equal(threads() - withOne, 3 * workers, "three pool threads per worker");
      await post("four/unload");
      assert.equal(threads(), withOne, "released with the session");
    } finally {
      await server.close();
    }
  });
});
