import { bindScoringInput } from "../core/bind-inputs.js";
import type { InferenceRequest, InferenceResponse } from "../core/inference-service.js";
import type { ServedModel } from "../core/served-model.js";
import { tensorToJson } from "../core/tensor.js";
import { type ScoringRequest, formatPredictions } from "../mlflow/scoring-format.js";

/** A parsed MLflow scoring request as the core's request, for the seed and REST fronts. */
export function requestFromScoring(model: ServedModel, scoring: ScoringRequest): InferenceRequest {
  return { model: model.name, inputs: bindScoringInput(model, scoring.input), params: scoring.params };
}

/** MLflow's JSON answer, `{"predictions": ...}`, numbers as JSON numbers. */
export function predictionsJson(response: InferenceResponse): string {
  return JSON.stringify(formatPredictions(response.outputs.map(([name, t]) => [name, tensorToJson(t)] as const)));
}
