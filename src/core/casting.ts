import { invalidInput, quote } from "./errors.js";
import { type DType, type Tensor, type TensorData, allocateTensorData, fromFloat16Bits, toFloat16Bits } from "./tensor.js";

const INT_BITS: Partial<Record<DType, [bits: number, signed: boolean]>> = {
  int8: [8, true],
  int16: [16, true],
  int32: [32, true],
  int64: [64, true],
  uint8: [8, false],
  uint16: [16, false],
  uint32: [32, false],
  uint64: [64, false],
};
/** Mantissa bits + 1: the widest integer each float type holds exactly (numpy's "safe" rule). */
const FLOAT_INT_BITS: Partial<Record<DType, number>> = { float16: 11, float32: 24, float64: 53 };

/**
 * Whether values of `from` always fit `to` without loss: numpy's `can_cast(...,
 * casting="safe")`, which MLflow's schema enforcement applies. Integers widen into
 * wider integers and into floats that hold them; floats widen; nothing becomes or
 * leaves a string; float to integer is refused.
 */
export function canCastSafely(from: DType, to: DType): boolean {
  if (from === to) return true;
  if (from === "string" || to === "string") return false;
  if (from === "bool") return true;
  if (to === "bool") return false;
  const fromInt = INT_BITS[from];
  const toInt = INT_BITS[to];
  if (fromInt && toInt) {
    const [fb, fs] = fromInt;
    const [tb, ts] = toInt;
    return fs === ts ? tb >= fb : !fs && ts && tb > fb;
  }
  if (fromInt) {
    // numpy treats int64 -> float64 as safe although 2^53 < 2^63; so does MLflow.
    const [fb, fs] = fromInt;
    const fits = FLOAT_INT_BITS[to]!;
    return fb === 64 ? to === "float64" : (fs ? fb - 1 : fb) < fits;
  }
  if (toInt) return false;
  return FLOAT_INT_BITS[to]! > FLOAT_INT_BITS[from]!;
}

/**
 * The tensor with elements of `to`, refusing casts MLflow refuses. `name` serves the
 * error message. A tensor that already has the dtype is returned as is.
 */
export function castTensor(name: string, tensor: Tensor, to: DType): Tensor {
  if (tensor.dtype === to) return tensor;
  if (!canCastSafely(tensor.dtype, to)) {
    throw invalidInput(`input ${quote(name)} expects dtype ${to}, got ${tensor.dtype} (MLflow refuses ${tensor.dtype} to ${to} casts)`);
  }
  const out = allocateTensorData(to, tensor.data.length) as unknown[];
  const src = tensor.data as ArrayLike<number | bigint>;
  const bigOut = to === "int64" || to === "uint64";
  for (let i = 0; i < out.length; i++) {
    let v: number | bigint = src[i]!;
    if (tensor.dtype === "float16") v = fromFloat16Bits(v as number);
    if (to === "float16") out[i] = toFloat16Bits(Number(v));
    else out[i] = bigOut ? BigInt(v) : Number(v);
  }
  return { dtype: to, shape: tensor.shape, data: out as TensorData };
}
