import { create } from "@bufbuild/protobuf";
import { DataType, type Tensor as ProtoTensor, TensorSchema } from "../../../gen/mlflow/serving/v1/tensor_pb.js";
import { invalidInput, quote } from "../../core/errors.js";
import type { DType, Tensor } from "../../core/tensor.js";
import { type TypedFields, decodeStrings, fieldFor, fieldValues, rawFromTensor, shapeFromWire, tensorFromFields, tensorFromRaw } from "../typed-fields.js";

const TO_DTYPE: Record<DataType, DType | undefined> = {
  [DataType.UNSPECIFIED]: undefined,
  [DataType.BOOL]: "bool",
  [DataType.INT8]: "int8",
  [DataType.INT16]: "int16",
  [DataType.INT32]: "int32",
  [DataType.INT64]: "int64",
  [DataType.UINT8]: "uint8",
  [DataType.UINT16]: "uint16",
  [DataType.UINT32]: "uint32",
  [DataType.UINT64]: "uint64",
  [DataType.FLOAT16]: "float16",
  [DataType.FLOAT32]: "float32",
  [DataType.FLOAT64]: "float64",
  [DataType.STRING]: "string",
  // ONNX has no bytes tensors: bytes travel as UTF-8 strings.
  [DataType.BYTES]: "string",
};

const FROM_DTYPE = Object.fromEntries(
  Object.entries(TO_DTYPE)
    .filter(([code, d]) => d !== undefined && Number(code) !== DataType.BYTES)
    .map(([code, d]) => [d, Number(code) as DataType]),
) as Record<DType, DataType>;

/** The proto enum value of a dtype. */
export function protoDataType(dtype: DType): DataType {
  return FROM_DTYPE[dtype];
}

/** The message's field for each family of TypedFields. */
const FIELDS = {
  bool: "boolData",
  int: "intData",
  int64: "int64Data",
  uint: "uintData",
  uint64: "uint64Data",
  float: "floatData",
  double: "doubleData",
  strings: "stringData",
} as const satisfies Record<keyof TypedFields, keyof ProtoTensor>;

/** A proto Tensor of the typed API as a core tensor; refuses inconsistent ones. */
export function tensorFromProto(name: string, t: ProtoTensor): Tensor {
  const dtype = TO_DTYPE[t.dtype];
  if (!dtype) throw invalidInput(`input ${quote(name)} has no dtype`);
  const shape = shapeFromWire(name, t.shape);
  if (t.rawData.byteLength > 0) {
    if (dtype === "string") throw invalidInput(`input ${quote(name)}: raw_data cannot hold strings, use string_data`);
    return tensorFromRaw(name, dtype, shape, t.rawData);
  }
  const values = t.dtype === DataType.BYTES && t.stringData.length === 0 ? decodeStrings(t.bytesData) : t[FIELDS[fieldFor(dtype, "int")]];
  return tensorFromFields(name, dtype, shape, values);
}

/** A core tensor as a proto Tensor: in raw_data when `raw` (numeric tensors), else in the typed field. */
export function tensorToProto(t: Tensor, raw: boolean): ProtoTensor {
  const out = create(TensorSchema, { dtype: protoDataType(t.dtype), shape: t.shape.map(BigInt) });
  if (raw && t.dtype !== "string") out.rawData = rawFromTensor(t);
  else (out[FIELDS[fieldFor(t.dtype, "int")]] as unknown[]) = fieldValues(t);
  return out;
}
