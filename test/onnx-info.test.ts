import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { readOnnxInfo } from "../src/mlflow/onnx-info.js";
import { IRIS } from "./helpers/server.js";

describe("readOnnxInfo()", () => {
  it("reads IR version, producer and opsets as the onnx package does", async () => {
    // Expected values from Debian's python3-onnx: onnx.load("models/iris/model.onnx").
    assert.deepEqual(await readOnnxInfo(`${IRIS}/model.onnx`), { irVersion: 8, producerName: "mlflow-connect-fixtures", producerVersion: "", opsets: [{ domain: "", version: 17 }] });
  });

  it("skips a 3 GB graph by file position instead of reading it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "onnx-info-"));
    const path = join(dir, "model.onnx");
    try {
      const graphBytes = 3_000_000_000; // a sparse file: no disk space, but readFile would refuse it (over 2 GiB)
      const head = new BinaryWriter().tag(1, 0).int64(9).tag(2, 2).string("big").tag(3, 2).string("1.0").tag(7, 2).uint32(graphBytes).finish();
      writeFileSync(path, head);
      truncateSync(path, head.length + graphBytes);
      const opset = (domain: string, version: number) => new BinaryWriter().tag(1, 2).string(domain).tag(2, 0).int64(version).finish();
      appendFileSync(path, new BinaryWriter().tag(8, 2).bytes(opset("", 21)).tag(8, 2).bytes(opset("ai.onnx.ml", 5)).finish());
      assert.ok(statSync(path).size > 2 ** 31);
      assert.deepEqual(await readOnnxInfo(path), {
        irVersion: 9,
        producerName: "big",
        producerVersion: "1.0",
        opsets: [
          { domain: "", version: 21 },
          { domain: "ai.onnx.ml", version: 5 },
        ],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a file that ends inside a field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "onnx-info-"));
    const path = join(dir, "model.onnx");
    try {
      writeFileSync(path, new BinaryWriter().tag(8, 2).uint32(100).raw(new Uint8Array(10)).finish());
      await assert.rejects(readOnnxInfo(path), /ends inside field 8/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
