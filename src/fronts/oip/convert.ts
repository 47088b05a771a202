import type { InferParameter } from "../../../gen/inference/grpc_predict_v2_pb.js";
import { invalidInput, quote } from "../../core/errors.js";
import type { InferenceResponse } from "../../core/inference-service.js";
import type { ServedModel } from "../../core/served-model.js";
import { type DType, OIP_DATATYPES, type Tensor, dtypeFromOip, elementCount, formatShape } from "../../core/tensor.js";
import { protoMapEntries } from "../proto-map.js";

/** The dtype of an input's OIP datatype; an unknown one is refused. */
export function inputDType(name: string, datatype: string): DType {
  const dtype = dtypeFromOip(datatype);
  if (!dtype) throw invalidInput(`input ${quote(name)} has an unknown datatype ${quote(datatype)} (expected one of ${Object.values(OIP_DATATYPES).join(", ")})`);
  return dtype;
}

/** Checks that the data holds as many elements as the declared shape. */
export function checkCount(name: string, shape: number[], count: number): void {
  if (count !== elementCount(shape)) throw invalidInput(`input ${quote(name)} has ${count} elements for shape ${formatShape(shape)}`);
}

/** Input tensors by name, refusing a name sent twice (the second would silently replace the first). */
export function tensorsByName(tensors: ReadonlyArray<readonly [string, Tensor]>): Record<string, Tensor> {
  const names = new Set<string>();
  for (const [name] of tensors) {
    if (names.has(name)) throw invalidInput(`input ${quote(name)} is sent twice`);
    names.add(name);
  }
  return Object.fromEntries(tensors);
}

/**
 * Checks the outputs a client asks for, before the model runs: each must exist and be
 * asked for once, as every copy would be sent (a small request naming a large output
 * thousands of times would make an answer thousands of times larger).
 */
export function checkRequestedOutputs(model: ServedModel, requested: readonly string[]): void {
  const outputs = new Set(model.outputs.map((o) => o.name));
  const seen = new Set<string>();
  for (const name of requested) {
    if (!outputs.has(name)) throw invalidInput(`model "${model.name}" has no output ${quote(name)} (its outputs: ${[...outputs].join(", ")})`);
    if (seen.has(name)) throw invalidInput(`output ${quote(name)} is requested twice`);
    seen.add(name);
  }
}

/**
 * The outputs the client asked for (checked by checkRequestedOutputs()), in its order;
 * all, in the graph's order, when it asked for none.
 */
export function selectOutputs(response: InferenceResponse, requested: readonly string[]): Array<readonly [string, Tensor]> {
  if (requested.length === 0) return response.outputs;
  const outputs = new Map(response.outputs.map((o) => [o[0], o]));
  return requested.map((name) => outputs.get(name)!);
}

/** OIP parameters as plain values (MLflow params). */
export function paramsFromGrpc(parameters: Record<string, InferParameter>): Record<string, unknown> {
  return Object.fromEntries(
    protoMapEntries(parameters).map(([k, p]) => [k, typeof p.parameterChoice.value === "bigint" ? Number(p.parameterChoice.value) : p.parameterChoice.value]),
  );
}

/** Model metadata as OIP describes it: inputs from the signature when present, else from the graph. */
export function modelMetadata(model: ServedModel): {
  name: string;
  versions: string[];
  platform: string;
  inputs: Array<{ name: string; datatype: string; shape: number[] }>;
  outputs: Array<{ name: string; datatype: string; shape: number[] }>;
} {
  const signatureOutputs = model.source.signature?.outputs;
  const outputs =
    signatureOutputs?.kind === "tensors" && signatureOutputs.tensors.every((t) => t.name)
      ? model.outputs.map((o) => ({ ...o, shape: signatureOutputs.tensors.find((t) => t.name === o.name)?.shape ?? o.shape }))
      : model.outputs;
  return {
    name: model.name,
    versions: model.version ? [model.version] : [],
    platform: "onnxruntime_onnx",
    inputs: model.inputSpecs.map((s) => ({ name: s.name, datatype: OIP_DATATYPES[s.dtype], shape: [...s.shape] })),
    outputs: outputs.map((o) => ({ name: o.name, datatype: OIP_DATATYPES[o.dtype], shape: [...o.shape] })),
  };
}
