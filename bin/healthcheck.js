#!/usr/bin/env node
// The container's HEALTHCHECK: GET /ping on this machine, over TLS when the server
// serves TLS (MLFLOW_CONNECT_TLS_CERT set). /ping stays open under --auth-token.
// Exit 0 when the server answers 200, else 1.
import http from "node:http";
import https from "node:https";

const port = Number(process.env.MLFLOW_CONNECT_PORT ?? 50051);
const tls = Boolean(process.env.MLFLOW_CONNECT_TLS_CERT);
// The certificate names the service, not 127.0.0.1: this local probe checks liveness, not identity.
const request = (tls ? https : http).get({ host: "127.0.0.1", port, path: "/ping", timeout: 2000, rejectUnauthorized: false }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
request.on("timeout", () => request.destroy(new Error("timeout")));
request.on("error", () => process.exit(1));
