import { create } from "@bufbuild/protobuf";
import { DataType, type Tensor as ProtoTensor, TensorSchema } from "../../../gen/mlflow/serving/v1/tensor_pb.js";
import { invalidInput } from "../../core/errors.js";
import { type DType, type Tensor, type TensorData, allocateTensorData, elementCount, formatShape, fromFloat16Bits, toFloat16Bits } from "../../core/tensor.js";

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

const INTEGER_DTYPES = new Set<DType>(["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]);

/** Bytes per element in raw_data. */
const ELEMENT_BYTES: Record<Exclude<DType, "string">, number> = {
  bool: 1, int8: 1, uint8: 1, int16: 2, uint16: 2, float16: 2, int32: 4, uint32: 4, float32: 4, int64: 8, uint64: 8, float64: 8,
};

/** The typed-array view of raw little-endian bytes, copied once into an aligned buffer of its own. */
function fromRaw(name: string, dtype: Exclude<DType, "string">, raw: Uint8Array, count: number): TensorData {
  const size = ELEMENT_BYTES[dtype];
  if (raw.byteLength !== count * size) {
    throw invalidInput(`input "${name}": raw_data has ${raw.byteLength} bytes, shape needs ${count} x ${size}`);
  }
  const data = allocateTensorData(dtype, count) as Exclude<TensorData, string[]>;
  new Uint8Array(data.buffer).set(raw); // x86 and ARM are little-endian, as the wire format
  return data;
}

/** The typed field that holds the elements of `dtype`, and how to store them. */
function typedField(t: ProtoTensor, dtype: DType): ArrayLike<unknown> {
  switch (dtype) {
    case "bool":
      return t.boolData;
    case "int8":
    case "int16":
    case "int32":
    case "uint8":
    case "uint16":
      return t.intData;
    case "int64":
      return t.int64Data;
    case "uint32":
      return t.uintData;
    case "uint64":
      return t.uint64Data;
    case "float16":
    case "float32":
      return t.floatData;
    case "float64":
      return t.doubleData;
    case "string":
      return t.stringData.length || !t.bytesData.length ? t.stringData : t.bytesData.map((b) => new TextDecoder().decode(b));
  }
}

/** A proto Tensor of the typed API as a core tensor; refuses inconsistent ones. */
export function tensorFromProto(name: string, t: ProtoTensor): Tensor {
  const dtype = TO_DTYPE[t.dtype];
  if (!dtype) throw invalidInput(`input "${name}" has no dtype`);
  const shape = t.shape.map((d) => {
    const n = Number(d);
    if (!Number.isSafeInteger(n) || n < 0) throw invalidInput(`input "${name}" has an invalid shape ${formatShape(t.shape.map(Number))}`);
    return n;
  });
  const count = elementCount(shape);
  if (t.rawData.byteLength > 0) {
    if (dtype === "string") throw invalidInput(`input "${name}": raw_data cannot hold strings, use string_data`);
    return { dtype, shape, data: fromRaw(name, dtype, t.rawData, count) };
  }
  const values = typedField(t, dtype);
  if (values.length !== count) {
    throw invalidInput(`input "${name}" has ${values.length} values for shape ${formatShape(shape)} (${count} elements)`);
  }
  if (dtype === "string") return { dtype, shape, data: Array.from(values as ArrayLike<string>) };
  const data = allocateTensorData(dtype, count) as unknown[];
  for (let i = 0; i < count; i++) {
    const v = values[i];
    data[i] = dtype === "float16" ? toFloat16Bits(v as number) : dtype === "bool" ? (v ? 1 : 0) : v;
  }
  if (INTEGER_DTYPES.has(dtype)) {
    // Typed arrays wrap silently: 300 in int8 storage would become 44.
    for (let i = 0; i < count; i++) {
      if ((data as ArrayLike<number | bigint>)[i] != values[i]) throw invalidInput(`input "${name}": ${String(values[i])} is out of range for ${dtype}`);
    }
  }
  return { dtype, shape, data: data as TensorData };
}

/** A core tensor as a proto Tensor: in raw_data when `raw`, else in the typed field. */
export function tensorToProto(t: Tensor, raw: boolean): ProtoTensor {
  const out = create(TensorSchema, { dtype: protoDataType(t.dtype), shape: t.shape.map(BigInt) });
  if (t.dtype === "string") {
    out.stringData = t.data as string[];
    return out;
  }
  const data = t.data as Exclude<TensorData, string[]>;
  if (raw) {
    out.rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return out;
  }
  switch (t.dtype) {
    case "bool":
      out.boolData = Array.from(data as Uint8Array, (v) => v !== 0);
      break;
    case "int8":
    case "int16":
    case "int32":
    case "uint8":
    case "uint16":
      out.intData = Array.from(data as ArrayLike<number>);
      break;
    case "int64":
      out.int64Data = Array.from(data as BigInt64Array);
      break;
    case "uint32":
      out.uintData = Array.from(data as Uint32Array);
      break;
    case "uint64":
      out.uint64Data = Array.from(data as BigUint64Array);
      break;
    case "float16":
      out.floatData = Array.from(data as Uint16Array, fromFloat16Bits);
      break;
    case "float32":
      out.floatData = Array.from(data as Float32Array);
      break;
    case "float64":
      out.doubleData = Array.from(data as Float64Array);
      break;
  }
  return out;
}
