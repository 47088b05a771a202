import assert from "node:assert/strict";
import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { PredictRequestSchema } from "../../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType } from "../../gen/mlflow/serving/v1/tensor_pb.js";
import { IRIS, MULTI, startServer } from "../helpers/server.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 0x04, 0, 0, 0, 0, 0]);
const GOAWAY = 0x07;

/** The HTTP/2 frame types in a byte stream from the server. */
function frameTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  for (let at = 0; at + 9 <= bytes.length; at += 9 + bytes.readUIntBE(at, 3)) types.push(bytes[at + 3]!);
  return types;
}

describe("the one-port listener", () => {
  // Without the GOAWAY, close() would wait for the 60 s drain timeout: this test times out first.
  it("sends GOAWAY to an HTTP/2 connection that finished its preface only after close() began", { timeout: 30_000 }, async () => {
    const server = await startServer([IRIS], { drainTimeoutMs: 60_000 });
    // The server's side of the connection, to know when it has read the first bytes.
    const accepted = once(server.app.fastify.server, "connection") as Promise<[net.Socket]>;
    const socket = net.connect(server.port, "127.0.0.1");
    const received: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => received.push(chunk));
    const socketClosed = new Promise((resolve) => socket.once("close", resolve));
    const [serverSide] = await accepted;
    const read = once(serverSide, "data");
    socket.write(PREFACE.subarray(0, 10));
    await read; // still sniffing: neither inner server has the connection yet
    const closed = server.close();
    socket.write(Buffer.concat([PREFACE.subarray(10), EMPTY_SETTINGS]));
    // Without the GOAWAY the connection would hold close() until the 60 s drain timeout.
    await closed;
    await socketClosed;
    assert.ok(frameTypes(Buffer.concat(received)).includes(GOAWAY), "a GOAWAY frame");
  });

  for (const fastPath of [true, false]) {
    it(`finishes a gRPC answer still going out when close() begins, trailers included (${fastPath ? "lean" : "full"} path)`, async () => {
      const server = await startServer([MULTI], { fastPath });
      // 40,000 rows: a 640 KB answer, far more than the client's 64 KiB stream window.
      const rows = 40_000;
      const a = new Float64Array(rows * 2).map((_, i) => i);
      const b = new BigInt64Array(rows).map((_, i) => BigInt(i));
      const message = toBinary(
        PredictRequestSchema,
        create(PredictRequestSchema, {
          modelName: "multi",
          inputs: {
            a: { dtype: DataType.FLOAT64, shape: [BigInt(rows), 2n], rawData: new Uint8Array(a.buffer) },
            b: { dtype: DataType.INT64, shape: [BigInt(rows)], rawData: new Uint8Array(b.buffer) },
          },
        }),
      );
      const envelope = Buffer.alloc(5 + message.length);
      envelope.writeUInt32BE(message.length, 1);
      envelope.set(message, 5);
      const session = http2.connect(server.url);
      const stream = session.request({ ":method": "POST", ":path": "/mlflow.serving.v1.ModelService/Predict", "content-type": "application/grpc", te: "trailers" });
      stream.end(envelope);
      let trailers: http2.IncomingHttpHeaders | undefined;
      stream.on("trailers", (t) => (trailers = t));
      await once(stream, "response");
      stream.pause(); // the rest of the answer waits for window updates while the server closes
      const goaway = once(session, "goaway");
      const closed = server.close();
      // Same process: once the GOAWAY is read here, whatever close() did at once is on the wire too.
      await goaway;
      let bytes = 0;
      stream.on("data", (chunk: Buffer) => (bytes += chunk.length));
      stream.resume();
      await once(stream, "close");
      session.close();
      await closed;
      assert.equal(trailers?.["grpc-status"], "0", "the trailers came: no reset before them");
      assert.equal(stream.rstCode, http2.constants.NGHTTP2_NO_ERROR);
      assert.ok(bytes > 16 * rows, `${bytes} bytes of answer`);
    });
  }
});
