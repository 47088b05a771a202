import { invalidInput, quote } from "./errors.js";

/** The element types a tensor can hold: MLflow's tensor dtypes as ONNX names them. */
export const DTYPES = [
  "bool",
  "int8",
  "int16",
  "int32",
  "int64",
  "uint8",
  "uint16",
  "uint32",
  "uint64",
  "float16",
  "float32",
  "float64",
  "string",
] as const;

export type DType = (typeof DTYPES)[number];

/** Open Inference Protocol datatype names (BYTES holds strings: ONNX has no bytes tensors). */
export const OIP_DATATYPES: Record<DType, string> = {
  bool: "BOOL",
  int8: "INT8",
  int16: "INT16",
  int32: "INT32",
  int64: "INT64",
  uint8: "UINT8",
  uint16: "UINT16",
  uint32: "UINT32",
  uint64: "UINT64",
  float16: "FP16",
  float32: "FP32",
  float64: "FP64",
  string: "BYTES",
};

const DTYPE_OF_OIP = new Map(Object.entries(OIP_DATATYPES).map(([dtype, oip]) => [oip, dtype as DType]));

/** The dtype of an OIP datatype name, or undefined for one we do not know. */
export function dtypeFromOip(datatype: string): DType | undefined {
  return DTYPE_OF_OIP.get(datatype);
}

/** Typed storage of a numeric or bool tensor: bool as Uint8Array, float16 as raw bits in Uint16Array. */
export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

export type TensorData = NumericArray | string[];

/** A dense, row-major tensor. `shape` is concrete (no -1); `data.length` is the product of it. */
export interface Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/** Number of elements a shape holds. */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Formats a shape the way messages show it, with -1 for a free dimension. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

const INT_RANGES: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

