/**
 * Row-wise kernels over flat Float32Arrays, shared by both backbones. A "row" is one token (a
 * sequence position, or one flattened vector); matrices are row-major with the row stride equal to
 * their width. Sums are accumulated in f64 (JavaScript numbers) and rounded to f32 on store, so
 * the result is at least as accurate as the f32 tfjs reference it is tested against.
 *
 * Every kernel writes into a caller-owned output: the forwards allocate their scratch once.
 */
import { channelScale, checkBits, dequantizeCode, roundHalfEven } from '../quantize.ts';
import { ForwardError } from './errors.ts';

/**
 * y[r] = W . x[r] + b for rows r in [rowStart, rowEnd): W is [outDim, inDim] row-major
 * (y = x W^T + b), x has row stride inDim, y row stride outDim. `y` must not alias `x`.
 *
 * Rows go four at a time so each weight load serves four rows (~1.6x faster in V8 than one row
 * at a time). Every row's sum is accumulated in the same order (k ascending, one f64 accumulator)
 * whichever path it takes, so a row's result does not depend on how many rows are computed with
 * it: the forwards may skip padding and compute only the last position and stay bit-identical.
 */
export function linearRows(
  x: Float32Array,
  inDim: number,
  rowStart: number,
  rowEnd: number,
  w: Float32Array,
  b: Float32Array | null,
  outDim: number,
  y: Float32Array,
): void {
  let r = rowStart;
  for (; r + 4 <= rowEnd; r += 4) {
    const x0 = r * inDim;
    const x1 = x0 + inDim;
    const x2 = x1 + inDim;
    const x3 = x2 + inDim;
    const y0 = r * outDim;
    for (let o = 0; o < outDim; o++) {
      const wo = o * inDim;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < inDim; k++) {
        const wk = w[wo + k]!;
        s0 += x[x0 + k]! * wk;
        s1 += x[x1 + k]! * wk;
        s2 += x[x2 + k]! * wk;
        s3 += x[x3 + k]! * wk;
      }
      const bo = b === null ? 0 : b[o]!;
      y[y0 + o] = s0 + bo;
      y[y0 + outDim + o] = s1 + bo;
      y[y0 + 2 * outDim + o] = s2 + bo;
      y[y0 + 3 * outDim + o] = s3 + bo;
    }
  }
  for (; r < rowEnd; r++) {
    const xo = r * inDim;
    const yo = r * outDim;
    for (let o = 0; o < outDim; o++) {
      const wo = o * inDim;
      let s = 0;
      for (let k = 0; k < inDim; k++) s += x[xo + k]! * w[wo + k]!;
      y[yo + o] = s + (b === null ? 0 : b[o]!);
    }
  }
}

/** Dot product of a[aOff .. aOff+n) and b[bOff .. bOff+n), in f64. */
export function dot(a: ArrayLike<number>, aOff: number, b: ArrayLike<number>, bOff: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let k = 0;
  for (; k + 1 < n; k += 2) {
    s0 += a[aOff + k]! * b[bOff + k]!;
    s1 += a[aOff + k + 1]! * b[bOff + k + 1]!;
  }
  if (k < n) s0 += a[aOff + k]! * b[bOff + k]!;
  return s0 + s1;
}

/**
 * Layer norm of rows [rowStart, rowEnd) of x (width d) into y (same layout; may alias x):
 * y = (x - mean) / sqrt(var + eps) * gamma + beta, var the biased (population) variance, as
 * tf.moments computes it.
 */
export function layerNormRows(
  x: Float32Array,
  d: number,
  rowStart: number,
  rowEnd: number,
  gamma: Float32Array,
  beta: Float32Array,
  eps: number,
  y: Float32Array,
): void {
  for (let r = rowStart; r < rowEnd; r++) {
    const o = r * d;
    let mean = 0;
    for (let j = 0; j < d; j++) mean += x[o + j]!;
    mean /= d;
    let variance = 0;
    for (let j = 0; j < d; j++) {
      const c = x[o + j]! - mean;
      variance += c * c;
    }
    variance /= d;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let j = 0; j < d; j++) y[o + j] = (x[o + j]! - mean) * inv * gamma[j]! + beta[j]!;
  }
}

export function reluInPlace(x: Float32Array, start: number, end: number): void {
  for (let i = start; i < end; i++) if (!(x[i]! > 0)) x[i] = 0;
}

/**
 * Min–max fake quantization of src[off .. off+len) into dst[dstOff ..), as one range. Uses the
 * weight quantizer's exact definitions (quantize.ts: restricted f32 step, round half to even, top
 * code = the maximum), so a kernel that quantizes activations the same way dequantizes to the
 * same bits given the same codes.
 */
function fakeQuantRange(
  src: Float32Array,
  off: number,
  len: number,
  bits: number,
  dst: Float32Array,
  dstOff: number,
): void {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = off; i < off + len; i++) {
    const v = src[i]!;
    if (!Number.isFinite(v)) throw new ForwardError('FORWARD_NON_FINITE', `activation ${i - off} is ${v}`);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  lo += 0; // -0 -> +0, as channelRanges does
  hi += 0;
  const s = channelScale(lo, hi, bits);
  if (s === 0) {
    dst.fill(lo, dstOff, dstOff + len);
    return;
  }
  const n = 2 ** bits - 1;
  for (let i = 0; i < len; i++) {
    const q = roundHalfEven((src[off + i]! - lo) / s);
    dst[dstOff + i] = dequantizeCode(q > n ? n : q, bits, s, lo, hi);
  }
}

/**
 * Rows [rowStart, rowEnd) of x (width rowLength), each fake-quantized with its own min–max range
 * (per token), into the same rows of `out`. Used at matmul inputs when activation quantization
 * is on; the residual paths keep the unquantized values.
 */
export function quantizeActivationRows(
  x: Float32Array,
  rowLength: number,
  rowStart: number,
  rowEnd: number,
  bits: number,
  out: Float32Array,
): void {
  for (let r = rowStart; r < rowEnd; r++) fakeQuantRange(x, r * rowLength, rowLength, bits, out, r * rowLength);
}

/**
 * Min–max fake quantization of activations to `bits` (1..8): asymmetric, range = [min, max] of
 * each group of `rowLength` consecutive values (default: the whole array, i.e. per tensor; pass
 * the hidden size for per token). Throws ForwardError FORWARD_NON_FINITE on NaN/Infinity.
 */
export function quantizeActivations(
  x: Float32Array,
  bits: number,
  rowLength: number = x.length,
  out: Float32Array = new Float32Array(x.length),
): Float32Array {
  checkBits(bits);
  if (!Number.isInteger(rowLength) || rowLength < 1 || x.length % rowLength !== 0) {
    throw new ForwardError('FORWARD_BAD_OPTION', `rowLength ${rowLength} does not divide ${x.length} values`);
  }
  if (out.length !== x.length) {
    throw new ForwardError('FORWARD_BAD_OPTION', `out has ${out.length} values, expected ${x.length}`);
  }
  quantizeActivationRows(x, rowLength, 0, x.length / rowLength, bits, out);
  return out;
}
