import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import http2 from "node:http2";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { MLflow } from "../../gen/mlflow_pb.js";
import { PROBABILITY_TOLERANCE, reference } from "../helpers/reference.js";
import { GREETER, IRIS, ROOT, type RunningServer, startServer } from "../helpers/server.js";
import { DEBIAN_PYTHON, commandExists, pythonHas, toolSkip } from "../helpers/tools.js";

const run = promisify(execFile);
const { iris, greeter } = reference;

/** Asserts an MLflow JSON answer holds the reference predictions for the reference rows. */
function assertIrisPredictions(value: string): void {
  const { predictions } = JSON.parse(value) as { predictions: { label: number[]; probabilities: number[][] } };
  assert.deepEqual(predictions.label, iris.label);
  assert.equal(predictions.probabilities.length, iris.rows.length);
  assert.deepEqual(predictions.probabilities.map((row) => row.length), iris.probabilities.map(() => 3));
  predictions.probabilities.forEach((row, i) =>
    row.forEach((p, j) => assert.ok(Math.abs(p - iris.probabilities[i]![j]!) < PROBABILITY_TOLERANCE, `row ${i} class ${j}: ${p} vs ${iris.probabilities[i]![j]}`)),
  );
}

const irisBodies = {
  inputs: { inputs: iris.rows },
  instances: { instances: iris.rows.map((row) => Object.fromEntries(iris.columns.map((c, i) => [c, row[i]]))) },
  dataframe_split: { dataframe_split: { columns: iris.columns, data: iris.rows } },
  dataframe_records: { dataframe_records: iris.rows.map((row) => Object.fromEntries(iris.columns.map((c, i) => [c, row[i]]))) },
};

function transports(url: string): Record<string, Transport> {
  return {
    "gRPC over h2c": createGrpcTransport({ baseUrl: url }),
    "gRPC-Web over HTTP/1.1": createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" }),
    "Connect binary over HTTP/1.1": createConnectTransport({ baseUrl: url, httpVersion: "1.1", useBinaryFormat: true }),
    "Connect JSON over HTTP/2": createConnectTransport({ baseUrl: url, httpVersion: "2" }),
  };
}

describe("MLflow/predict on the iris classifier", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([IRIS]);
  });
  after(() => server.close());

  for (const name of ["gRPC over h2c", "gRPC-Web over HTTP/1.1", "Connect binary over HTTP/1.1", "Connect JSON over HTTP/2"]) {
    for (const [format, body] of Object.entries(irisBodies)) {
      it(`answers ${format} over ${name} with the reference predictions`, async () => {
        const client = createClient(MLflow, transports(server.url)[name]!);
        const output = await client.predict({ value: JSON.stringify(body) });
        assertIrisPredictions(output.value);
      });
    }
  }

  it("opens HTTP/2 flow-control windows wider than the 64 KiB defaults (1 MiB per stream, 16 MiB per connection)", async () => {
    const session = http2.connect(server.url);
    try {
      const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
      assert.equal(settings.initialWindowSize, 1 << 20);
      // The connection window grows by a WINDOW_UPDATE the server sends as the session
      // starts: the answer to a PING sent now comes after it, frames being in order.
      await new Promise((resolve, reject) => session.ping((error) => (error ? reject(error) : resolve(undefined))));
      assert.ok((session.state.remoteWindowSize ?? 0) >= 16 << 20, `connection window ${session.state.remoteWindowSize}`);
    } finally {
      session.destroy();
    }
  });

  it("answers a Connect JSON POST from fetch", async () => {
    const res = await fetch(`${server.url}/MLflow/predict`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ value: JSON.stringify(irisBodies.instances) }),
    });
    assert.equal(res.status, 200);
    assertIrisPredictions(((await res.json()) as { value: string }).value);
  });

  it("answers curl over HTTP/1.1 and over h2c prior knowledge", async (t) => {
    if (toolSkip("curl", commandExists("curl"), "apt-get install -y curl")) return t.skip("curl missing");
    for (const flag of ["--http1.1", "--http2-prior-knowledge"]) {
      const { stdout } = await run("curl", [
        "-sS", flag, "-w", "\n%{http_version}", "-H", "Content-Type: application/json",
        "-d", JSON.stringify({ value: JSON.stringify(irisBodies.dataframe_records) }),
        `${server.url}/MLflow/predict`,
      ]);
      const [body, version] = stdout.split("\n");
      assert.equal(version, flag === "--http1.1" ? "1.1" : "2");
      assertIrisPredictions((JSON.parse(body!) as { value: string }).value);
    }
  });

  it("answers @grpc/grpc-js with stubs loaded from proto/mlflow.proto", async () => {
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(`${ROOT}proto/mlflow.proto`)) as unknown as {
      MLflow: new (address: string, creds: grpc.ChannelCredentials) => grpc.Client & {
        predict(input: { value: string }, cb: (err: grpc.ServiceError | null, out: { value: string }) => void): void;
      };
    };
    const client = new def.MLflow(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    try {
      const output = await new Promise<{ value: string }>((resolve, reject) =>
        client.predict({ value: JSON.stringify(irisBodies.inputs) }, (err, out) => (err ? reject(err) : resolve(out))),
      );
      assertIrisPredictions(output.value);
    } finally {
      client.close();
    }
  });
});

describe("MLflow/predict on the string model (the original wrapper's semantics)", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([GREETER]);
  });
  after(() => server.close());

  it("takes the raw string and answers the model's string, on every transport", async () => {
    for (const [name, transport] of Object.entries(transports(server.url))) {
      const client = createClient(MLflow, transport);
      for (const [i, text] of greeter.texts.entries()) {
        const output = await client.predict({ value: text });
        assert.equal(output.value, greeter.labels[i], `${name}: ${JSON.stringify(text)}`);
      }
    }
  });

  it("answers python grpcio stubs generated from proto/mlflow.proto, like the original client", async (t) => {
    const present = pythonHas("grpc") && pythonHas("grpc_tools.protoc");
    if (toolSkip("python3-grpcio / python3-grpc-tools", present, "apt-get install -y python3-grpcio python3-grpc-tools")) {
      return t.skip("python grpcio missing");
    }
    const stubs = mkdtempSync(join(tmpdir(), "mlflow-stubs-"));
    await run(DEBIAN_PYTHON, ["-m", "grpc_tools.protoc", `-I${ROOT}proto`, `--python_out=${stubs}`, `--grpc_python_out=${stubs}`, "mlflow.proto"]);
    const client = `${ROOT}test/clients/seed_client.py`;
    const { stdout } = await run(DEBIAN_PYTHON, [client, stubs, `127.0.0.1:${server.port}`, "HELLO WORLD"]);
    assert.equal(stdout.trim(), "greeting");
    const farewell = await run(DEBIAN_PYTHON, [client, stubs, `127.0.0.1:${server.port}`, "Goodbye"]);
    assert.equal(farewell.stdout.trim(), "farewell");
  });
});
