import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { MLflow } from "../../gen/mlflow_pb.js";
import { ModelService } from "../../gen/mlflow/serving/v1/model_service_pb.js";
import { DataType, TensorSchema } from "../../gen/mlflow/serving/v1/tensor_pb.js";
import { reference } from "../helpers/reference.js";
import { IRIS, ROOT, type RunningServer, startServer } from "../helpers/server.js";

const TOKEN = "s3cret-token";
const { iris } = reference;
const seed = { value: JSON.stringify({ inputs: iris.rows.slice(0, 1) }) };
const input = create(TensorSchema, { dtype: DataType.FLOAT32, shape: [1n, 4n], floatData: iris.rows[0]! });

const bearer = (token: string | undefined): Interceptor => (next) => (req) => {
  if (token !== undefined) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

function transports(url: string, token: string | undefined): Record<string, Transport> {
  const interceptors = [bearer(token)];
  return {
    gRPC: createGrpcTransport({ baseUrl: url, interceptors }),
    "gRPC-Web": createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1", interceptors }),
    Connect: createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors }),
  };
}

describe("bearer-token authentication", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([IRIS], { authToken: TOKEN });
  });
  after(() => server.close());

  it("refuses RPCs without or with a wrong token on gRPC (lean path too), gRPC-Web and Connect, and accepts the token", async () => {
    for (const token of [undefined, "wrong", `${TOKEN}x`]) {
      for (const [name, transport] of Object.entries(transports(server.url, token))) {
        for (const call of [() => createClient(MLflow, transport).predict(seed), () => createClient(ModelService, transport).predict({ inputs: { input } })]) {
          const error = await call().then(
            () => assert.fail(`${name} with ${token}: accepted`),
            (e: unknown) => ConnectError.from(e),
          );
          assert.equal(error.code, Code.Unauthenticated, `${name} with ${String(token)}: ${error.message}`);
        }
      }
    }
    for (const transport of Object.values(transports(server.url, TOKEN))) {
      assert.match((await createClient(MLflow, transport).predict(seed)).value, /predictions/);
      assert.equal((await createClient(ModelService, transport).predict({ inputs: { input } })).outputs.label!.int64Data.length, 1);
    }
  });

  it("refuses @grpc/grpc-js without the token with UNAUTHENTICATED", async () => {
    const def = grpc.loadPackageDefinition(protoLoader.loadSync(`${ROOT}proto/mlflow.proto`)) as unknown as {
      MLflow: new (a: string, c: grpc.ChannelCredentials) => grpc.Client & { predict(i: object, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, o: { value: string }) => void): void };
    };
    const client = new def.MLflow(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const withToken = new grpc.Metadata();
    withToken.set("authorization", `Bearer ${TOKEN}`);
    try {
      const refused = await new Promise<grpc.ServiceError>((resolve, reject) => client.predict(seed, new grpc.Metadata(), (e) => (e ? resolve(e) : reject(new Error("accepted")))));
      assert.equal(refused.code, grpc.status.UNAUTHENTICATED, refused.details);
      assert.match(refused.details, /missing or wrong bearer token/);
      const ok = await new Promise<{ value: string }>((resolve, reject) => client.predict(seed, withToken, (e, o) => (e ? reject(e) : resolve(o))));
      assert.match(ok.value, /predictions/);
    } finally {
      client.close();
    }
  });

  it("refuses /invocations, OIP REST and /metrics with 401, and accepts the token", async () => {
    const requests: Array<[string, RequestInit, (body: unknown) => void]> = [
      [`/invocations`, { method: "POST", body: JSON.stringify({ inputs: iris.rows }), headers: { "content-type": "application/json" } }, (b) => assert.equal((b as { error_code: string }).error_code, "UNAUTHENTICATED")],
      [`/v2/models/iris`, { method: "GET" }, (b) => assert.match((b as { error: string }).error, /bearer token/)],
      [`/v2/repository/index`, { method: "POST" }, (b) => assert.match((b as { error: string }).error, /bearer token/)],
      [`/metrics`, { method: "GET" }, () => undefined],
    ];
    for (const [path, init, check] of requests) {
      for (const authorization of [undefined, "Bearer nope", `Basic ${TOKEN}`]) {
        const res = await fetch(`${server.url}${path}`, { ...init, headers: { ...(init.headers as object), ...(authorization ? { authorization } : {}) } });
        assert.equal(res.status, 401, `${path} with ${authorization}`);
        assert.equal(res.headers.get("www-authenticate"), "Bearer");
        check(await res.json());
      }
      const ok = await fetch(`${server.url}${path}`, { ...init, headers: { ...(init.headers as object), authorization: `Bearer ${TOKEN}` } });
      assert.equal(ok.status, 200, path);
    }
  });

  it("leaves health probes and the web demo's files open", async () => {
    for (const path of ["/ping", "/health", "/v2/health/live", "/v2/health/ready", "/"]) {
      assert.equal((await fetch(`${server.url}${path}`)).status, 200, path);
    }
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    assert.equal((await health.check({ service: "" })).status, 1);
  });
});

describe("CORS for browsers on other origins", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([IRIS], { authToken: TOKEN, corsOrigins: ["https://app.example"] });
  });
  after(() => server.close());

  const preflight = (origin: string) =>
    fetch(`${server.url}/mlflow.serving.v1.ModelService/Predict`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,connect-protocol-version,authorization" },
    });

  it("answers a preflight from an allowed origin with Connect's headers and Authorization", async () => {
    const res = await preflight("https://app.example");
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "https://app.example");
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const h of ["content-type", "connect-protocol-version", "connect-timeout-ms", "x-grpc-web", "authorization"]) assert.ok(allowed.includes(h), h);
    assert.match(res.headers.get("access-control-allow-methods") ?? "", /POST/);
    const call = await fetch(`${server.url}/MLflow/predict`, {
      method: "POST",
      headers: { origin: "https://app.example", "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(seed),
    });
    assert.equal(call.status, 200);
    assert.equal(call.headers.get("access-control-allow-origin"), "https://app.example");
    assert.match(call.headers.get("access-control-expose-headers") ?? "", /grpc-status/i);
  });

  it("gives a refused origin no CORS headers, so the browser blocks it", async () => {
    const res = await preflight("https://evil.example");
    assert.equal(res.headers.get("access-control-allow-origin"), null);
    const call = await fetch(`${server.url}/MLflow/predict`, {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(seed),
    });
    assert.equal(call.headers.get("access-control-allow-origin"), null);
  });
});
