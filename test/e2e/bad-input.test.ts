import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { MLflow } from "../../gen/mlflow_pb.js";
import { reference } from "../helpers/reference.js";
import { IRIS, ROOT, type RunningServer, startServer } from "../helpers/server.js";

const { iris } = reference;
const MAX_MESSAGE_BYTES = 64 * 1024;

/** Bad Input.value strings for the iris model, each with a phrase the error message must contain. */
const BAD_VALUES: Array<[string, string, string]> = [
  ["malformed JSON", '{"inputs": [[5.1, 3.5', "not valid JSON"],
  ["an empty value", "", "the request is empty"],
  ["JSON that is not an object", "[1, 2, 3]", "must be a JSON object"],
  ["no scoring format field", '{"data": [[1, 2, 3, 4]]}', "exactly one of the fields"],
  ["two scoring format fields", '{"inputs": [[1, 2, 3, 4]], "instances": [[1, 2, 3, 4]]}', "it has instances, inputs"],
  ["three features instead of four", '{"inputs": [[5.1, 3.5, 1.4]]}', 'input "input" expects shape [-1, 4], got [1, 3]'],
  ["five features instead of four", '{"instances": [[5.1, 3.5, 1.4, 0.2, 9.9]]}', "got [1, 5]"],
  ["a missing column", JSON.stringify({ dataframe_split: { columns: iris.columns.slice(0, 3), data: [[5.1, 3.5, 1.4]] } }), 'missing column "petal width (cm)"'],
  ["strings for numbers", '{"inputs": [["5.1", "3.5", "1.4", "0.2"]]}', 'expected float32, got string "5.1"'],
  ["a string in a double column", JSON.stringify({ dataframe_records: [Object.fromEntries(iris.columns.map((c) => [c, "x"]))] }), `"${iris.columns[0]}": expected float64, got string "x"`],
  ["a null value", JSON.stringify({ dataframe_split: { columns: iris.columns, data: [[5.1, null, 1.4, 0.2]] } }), "got null"],
  ["ragged rows", '{"inputs": [[5.1, 3.5, 1.4, 0.2], [1.0]]}', "ragged"],
  ["no rows", JSON.stringify({ dataframe_split: { columns: iris.columns, data: [] } }), "has no rows"],
  ["an empty tensor", '{"inputs": []}', "is empty"],
  ["lists nested 1,000 deep", `{"inputs": ${"[".repeat(1000)}1${"]".repeat(1000)}}`, "nested deeper than 32 levels"],
  ["an unknown input name", '{"inputs": {"pixels": [[1, 2, 3, 4]]}}', 'has no input "pixels"'],
];

function transports(url: string): Record<string, Transport> {
  return {
    gRPC: createGrpcTransport({ baseUrl: url }),
    "gRPC-Web": createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" }),
    Connect: createConnectTransport({ baseUrl: url, httpVersion: "1.1" }),
  };
}

async function callError(transport: Transport, value: string): Promise<ConnectError> {
  try {
    await createClient(MLflow, transport).predict({ value });
  } catch (error) {
    return ConnectError.from(error);
  }
  assert.fail("the call succeeded");
}

