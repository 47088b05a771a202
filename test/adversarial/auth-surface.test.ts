import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import type { DescService } from "@bufbuild/protobuf";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ServerReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { GRPCInferenceService } from "../../gen/inference/grpc_predict_v2_pb.js";
import { ModelService } from "../../gen/mlflow/serving/v1/model_service_pb.js";
import { MLflow } from "../../gen/mlflow_pb.js";
import { IRIS, type RunningServer, startServer } from "../helpers/server.js";

const TOKEN = "s3cret-token";

/** What README's "Limits and security" says stays open without the token: probes and the demo's files. */
const DOCUMENTED_OPEN = ["/*", "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch", "/health", "/ping", "/v2/health/live", "/v2/health/ready"];
const SERVICES: DescService[] = [MLflow, ModelService, GRPCInferenceService, Health, ServerReflectionV1, ServerReflectionV1alpha];

/** A URL for a route pattern: parameters and the wildcard filled in. */
function concrete(url: string): string {
  return url.replace(":name", "iris").replace(":version", "1").replace("*", "index.html");
}

/** A plain HTTP/1.1 request with any method (fetch refuses some); resolves with the status and www-authenticate. */
function request(url: string, method: string): Promise<{ status: number; challenge: string | undefined }> {
  return new Promise((resolve, reject) => {
    const withBody = ["POST", "PUT", "PATCH", "QUERY"].includes(method);
    const req = http.request(url, { method, headers: withBody ? { "content-type": "application/json" } : {} }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode!, challenge: res.headers["www-authenticate"] }));
    });
    req.on("error", reject);
    req.end(withBody ? "{}" : undefined);
  });
}

/** One gRPC call (an empty message) over raw HTTP/2; resolves with its grpc-status. */
function grpcStatus(session: http2.ClientHttp2Session, path: string, authorization?: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...(authorization ? { authorization } : {}),
    });
    let inHeaders: string | undefined;
    let inTrailers: string | undefined;
    let responded = false;
    stream.on("response", (headers) => {
      responded = true;
      inHeaders = headers["grpc-status"] as string | undefined;
    });
    stream.on("trailers", (trailers) => (inTrailers = trailers["grpc-status"] as string | undefined));
    stream.on("data", () => undefined);
    // A stream that started answering (headers without a status) and was cancelled by us was let in.
    stream.on("close", () => resolve(inHeaders ?? inTrailers ?? (responded ? "streaming" : undefined)));
    stream.on("error", reject);
    // A Watch stream never ends by itself: cancel it once the server has answered.
    stream.on("response", (headers) => {
      if (path.endsWith("/Watch") && headers["grpc-status"] === undefined) setImmediate(() => stream.close(http2.constants.NGHTTP2_CANCEL));
    });
    stream.end(Buffer.alloc(5)); // one empty, uncompressed message
  });
}

describe("authentication covers the whole surface", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer([IRIS], { authToken: TOKEN, modelControlMode: "explicit" });
  });
  after(() => server.close());

  it("refuses every registered HTTP route, with every method it takes, without the token (401), except the documented open list", async () => {
    const routes = server.app.routes().filter((r) => r.method !== "OPTIONS" && http.METHODS.includes(r.method));
    assert.ok(routes.length >= 100, `only ${routes.length} routes registered`);
    const open = new Set<string>();
    for (const { method, url } of routes) {
      const { status, challenge } = await request(`${server.url}${concrete(url)}`, method);
      if (status === 401) assert.equal(challenge, "Bearer", `${method} ${url}`);
      else open.add(url);
    }
    assert.deepEqual([...open].sort(), DOCUMENTED_OPEN);
    // Open routes are open with every method they take; refused ones refused with every method.
    for (const { method, url } of routes.filter((r) => open.has(r.url))) {
      assert.notEqual((await request(`${server.url}${concrete(url)}`, method)).status, 401, `${method} ${url}`);
    }
  });

  it("answers every RPC of every service UNAUTHENTICATED over gRPC without the token (lean and full paths), but health", async () => {
    const session = http2.connect(server.url);
    try {
      let checked = 0;
      for (const service of SERVICES) {
        for (const method of service.methods) {
          const path = `/${service.typeName}/${method.name}`;
          for (const authorization of [undefined, "Bearer wrong", `Basic ${TOKEN}`]) {
            const status = await grpcStatus(session, path, authorization);
            if (service === Health) assert.ok(status === "0" || status === "streaming", `${path}: ${status}`);
            else assert.equal(status, "16", `${path} with ${String(authorization)}`);
          }
          checked++;
        }
      }
      assert.equal(checked, SERVICES.reduce((n, s) => n + s.methods.length, 0));
      // The same path with the token is served (the refusals above were the token's doing).
      assert.equal(await grpcStatus(session, "/inference.GRPCInferenceService/ServerLive", `Bearer ${TOKEN}`), "0");
    } finally {
      session.close();
    }
  });

  it("lets the static wildcard serve only the demo's files", async () => {
    for (const path of ["/%2e%2e/package.json", "/..%2fpackage.json", "/%2e%2e/%2e%2e/etc/passwd", "/index.html/../../package.json"]) {
      const res = await fetch(`${server.url}${path}`);
      const body = await res.text();
      assert.ok(res.status === 404 || res.status === 403 || res.status === 401, `${path}: ${res.status}`);
      assert.doesNotMatch(body, /"name": "mlflow-connect"|root:/, path);
    }
  });
});
