import type { InferenceRequest, InferenceResponse } from "../../core/inference-service.js";
import { type ServedModel, singleStringInput } from "../../core/served-model.js";
import { parseScoringJson } from "../../mlflow/scoring-format.js";
import { predictionsJson, requestFromScoring } from "../mlflow-json.js";

/**
 * Input.value of the original wrapper's contract: the raw string for a model with
 * one string input (one row), else a JSON body in an MLflow scoring format.
 */
export function requestFromSeed(model: ServedModel, value: string): InferenceRequest {
  const text = singleStringInput(model);
  if (text) {
    return {
      model: model.name,
      inputs: { [text.name]: { dtype: "string", shape: text.shape.length === 2 ? [1, 1] : [1], data: [value] } },
    };
  }
  return requestFromScoring(model, parseScoringJson(value));
}

/**
 * Output.value: for a model with one string input (the raw-string case), the string
 * itself when the prediction is a single string, as the original wrapper answered;
 * for every other model MLflow's JSON response {"predictions": ...}.
 */
export function seedValueFromResponse(model: ServedModel, response: InferenceResponse): string {
  const [only] = response.outputs;
  if (singleStringInput(model) && response.outputs.length === 1 && only![1].dtype === "string" && only![1].data.length === 1) {
    return (only![1].data as string[])[0]!;
  }
  return predictionsJson(response);
}
