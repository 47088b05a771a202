import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { Ajv } from "ajv";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { Service } from "kubernetes-models/v1";
import { parse } from "yaml";
import { DEFAULT_DRAIN_TIMEOUT_MS } from "../src/config.js";
import { ROOT } from "./helpers/server.js";

const load = (path: string) => parse(readFileSync(`${ROOT}deploy/${path}`, "utf8")) as Record<string, any>;

/**
 * The fields KServe's CRDs require or constrain for what we use (serving.kserve.io
 * API reference: ServingRuntime v1alpha1, InferenceService v1beta1); no npm package
 * ships KServe's schemas.
 */
const kserve = new Ajv({ allErrors: true, strict: false });
const servingRuntime = kserve.compile({
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  properties: {
    apiVersion: { const: "serving.kserve.io/v1alpha1" },
    kind: { const: "ServingRuntime" },
    metadata: { type: "object", required: ["name"], properties: { name: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" } } },
    spec: {
      type: "object",
      required: ["supportedModelFormats", "containers"],
      properties: {
        supportedModelFormats: {
          type: "array",
          minItems: 1,
          items: { type: "object", required: ["name"], additionalProperties: false, properties: { name: { type: "string" }, version: { type: "string" }, autoSelect: { type: "boolean" }, priority: { type: "integer" } } },
        },
        protocolVersions: { type: "array", items: { enum: ["v1", "v2", "grpc-v1", "grpc-v2"] } },
        containers: { type: "array", minItems: 1, items: { type: "object", required: ["name", "image"] } },
        annotations: { type: "object", additionalProperties: { type: "string" } },
      },
    },
  },
});
const inferenceService = kserve.compile({
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  properties: {
    apiVersion: { const: "serving.kserve.io/v1beta1" },
    kind: { const: "InferenceService" },
    spec: {
      type: "object",
      required: ["predictor"],
      properties: {
        predictor: {
          type: "object",
          required: ["model"],
          properties: {
            model: {
              type: "object",
              required: ["modelFormat", "storageUri"],
              properties: {
                modelFormat: { type: "object", required: ["name"], properties: { name: { type: "string" }, version: { type: "string" } } },
                protocolVersion: { enum: ["v1", "v2", "grpc-v2"] },
                runtime: { type: "string" },
                storageUri: { type: "string", pattern: "^[a-z0-9]+://" },
              },
            },
          },
        },
      },
    },
  },
});

describe("deploy/ manifests", () => {
  it("the Kubernetes Deployment, Service and HPA are valid against the Kubernetes schemas", () => {
    const deployment = new Deployment(load("kubernetes/deployment.yaml") as never);
    deployment.validate();
    new Service(load("kubernetes/service.yaml") as never).validate();
    const hpa = new HorizontalPodAutoscaler(load("kubernetes/hpa.yaml") as never);
    hpa.validate();
    // They fit together: probes on the served port, the Service and HPA aim at the Deployment.
    const container = deployment.spec!.template.spec!.containers[0]!;
    assert.equal(container.readinessProbe?.grpc?.port, container.ports![0]!.containerPort);
    assert.equal(hpa.spec!.scaleTargetRef.name, deployment.metadata!.name);
    assert.deepEqual(load("kubernetes/service.yaml").spec.selector, deployment.spec!.selector.matchLabels);
    // SIGTERM: drain delay, then the drain timeout, then the process's hard exit a second later, all within the grace period.
    const env = Object.fromEntries(container.env!.map((e) => [e.name, Number(e.value)]));
    const drainMs = env.MLFLOW_CONNECT_DRAIN_DELAY_MS! + (env.MLFLOW_CONNECT_DRAIN_TIMEOUT_MS ?? DEFAULT_DRAIN_TIMEOUT_MS) + 1000;
    assert.ok(env.MLFLOW_CONNECT_DRAIN_DELAY_MS! > 0, "a drain delay while the endpoints update");
    assert.ok(drainMs <= deployment.spec!.template.spec!.terminationGracePeriodSeconds! * 1000, `${drainMs} ms of drain within the grace period`);
  });

  it("the KServe ServingRuntime and InferenceService are valid and fit together", () => {
    const runtime = load("kserve/serving-runtime.yaml");
    const isvc = load("kserve/inference-service.yaml");
    assert.ok(servingRuntime(runtime), JSON.stringify(servingRuntime.errors));
    assert.ok(inferenceService(isvc), JSON.stringify(inferenceService.errors));
    const formats = (runtime.spec.supportedModelFormats as Array<{ name: string }>).map((f) => f.name);
    assert.deepEqual(formats, ["mlflow", "onnx"]);
    assert.deepEqual(runtime.spec.protocolVersions, ["v2", "grpc-v2"]);
    assert.equal(isvc.spec.predictor.model.runtime, runtime.metadata.name);
    assert.ok(formats.includes(isvc.spec.predictor.model.modelFormat.name));
    // The container serves what KServe's storage initializer downloads, on the port it declares.
    const container = runtime.spec.containers[0];
    assert.deepEqual(container.args.slice(0, 1), ["{{.Name}}=/mnt/models"], "served under the InferenceService's name");
    assert.equal(String(container.args[container.args.indexOf("--port") + 1]), String(container.ports[0].containerPort));
  });

  it("the Dockerfile runs as non-root, with a UTF-8 locale, production dependencies and a HEALTHCHECK", () => {
    const dockerfile = readFileSync(`${ROOT}Dockerfile`, "utf8");
    // The current Node LTS line, in both stages.
    assert.equal(dockerfile.match(/^FROM node:24-bookworm-slim( AS build)?$/gm)?.length, 2);
    assert.match(dockerfile, /npm ci --omit=dev/);
    assert.match(dockerfile, /LANG=C\.UTF-8/);
    assert.match(dockerfile, /^USER node$/m);
    assert.match(dockerfile, /^HEALTHCHECK .*CMD \["node", "bin\/healthcheck\.js"\]$/m);
  });
});

describe("the container image", () => {
  // Building needs a running container engine and the node:24 base image from a
  // container registry: neither exists on this project's machines (only the npm and
  // Debian registries are reachable), so this skips with the reason, in CI too.
  const engine = ["docker", "podman"].find((tool) => spawnSync(tool, ["info"], { stdio: "ignore", timeout: 20_000 }).status === 0);
  const skip = engine ? false : "no running container engine (docker/podman info failed) and no container registry reachable";
  if (skip) process.stdout.write(`# skipping: ${skip}\n`);

  it("builds", { skip }, () => {
    const build = spawnSync(engine!, ["build", "-t", "mlflow-connect:test", ROOT], { stdio: "inherit", timeout: 600_000 });
    assert.equal(build.status, 0);
  });
});