describe("bad input on every protocol", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([IRIS], { maxMessageBytes: MAX_MESSAGE_BYTES });
  });
  after(() => server.close());

  for (const [what, value, phrase] of BAD_VALUES) {
    it(`refuses ${what} with invalid_argument on gRPC, gRPC-Web and Connect`, async () => {
      for (const [name, transport] of Object.entries(transports(server.url))) {
        const error = await callError(transport, value);
        assert.equal(error.code, Code.InvalidArgument, `${name}: ${error.message}`);
        assert.ok(error.rawMessage.includes(phrase), `${name}: "${error.rawMessage}" lacks "${phrase}"`);
      }
    });
  }

  it("answers a bad Connect JSON POST with HTTP 400 and a message", async () => {
    const res = await fetch(`${server.url}/MLflow/predict`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ value: '{"inputs": [[5.1, 3.5, 1.4]]}' }),
    });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { code: "invalid_argument", message: 'input "input" expects shape [-1, 4], got [1, 3]' });
  });

  it("answers a Connect POST whose body is not JSON with HTTP 400", async () => {
    const res = await fetch(`${server.url}/MLflow/predict`, { method: "POST", headers: { "content-type": "application/json" }, body: "{value:" });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { code: string }).code, "invalid_argument");
  });

  it("gives @grpc/grpc-js INVALID_ARGUMENT with the message", async () => {
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(`${ROOT}proto/mlflow.proto`)) as unknown as {
      MLflow: new (a: string, c: grpc.ChannelCredentials) => grpc.Client & {
        predict(i: { value: string }, cb: (e: grpc.ServiceError | null, o: { value: string }) => void): void;
      };
    };
    const client = new def.MLflow(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const error = await new Promise<grpc.ServiceError>((resolve, reject) =>
      client.predict({ value: '{"inputs": [["a", "b", "c", "d"]]}' }, (e) => (e ? resolve(e) : reject(new Error("call succeeded")))),
    );
    client.close();
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
    assert.match(error.details, /expected float32, got string "a"/);
  });

  // Not protobuf: field 1 announces 16 bytes and ends after one; and a string field with invalid UTF-8.
  const NOT_PROTOBUF = [Buffer.from([0x0a, 0x10, 0x01]), Buffer.from([0x0a, 0x02, 0xff, 0xfe])];

  it("answers a gRPC body that is not protobuf with INVALID_ARGUMENT, not INTERNAL", async () => {
    const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    try {
      for (const bytes of NOT_PROTOBUF) {
        const error = await new Promise<grpc.ServiceError>((resolve, reject) =>
          client.makeUnaryRequest("/MLflow/predict", (x: Buffer) => x, (x: Buffer) => x, bytes, (e) => (e ? resolve(e) : reject(new Error("call succeeded")))),
        );
        assert.equal(error.code, grpc.status.INVALID_ARGUMENT, error.details);
        assert.match(error.details, /^parse binary: /);
      }
    } finally {
      client.close();
    }
  });

  it("answers a gRPC-Web body that is not protobuf with grpc-status 3", async () => {
    for (const bytes of NOT_PROTOBUF) {
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, bytes.length]), bytes]);
      const res = await fetch(`${server.url}/MLflow/predict`, { method: "POST", headers: { "content-type": "application/grpc-web+proto" }, body: frame });
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(body[0], 0x80, "a trailer frame");
      const trailer = body.subarray(5).toString();
      assert.match(trailer, /grpc-status: 3\r\n/);
      assert.match(trailer, /grpc-message: parse(%20| )binary/);
    }
  });

  it("answers a Connect body that is not protobuf with HTTP 400 invalid_argument", async () => {
    for (const bytes of NOT_PROTOBUF) {
      const res = await fetch(`${server.url}/MLflow/predict`, { method: "POST", headers: { "content-type": "application/proto" }, body: bytes });
      assert.equal(res.status, 400);
      const error = (await res.json()) as { code: string; message: string };
      assert.equal(error.code, "invalid_argument");
      assert.match(error.message, /^parse binary: /);
    }
  });

  it("ends a Connect stream whose message is not protobuf with invalid_argument", async () => {
    for (const bytes of NOT_PROTOBUF) {
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, bytes.length]), bytes]);
      // A bidi stream: HTTP/2.
      const session = http2.connect(server.url);
      const { status, body } = await new Promise<{ status: number | undefined; body: Buffer }>((resolve, reject) => {
        const req = session.request({ ":method": "POST", ":path": "/mlflow.serving.v1.ModelService/PredictStream", "content-type": "application/connect+proto" });
        const chunks: Buffer[] = [];
        let answered: number | undefined;
        req.on("response", (h) => (answered = h[":status"]));
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => resolve({ status: answered, body: Buffer.concat(chunks) }));
        req.on("error", reject);
        req.end(frame);
      }).finally(() => session.destroy());
      assert.equal(status, 200, "Connect streams carry errors in their end message");
      const last = body.subarray(findEndStream(body));
      assert.equal(last[0], 0x02, "an end-stream message");
      const end = JSON.parse(last.subarray(5).toString()) as { error: { code: string; message: string } };
      assert.equal(end.error.code, "invalid_argument");
      assert.match(end.error.message, /^parse binary: /);
    }
  });

  it("refuses a message over the size limit with resource_exhausted on every protocol", async () => {
    const big = JSON.stringify({ inputs: Array.from({ length: 4000 }, () => [5.1, 3.5, 1.4, 0.2]) });
    assert.ok(big.length > MAX_MESSAGE_BYTES);
    for (const [name, transport] of Object.entries(transports(server.url))) {
      const error = await callError(transport, big);
      assert.equal(error.code, Code.ResourceExhausted, `${name}: ${error.message}`);
      assert.match(error.rawMessage, new RegExp(`${MAX_MESSAGE_BYTES}`), name);
    }
  });

  it("answers an unknown route with 404 over HTTP and UNIMPLEMENTED over gRPC", async () => {
    const res = await fetch(`${server.url}/MLflow/train`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(res.status, 404);
    const grpcClient = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const error = await new Promise<grpc.ServiceError>((resolve, reject) =>
      grpcClient.makeUnaryRequest("/MLflow/train", (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), (e) => (e ? resolve(e) : reject(new Error("call succeeded")))),
    );
    grpcClient.close();
    assert.equal(error.code, grpc.status.UNIMPLEMENTED);
  });

  it("keeps serving after all of the above", async () => {
    for (const transport of Object.values(transports(server.url))) {
      const output = await createClient(MLflow, transport).predict({ value: JSON.stringify({ inputs: iris.rows }) });
      assert.deepEqual((JSON.parse(output.value) as { predictions: { label: number[] } }).predictions.label, iris.label);
    }
  });
});

/** Where the end-stream envelope (flag 0x02) of a Connect stream body starts. */
function findEndStream(body: Buffer): number {
  let at = 0;
  while (at + 5 <= body.length) {
    if (body[at] === 0x02) return at;
    at += 5 + body.readUInt32BE(at + 1);
  }
  return body.length;
}
