import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { Ajv } from "ajv";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { Service } from "kubernetes-models/v1";
import { parse } from "yaml";
import { DEFAULT_DRAIN_TIMEOUT_MS } from "../src/config.js";
import { ROOT } from "./helpers/server.js";
import { untestableSkip } from "./helpers/tools.js";

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

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(dockerfile: string): Array<{ keyword: string; args: string }> {
  return dockerfile
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const [keyword, ...rest] = l.split(/\s+/);
      return { keyword: keyword!.toUpperCase(), args: rest.join(" ") };
    });
}

/** The files and folders a JSON-form instruction (["node", "bin/x.js", ...]) names. */
const jsonArgs = (args: string) => JSON.parse(args.replace(/^.*?(\[.*\])$/, "$1")) as string[];

describe("the Dockerfile, checked without a container engine", () => {
  const dockerfile = instructions(readFileSync(`${ROOT}Dockerfile`, "utf8"));
  const ignored = readFileSync(`${ROOT}.dockerignore`, "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  /** Each stage's instructions, by name ("" for the last, unnamed one). */
  const stages = new Map<string, Array<{ keyword: string; args: string }>>();
  let current: Array<{ keyword: string; args: string }> = [];
  for (const i of dockerfile) {
    if (i.keyword === "FROM") stages.set(/ AS (\S+)$/i.exec(i.args)?.[1] ?? "", (current = []));
    current.push(i);
  }
  const final = stages.get("")!;
  /** What a stage's COPY instructions put in /app: target path -> source path (in the context or another stage). */
  const copies = (stage: Array<{ keyword: string; args: string }>) =>
    stage
      .filter((i) => i.keyword === "COPY")
      .flatMap((i) => {
        const from = /--from=(\S+)/.exec(i.args)?.[1];
        const parts = i.args.replace(/--\S+/g, "").trim().split(/\s+/);
        const target = parts.pop()!;
        return parts.map((source) => ({ from, source, target: target.endsWith("/") ? `${target.replace(/^\.\/?/, "")}${source.split("/").pop()}` : target }));
      });
  const copied = (stage: Array<{ keyword: string; args: string }>, path: string) => copies(stage).some((c) => path === c.target || path.startsWith(`${c.target}/`) || c.target === ".");

  it("has a build stage and a final stage on the same Node slim image", () => {
    assert.deepEqual([...stages.keys()], ["build", ""]);
    const images = [...stages.values()].map((stage) => stage[0]!.args.split(" ")[0]);
    assert.match(images[0]!, /^node:\d+-bookworm-slim$/);
    assert.equal(images[1], images[0]);
  });

  it("copies only files that exist in the build context and that .dockerignore lets through", () => {
    for (const { from, source } of [...copies(stages.get("build")!), ...copies(final)]) {
      if (from) continue;
      assert.ok(existsSync(`${ROOT}${source}`), `COPY ${source}: no such file in the repository`);
      assert.ok(!ignored.some((p) => source === p || source.startsWith(`${p}/`)), `COPY ${source}: excluded by .dockerignore`);
    }
  });

  it("gives the build stage every file `npm run build` reads, and takes from it what the build writes", () => {
    const build = stages.get("build")!;
    assert.ok(build.some((i) => i.keyword === "RUN" && /npm run build/.test(i.args)), "the build stage runs npm run build");
    const script = (JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { scripts: Record<string, string> }).scripts.build!;
    // Every file the build script names, and the folders its TypeScript projects include.
    const files = [...script.matchAll(/(?:-p |node )(\S+)/g)].map((m) => m[1]!);
    assert.ok(files.length >= 4, script);
    const included = (JSON.parse(readFileSync(`${ROOT}tsconfig.build.json`, "utf8")) as { include: string[]; extends: string }).include;
    for (const path of [...files, ...included, "tsconfig.json", "web-demo"]) assert.ok(copied(build, path), `${path}, read by npm run build, is copied into the build stage`);
    // The final stage gets dist/ from it: the bundle bin/ starts and the worker entry.
    assert.ok(copies(final).some((c) => c.from === "build" && c.source === "/app/dist" && c.target === "dist"), "COPY --from=build /app/dist dist");
    const bundler = readFileSync(`${ROOT}scripts/bundle-server.js`, "utf8");
    assert.match(bundler, /outfile: "dist\/src\/cli\.bundle\.js"/);
  });

  it("starts an entry file the image holds, serves a model it holds, and health-checks with a script it holds", () => {
    const entry = jsonArgs(final.find((i) => i.keyword === "ENTRYPOINT")!.args);
    assert.deepEqual(entry.slice(0, 1), ["node"]);
    const bin = entry[1]!;
    assert.ok(existsSync(`${ROOT}${bin}`) && copied(final, bin), `${bin} is in the image`);
    // bin/ imports the bundle the build writes into dist/, copied from the build stage.
    const imported = /from "\.\.\/(dist\/[^"]+)"/.exec(readFileSync(`${ROOT}${bin}`, "utf8"))?.[1];
    assert.equal(imported, "dist/src/cli.bundle.js");
    assert.ok(copied(final, imported), `${imported} is in the image`);
    for (const model of jsonArgs(final.find((i) => i.keyword === "CMD")!.args)) {
      assert.ok(existsSync(`${ROOT}${model}/MLmodel`) && copied(final, model), `the default model ${model} is in the image`);
    }
    const check = jsonArgs(final.find((i) => i.keyword === "HEALTHCHECK")!.args);
    assert.ok(existsSync(`${ROOT}${check[1]}`) && copied(final, check[1]!), `${check[1]} is in the image`);
    // The health check and the server agree on the port: the image's environment sets both.
    const env = final.filter((i) => i.keyword === "ENV").map((i) => i.args).join(" ");
    assert.match(env, /MLFLOW_CONNECT_PORT=50051/);
    assert.match(final.find((i) => i.keyword === "EXPOSE")!.args, /^50051$/);
    // package.json (read at start for the version) and the production dependencies the bundle leaves outside.
    assert.ok(copied(final, "package.json"));
    const deps = (JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { dependencies: Record<string, string> }).dependencies;
    for (const external of ["onnxruntime-node", "pino"]) assert.ok(deps[external], `${external} is a production dependency`);
  });
});

describe("the container image", () => {
  // Building needs a running container engine and the Node base image from a
  // container registry: this project's machines and CI have neither (the docker
  // client here has no daemon), so this always skips, with its reason, CI included;
  // the Dockerfile is checked statically above instead.
  const engine = ["docker", "podman"].find((tool) => spawnSync(tool, ["info"], { stdio: "ignore", timeout: 20_000 }).status === 0);
  const skip = engine
    ? false
    : untestableSkip("building and running the container image", "no running container engine (docker/podman info failed) and no container registry to pull its base image from");

  it("builds", { skip }, () => {
    const build = spawnSync(engine!, ["build", "-t", "mlflow-connect:test", ROOT], { stdio: "inherit", timeout: 600_000 });
    assert.equal(build.status, 0);
  });
});
