import { invalidInput, quote } from "../core/errors.js";
import { type DType, MAX_RANK, type Tensor, type TensorData, allocateTensorData, elementCount, formatShape, fromFloat16Bits, isFloat16Infinity, toFloat16Bits } from "../core/tensor.js";

/**
 * Tensors as protobuf APIs carry them: one repeated field per element family, or
 * raw little-endian bytes. The typed API (mlflow.serving.v1) and the Open Inference
 * Protocol share this layout (bool, int32, int64, uint32, uint64, float, double,
 * string/bytes); each front only maps its field names onto it.
 */
export interface TypedFields {
  bool: boolean[];
  /** int8, int16, int32, uint8, uint16 (the typed API); int8..int32 (OIP). */
  int: number[];
  int64: bigint[];
  /** uint32 (the typed API); uint8..uint32 (OIP). */
  uint: number[];
  uint64: bigint[];
  /** float32 and float16. */
  float: number[];
  double: number[];
  strings: string[];
}

/** Which field holds each dtype; `smallUnsigned` says where uint8/uint16 go (typed API: int, OIP: uint). */
export function fieldFor(dtype: DType, smallUnsigned: "int" | "uint"): keyof TypedFields {
  switch (dtype) {
    case "bool":
      return "bool";
    case "int8":
    case "int16":
    case "int32":
      return "int";
    case "uint8":
    case "uint16":
      return smallUnsigned;
    case "uint32":
      return "uint";
    case "int64":
      return "int64";
    case "uint64":
      return "uint64";
    case "float16":
    case "float32":
      return "float";
    case "float64":
      return "double";
    case "string":
      return "strings";
  }
}

/** Bytes per element in raw data. */
const ELEMENT_BYTES: Record<Exclude<DType, "string">, number> = {
  bool: 1, int8: 1, uint8: 1, int16: 2, uint16: 2, float16: 2, int32: 4, uint32: 4, float32: 4, int64: 8, uint64: 8, float64: 8,
};

/** A wire shape as numbers, refusing negative or huge dimensions and ranks above MAX_RANK. */
export function shapeFromWire(name: string, shape: ReadonlyArray<bigint | number>): number[] {
  if (shape.length > MAX_RANK) throw invalidInput(`input ${quote(name)} has a shape of rank ${shape.length}, more than ${MAX_RANK}`);
  return shape.map((d) => {
    const n = Number(d);
    if (!Number.isSafeInteger(n) || n < 0) throw invalidInput(`input ${quote(name)} has an invalid shape ${formatShape(shape.map(Number))}`);
    return n;
  });
}

/**
 * A tensor from the one typed field that holds its dtype. The count is checked
 * against the shape before anything is allocated; values the dtype cannot hold are
 * refused, as typed arrays would change them silently (300 in int8 storage becomes
 * 44, 70000 in float16 becomes infinity).
 */
export function tensorFromFields(name: string, dtype: DType, shape: number[], values: ArrayLike<unknown>): Tensor {
  const count = elementCount(shape);
  if (values.length !== count) {
    throw invalidInput(`input ${quote(name)} has ${values.length} values for shape ${formatShape(shape)} (${count} elements)`);
  }
  if (dtype === "string") return { dtype, shape, data: Array.from(values as ArrayLike<string>) };
  const data = allocateTensorData(dtype, count) as unknown[];
  if (dtype === "bool") {
    for (let i = 0; i < count; i++) data[i] = values[i] ? 1 : 0;
  } else if (dtype === "float16") {
    for (let i = 0; i < count; i++) {
      const v = values[i] as number;
      data[i] = toFloat16Bits(v);
      // Infinity and NaN travel as themselves; only finite values may not turn infinite.
      if (isFloat16Infinity(data[i] as number) && Number.isFinite(v)) {
        throw invalidInput(`input ${quote(name)}: ${v} is out of range for float16`);
      }
    }
  } else if (dtype === "float32" || dtype === "float64") {
    // Rounding to float32 is expected (Connect JSON carries doubles); turning infinite is not.
    for (let i = 0; i < count; i++) {
      const v = values[i] as number;
      data[i] = v;
      if (!Number.isFinite(data[i] as number) && Number.isFinite(v)) throw invalidInput(`input ${quote(name)}: ${v} is out of range for ${dtype}`);
    }
  } else {
    // An integer that does not survive the store did not fit (int8 travels in an int32 field).
    for (let i = 0; i < count; i++) {
      const v = values[i];
      data[i] = v;
      if (data[i] !== v) throw invalidInput(`input ${quote(name)}: ${String(v)} is out of range for ${dtype}`);
    }
  }
  return { dtype, shape, data: data as TensorData };
}

/** Bytes fields as strings (ONNX has no bytes tensors), with one decoder for all of them. */
export function decodeStrings(values: readonly Uint8Array[]): string[] {
  const decoder = new TextDecoder();
  return values.map((b) => decoder.decode(b));
}

/** The typed-field values of a tensor. */
export function fieldValues(t: Tensor): unknown[] {
  if (t.dtype === "string") return t.data as string[];
  if (t.dtype === "bool") return Array.from(t.data as Uint8Array, (v) => v !== 0);
  if (t.dtype === "float16") return Array.from(t.data as Uint16Array, fromFloat16Bits);
  return Array.from(t.data as ArrayLike<number | bigint>);
}

/**
 * A tensor from raw little-endian bytes, copied once into an aligned buffer. Strings
 * are each a 4-byte little-endian length and the UTF-8 bytes (OIP's BYTES layout).
 */
export function tensorFromRaw(name: string, dtype: DType, shape: number[], raw: Uint8Array): Tensor {
  const count = elementCount(shape);
  if (dtype === "string") {
    const strings: string[] = [];
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const decoder = new TextDecoder();
    let at = 0;
    while (at < raw.byteLength) {
      if (at + 4 > raw.byteLength) throw invalidInput(`input ${quote(name)}: raw data ends inside a length prefix`);
      const length = view.getUint32(at, true);
      if (at + 4 + length > raw.byteLength) throw invalidInput(`input ${quote(name)}: raw data ends inside an element`);
      strings.push(decoder.decode(raw.subarray(at + 4, at + 4 + length)));
      at += 4 + length;
    }
    if (strings.length !== count) throw invalidInput(`input ${quote(name)} has ${strings.length} raw elements for shape ${formatShape(shape)}`);
    return { dtype, shape, data: strings };
  }
  const size = ELEMENT_BYTES[dtype];
  if (raw.byteLength !== count * size) {
    throw invalidInput(`input ${quote(name)}: raw data has ${raw.byteLength} bytes, shape ${formatShape(shape)} needs ${count} x ${size}`);
  }
  const data = allocateTensorData(dtype, count) as Exclude<TensorData, string[]>;
  new Uint8Array(data.buffer).set(raw); // x86 and ARM are little-endian, as the wire format
  return { dtype, shape, data };
}

/** A tensor's raw little-endian bytes (strings length-prefixed), without copying numeric data. */
export function rawFromTensor(t: Tensor): Uint8Array {
  if (t.dtype !== "string") {
    const data = t.data as Exclude<TensorData, string[]>;
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  const encoded = (t.data as string[]).map((s) => new TextEncoder().encode(s));
  const out = new Uint8Array(encoded.reduce((n, b) => n + 4 + b.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const bytes of encoded) {
    view.setUint32(at, bytes.length, true);
    out.set(bytes, at + 4);
    at += 4 + bytes.length;
  }
  return out;
}
