import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { MLflow, OutputSchema } from "../../../gen/mlflow_pb.js";
import type { InferenceService } from "../../core/inference-service.js";
import { noteModel } from "../call-info.js";
import { rpcLimits } from "../call-limits.js";
import { requestFromSeed, seedValueFromResponse } from "./convert.js";

/** The original wrapper's service: `MLflow/predict`, string in, string out, on the default model. */
export function createSeedService(core: InferenceService, defaultDeadlineMs: number): ServiceImpl<typeof MLflow> {
  return {
    async predict(input, context) {
      const model = core.model();
      noteModel(context, model.name);
      const response = await core.infer({ ...requestFromSeed(model, input.value), ...rpcLimits(context, defaultDeadlineMs) });
      return create(OutputSchema, { value: seedValueFromResponse(model, response) });
    },
  };
}

export { MLflow };
