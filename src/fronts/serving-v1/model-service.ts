import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import {
  GetModelResponseSchema,
  ListModelsResponseSchema,
  ModelService,
  type PredictStreamRequest,
  type PredictStreamResponse,
  PredictStreamResponseSchema,
} from "../../../gen/mlflow/serving/v1/model_service_pb.js";
import { invalidInput } from "../../core/errors.js";
import type { InferenceService } from "../../core/inference-service.js";
import { noteModel } from "../call-info.js";
import { rpcLimits } from "../call-limits.js";
import { toConnectError } from "../error-codes.js";
import { modelToProto, requestFromProto, responseToProto, wantsRaw } from "./convert.js";

/** How many stream messages run at once; answers still leave in request order. */
const STREAM_WINDOW = 16;

/** The typed API, mlflow.serving.v1.ModelService. */
export function createModelService(core: InferenceService, defaultDeadlineMs: number): ServiceImpl<typeof ModelService> {
  async function predict(req: Parameters<ServiceImpl<typeof ModelService>["predict"]>[0], context: HandlerContext) {
    const model = core.model(req.modelName, req.modelVersion);
    noteModel(context, model.name);
    const request = { ...requestFromProto(model, req), ...rpcLimits(context, defaultDeadlineMs) };
    return responseToProto(await core.infer(request), wantsRaw(req));
  }

  async function streamResult(msg: PredictStreamRequest, context: HandlerContext): Promise<PredictStreamResponse> {
    try {
      if (!msg.request) throw invalidInput("stream message has no request");
      return create(PredictStreamResponseSchema, { result: { case: "response", value: await predict(msg.request, context) } });
    } catch (error) {
      const e = toConnectError(error);
      return create(PredictStreamResponseSchema, { result: { case: "error", value: { code: codeToString(e.code), message: e.rawMessage } } });
    }
  }

  return {
    predict,

    async getModel(req) {
      return create(GetModelResponseSchema, { model: modelToProto(core.model(req.name, req.version)) });
    },

    async listModels() {
      return create(ListModelsResponseSchema, { models: core.models().map(modelToProto) });
    },

    async *predictStream(requests, context) {
      // Reading goes on beside answering: each answer leaves as soon as it and the ones
      // before it are ready, so a client that waits for an answer before sending its next
      // request is served; at most STREAM_WINDOW requests run at once.
      const window: Array<Promise<PredictStreamResponse>> = [];
      let space: (() => void) | undefined;
      let arrived: (() => void) | undefined;
      let ended = false;
      const reader = (async () => {
        try {
          for await (const msg of requests) {
            while (window.length >= STREAM_WINDOW) await new Promise<void>((resolve) => (space = resolve));
            window.push(streamResult(msg, context));
            arrived?.();
          }
        } finally {
          ended = true;
          arrived?.();
        }
      })();
      for (;;) {
        if (window.length === 0) {
          if (ended) break;
          await new Promise<void>((resolve) => (arrived = resolve));
          continue;
        }
        const answer = await window[0]!;
        window.shift();
        space?.();
        yield answer;
      }
      await reader; // surfaces a broken request stream as the RPC's error
    },
  };
}

export { ModelService };
