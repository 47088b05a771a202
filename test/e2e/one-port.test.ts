import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { describe, it } from "node:test";
import { IRIS, startServer } from "../helpers/server.js";

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
});