/** Zeroed storage for `length` elements of `dtype`. */
export function allocateTensorData(dtype: DType, length: number): TensorData {
  switch (dtype) {
    case "bool":
    case "uint8":
      return new Uint8Array(length);
    case "int8":
      return new Int8Array(length);
    case "int16":
      return new Int16Array(length);
    case "uint16":
    case "float16":
      return new Uint16Array(length);
    case "int32":
      return new Int32Array(length);
    case "uint32":
      return new Uint32Array(length);
    case "int64":
      return new BigInt64Array(length);
    case "uint64":
      return new BigUint64Array(length);
    case "float32":
      return new Float32Array(length);
    case "float64":
      return new Float64Array(length);
    case "string":
      return new Array<string>(length).fill("");
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "..." : value)}`;
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

/**
 * Converts one JSON scalar to the storage value of `dtype`, applying MLflow's safe
 * casts: integers into floats are fine; fractions into integers, strings into
 * numbers and numbers into strings are refused, and so are numbers the dtype cannot
 * hold (typed arrays would store 1e300 as Infinity in float32, 300 as 44 in int8).
 * Returns an error message on refusal.
 */
function convertScalar(dtype: DType, value: unknown): number | bigint | string | { error: string } {
  if (dtype === "string") {
    return typeof value === "string" ? value : { error: `expected string, got ${describe(value)}` };
  }
  if (dtype === "bool") {
    return typeof value === "boolean" ? (value ? 1 : 0) : { error: `expected bool, got ${describe(value)}` };
  }
  if (typeof value !== "number" || !Number.isFinite(value)) {
    // NaN and infinities cannot be written in JSON; anything else here is a wrong type.
    return { error: `expected ${dtype}, got ${describe(value)}` };
  }
  if (dtype === "float64") return value;
  if (dtype === "float32") return Number.isFinite(Math.fround(value)) ? value : { error: `expected float32, got ${value}, out of range` };
  if (dtype === "float16") {
    const bits = toFloat16Bits(value);
    return isFloat16Infinity(bits) ? { error: `expected float16, got ${value}, out of range` } : bits;
  }
  const range = INT_RANGES[dtype];
  if (!Number.isInteger(value)) return { error: `expected ${dtype}, got fraction ${value} (MLflow refuses float to integer casts)` };
  if (range && (value < range[0] || value > range[1])) return { error: `expected ${dtype}, got ${value}, out of range` };
  return dtype === "int64" || dtype === "uint64" ? BigInt(value) : value;
}

/** Deepest nesting accepted from JSON and on the wire (ONNX tensors of higher rank do not occur in practice). */
export const MAX_RANK = 32;

/**
 * Builds a tensor of `dtype` from a JSON value (a scalar or nested lists), inferring
 * the shape and refusing ragged lists and values of the wrong type. `name` only
 * serves the error messages.
 *
 * The shape is read from the first item of each level, then every list is checked
 * against it before storage of that size is allocated: a client naming a shape by
 * its first row (10,000 items, then scalars) gets a refusal, not an allocation of
 * rows x 10,000 elements. Work and memory are thus proportional to the values sent.
 */
export function tensorFromJson(name: string, value: unknown, dtype: DType): Tensor {
  if (!Array.isArray(value)) {
    const converted = convertScalar(dtype, value);
    if (typeof converted === "object") throw invalidInput(`input ${quote(name)}: ${converted.error}`);
    return { dtype, shape: [], data: storeScalar(dtype, converted) };
  }
  const shape: number[] = [];
  for (let level: unknown = value; Array.isArray(level); level = level[0]) {
    if (shape.length === MAX_RANK) throw invalidInput(`input ${quote(name)}: lists nested deeper than ${MAX_RANK} levels`);
    shape.push(level.length);
    if (level.length === 0) break;
  }
  // One index array per call, not one path per element: it is read only for messages.
  const index = new Array<number>(shape.length).fill(0);
  checkLists(name, value, 0, shape, index);
  // Strings are appended in order, which keeps the list packed.
  const data = dtype === "string" ? [] : allocateTensorData(dtype, elementCount(shape));
  fillLeaves(name, value, 0, shape, index, dtype, data as unknown[], 0);
  return { dtype, shape, data };
}

/**
 * Checks that every list below `list` (at `depth`) has the length `shape` says,
 * leaving the leaves to fillLeaves(). Visits only lists that were sent.
 */
function checkLists(name: string, list: unknown[], depth: number, shape: readonly number[], index: number[]): void {
  const childDepth = depth + 1;
  if (childDepth >= shape.length) return;
  const width = shape[childDepth]!;
  const deeper = childDepth + 1 < shape.length;
  for (let i = 0; i < list.length; i++) {
    const child = list[i];
    if (!Array.isArray(child) || child.length !== width) {
      index[depth] = i;
      throw invalidInput(`input ${quote(name)}: ragged nested lists at ${formatShape(index.slice(0, childDepth))} (expected ${width} items)`);
    }
    if (deeper) {
      index[depth] = i;
      checkLists(name, child, childDepth, shape, index);
    }
  }
}

/** Converts the leaves below `list` into `data` from `offset` on; returns the next offset. */
function fillLeaves(
  name: string,
  list: unknown[],
  depth: number,
  shape: readonly number[],
  index: number[],
  dtype: DType,
  data: unknown[],
  offset: number,
): number {
  if (depth < shape.length - 1) {
    for (let i = 0; i < list.length; i++) {
      index[depth] = i;
      offset = fillLeaves(name, list[i] as unknown[], depth + 1, shape, index, dtype, data, offset);
    }
    return offset;
  }
  for (let i = 0; i < list.length; i++) {
    const converted = convertScalar(dtype, list[i]);
    if (typeof converted === "object") {
      index[depth] = i;
      const at = formatShape(index);
      throw invalidInput(Array.isArray(list[i]) ? `input ${quote(name)}: ragged nested lists at ${at}` : `input ${quote(name)}: ${converted.error} at ${at}`);
    }
    data[offset++] = converted;
  }
  return offset;
}

/**
 * Builds a tensor of `dtype` from cells of table rows (lists): the cells at
 * `positions` of each row, row-major, without building the table in between. One
 * position gives shape [rows] (a column, messages say "at [row]"), several give
 * [rows, positions]. `read`, when given, turns each cell into a JSON value first (CSV
 * text into numbers), so that the rows need not be rewritten.
 */
export function tensorFromRows(
  name: string,
  rows: readonly unknown[][],
  positions: readonly number[],
  dtype: DType,
  read?: (cell: unknown, dtype: DType) => unknown,
): Tensor {
  const width = positions.length;
  const data = (dtype === "string" ? [] : allocateTensorData(dtype, rows.length * width)) as unknown[];
  let offset = 0;
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (let j = 0; j < width; j++) {
      const cell = row[positions[j]!];
      const converted = convertScalar(dtype, read ? read(cell, dtype) : cell);
      if (typeof converted === "object") throw invalidInput(`input ${quote(name)}: ${converted.error} at ${formatShape(width === 1 ? [r] : [r, j])}`);
      data[offset++] = converted;
    }
  }
  return { dtype, shape: width === 1 ? [rows.length] : [rows.length, width], data: data as TensorData };
}

/** Storage for one converted scalar (a rank-0 tensor). */
function storeScalar(dtype: DType, value: number | bigint | string): TensorData {
  const data = allocateTensorData(dtype, 1);
  (data as unknown[])[0] = value;
  return data;
}

/** One element of a tensor as a JSON value: int64 as a number, float16 decoded, bool as true/false. */
function scalarToJson(dtype: DType, data: TensorData, i: number): unknown {
  const v = data[i];
  if (dtype === "bool") return v !== 0;
  if (dtype === "float16") return fromFloat16Bits(v as number);
  if (typeof v === "bigint") return Number(v);
  return v;
}

/** Converts a tensor to nested JSON lists following its shape (a scalar for rank 0). */
export function tensorToJson(tensor: Tensor): unknown {
  const { dtype, shape, data } = tensor;
  let offset = 0;
  const build = (depth: number): unknown => {
    if (depth === shape.length) return scalarToJson(dtype, data, offset++);
    const out = new Array<unknown>(shape[depth]!);
    for (let i = 0; i < out.length; i++) out[i] = build(depth + 1);
    return out;
  };
  return build(0);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 half-precision bits of `value`, rounded to nearest even. */
export function toFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && (half & 1)) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && (half & 1)) ? 1 : 0));
}

/** Whether half-precision bits stand for an infinity: what toFloat16Bits() gives for a number too large. */
export function isFloat16Infinity(bits: number): boolean {
  return (bits & 0x7fff) === 0x7c00;
}

/** The number a half-precision bit pattern stands for. */
export function fromFloat16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
