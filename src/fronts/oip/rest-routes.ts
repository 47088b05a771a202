import type { FastifyInstance } from "fastify";
import { bindTensors } from "../../core/bind-inputs.js";
import { invalidInput, quote } from "../../core/errors.js";
import type { InferenceService } from "../../core/inference-service.js";
import type { ModelRepository } from "../../core/model-repository.js";
import { OIP_DATATYPES, type Tensor, tensorFromJson } from "../../core/tensor.js";
import { noteHttpModel } from "../call-info.js";
import { httpLimits } from "../call-limits.js";
import { replyHttpError } from "../error-codes.js";
import { fieldValues, shapeFromWire } from "../typed-fields.js";
import { checkCount, checkRequestedOutputs, inputDType, modelMetadata, selectOutputs, tensorsByName } from "./convert.js";
import { type ModelControlMode, createRepositoryGuard } from "./repository-guard.js";

export interface OipRestOptions {
  core: InferenceService;
  repository: ModelRepository;
  server: { name: string; version: string };
  bodyLimit: number;
  defaultDeadlineMs: number;
  logError: (error: unknown, message: string) => void;
  /** Whether clients may load and unload models (repository-guard.ts). */
  modelControlMode: ModelControlMode;
  /** Origins whose pages may call the server (--cors-origin); others may not change the repository. */
  corsOrigins: readonly string[];
}

interface InferRequestBody {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs?: Array<{ name?: string; shape?: number[]; datatype?: string; data?: unknown }>;
  outputs?: Array<{ name?: string }>;
}

type ModelParams = { name: string; version?: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A JSON input tensor of OIP REST as a core tensor: data flat or nested, in the declared shape. */
function tensorFromRest(input: NonNullable<InferRequestBody["inputs"]>[number], index: number): [string, Tensor] {
  if (typeof input?.name !== "string") throw invalidInput(`inputs[${index}] has no name`);
  const { name } = input;
  if (!Array.isArray(input.shape) || !input.shape.every((d) => typeof d === "number")) throw invalidInput(`input ${quote(name)} has no shape, a list of numbers`);
  if (typeof input.datatype !== "string") throw invalidInput(`input ${quote(name)} has no datatype`);
  const dtype = inputDType(name, input.datatype);
  const shape = shapeFromWire(name, input.shape);
  // Data may be flat or nested; either way its elements fill the declared shape.
  const parsed = tensorFromJson(name, Array.isArray(input.data) ? input.data : [input.data], dtype);
  checkCount(name, shape, parsed.data.length);
  return [name, { ...parsed, shape }];
}

/**
 * The Open Inference Protocol's REST API (KServe V2), with the model repository
 * extension. Errors are {"error": "..."} with the matching HTTP status.
 */
export async function oipRestRoutes(app: FastifyInstance, opts: OipRestOptions): Promise<void> {
  const { core, repository } = opts;
  // An empty body is fine where the spec makes the body optional (repository calls).
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string", bodyLimit: opts.bodyLimit }, (_req, body, done) => {
    try {
      done(null, body === "" ? {} : JSON.parse(body as string));
    } catch (error) {
      done(Object.assign(new Error(`the body is not valid JSON: ${(error as Error).message}`), { statusCode: 400 }), undefined);
    }
  });
  app.setErrorHandler((error, req, reply) => replyHttpError(error, reply, opts.logError, `${req.method} ${req.url}`, (_code, message) => ({ error: message })));

  app.get("/v2", async () => ({ name: opts.server.name, version: opts.server.version, extensions: ["model_repository"] }));
  app.get("/v2/health/live", async () => ({ live: true }));
  // The spec answers readiness with the status code: 200 ready, 4xx not.
  app.get("/v2/health/ready", async (_req, reply) => reply.code(core.ready() ? 200 : 400).send({ ready: core.ready() }));

  for (const prefix of ["/v2/models/:name", "/v2/models/:name/versions/:version"]) {
    app.get<{ Params: ModelParams }>(prefix, async (req) => modelMetadata(core.model(req.params.name, req.params.version)));
    app.get<{ Params: ModelParams }>(`${prefix}/ready`, async (req, reply) => {
      const ready = core.models().some((m) => m.name === req.params.name && (!req.params.version || m.version === req.params.version));
      return reply.code(ready ? 200 : 400).send({ name: req.params.name, ready });
    });
    app.post<{ Params: ModelParams; Body: InferRequestBody }>(`${prefix}/infer`, { bodyLimit: opts.bodyLimit }, async (req, reply) => {
      const body = req.body;
      if (typeof body !== "object" || body === null || !Array.isArray(body.inputs)) throw invalidInput('the request needs "inputs", a list of tensors');
      if (body.outputs !== undefined && (!Array.isArray(body.outputs) || !body.outputs.every((o) => typeof o?.name === "string"))) {
        throw invalidInput('"outputs" must be a list of {"name": ...} objects');
      }
      if (body.parameters !== undefined && body.parameters !== null && !isObject(body.parameters)) throw invalidInput('"parameters" must be an object');
      const model = core.model(req.params.name, req.params.version);
      noteHttpModel(req.raw, model.name);
      const tensors = tensorsByName(body.inputs.map(tensorFromRest));
      const requested = (body.outputs ?? []).map((o) => o.name!);
      checkRequestedOutputs(model, requested);
      const response = await core.infer({
        model: model.name,
        inputs: bindTensors(model, tensors),
        params: body.parameters ?? undefined,
        ...httpLimits(reply, opts.defaultDeadlineMs),
      });
      const outputs = selectOutputs(response, requested);
      return {
        model_name: response.model,
        ...(response.version ? { model_version: response.version } : {}),
        ...(body.id !== undefined ? { id: body.id } : {}),
        outputs: outputs.map(([name, t]) => ({ name, datatype: OIP_DATATYPES[t.dtype], shape: t.shape, data: fieldValues(t).map((v) => (typeof v === "bigint" ? Number(v) : v)) })),
      };
    });
  }

  // The repository extension, as Triton and MLServer serve it.
  app.post<{ Body: { ready?: boolean } | undefined }>("/v2/repository/index", async (req) => repository.index(req.body?.ready === true));
  // Route-level onRequest: refused before a body is read.
  const guarded = { onRequest: createRepositoryGuard(opts.modelControlMode, opts.corsOrigins) };
  app.post<{ Params: ModelParams }>("/v2/repository/models/:name/load", guarded, async (req) => {
    await repository.load(req.params.name);
    return {};
  });
  app.post<{ Params: ModelParams }>("/v2/repository/models/:name/unload", guarded, async (req) => {
    await repository.unload(req.params.name);
    return {};
  });
}
