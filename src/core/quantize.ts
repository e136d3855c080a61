/**
 * Reference per-output-channel quantizer: asymmetric min–max, any width 1..8 bits; a channel at
 * OFF_BITS (0) is switched off: every weight dequantizes to 0 (scale 0, zero = max = 0, code 0).
 *
 * Definitions, for output channel j (row j of the [out, rowLength] weight view) with bits b:
 *
 *   m = min(row), M = max(row)            exact f32 values; -0 is normalised to +0
 *   n = 2^b - 1                           number of steps
 *   s = ceilBits(D / n, 24 - b)           D = M - m; the smallest f32 >= D/n whose significand
 *                                         has at most 24 - b bits (see "why" below), and at
 *                                         least 2^-149; s = 0 if M == m
 *   q = clamp(roundHalfEven((w - m) / s), 0, n)       computed in f64 on the CPU; q = 0 if s == 0
 *   deq(q) = q == n ? M : fround(m + q * s)
 *
 * Why the restricted scale: q <= 2^b - 1 has at most b significant bits, so q * s has at most
 * 24 bits and is exact in f32. The only rounding left in deq is the final addition, so a WGSL
 * kernel computing `select(zero + f32(q) * scale, maxv, q == n)` gets the same bits whether or
 * not the driver contracts `zero + q * scale` into an FMA (WGSL has no way to forbid that; f32
 * `+` and `*` are correctly rounded, so fused and unfused forms agree when the product is exact).
 * The cost: s is up to 2^-(23-b) (relative) coarser than D/n, i.e. <= 2^-15 at 8 bits.
 * Rounding s up (never down) keeps m + n*s >= M, so every weight lies within half a step of a code.
 *
 * Why the `q == n ? M` endpoint: m + n*s generally cannot equal M in f32 (s is rounded), and the
 * top code is where the largest-magnitude weights land; storing M per channel makes both ends of
 * the range exact for one select per element, and bounds the last step by s as well.
 *
 * Rounding of q: half to even, the same as WGSL `round`, so a GPU-side quantizer would agree
 * except where (w - m) / s lies within f32 rounding error of a .5 boundary (WGSL f32 division is
 * not correctly rounded). The packed layout (packing.ts) is built here on the CPU, so the kernel
 * only ever runs `deq`, which matches bit for bit.
 *
 * Error bound: |w - deq(q(w))| <= s/2 + ulp(max(|m|, |M|)) for every weight.
 * Caveat: GPUs may flush f32 subnormals to zero, so bit-exact parity with a kernel holds only
 * when m, s and m + q*s are normal (or zero). The CPU reference itself handles subnormals.
 */
import { ChordError, type ErrorCodeOf } from './errors.ts';
import { OFF_BITS } from './strategy.ts';

export type QuantizeErrorCode = ErrorCodeOf<'QuantizeError'>;

export class QuantizeError extends ChordError<'QuantizeError'> {
  override readonly name = 'QuantizeError';
  constructor(code: QuantizeErrorCode, message: string) {
    super(code, message);
  }
}

export const MIN_BITS = 1;
export const MAX_BITS = 8;

const F32_MAX = 3.4028234663852886e38;
/** Smallest positive f32 (subnormal); scales below it would round to zero. */
const F32_MIN_SUBNORMAL = 2 ** -149;

/** Either a full weight shape ([out, ...rest], row length = product of rest) or the 2-D view. */
export type ChannelLayout =
  | readonly number[]
  | { readonly outChannels: number; readonly rowLength: number };

export interface ChannelRanges {
  readonly min: Float32Array;
  readonly max: Float32Array;
}

/** Output of {@link quantizeChannels}. All arrays are indexed by original channel. */
export interface QuantizedChannels {
  readonly outChannels: number;
  readonly rowLength: number;
  /** Bit width per channel, 1..8, or OFF_BITS for a switched-off channel. */
  readonly bits: Uint8Array;
  /** Row-major codes, outChannels * rowLength, each in 0..2^bits-1. */
  readonly codes: Uint8Array;
  /** Step per channel (0 for a constant channel). */
  readonly scale: Float32Array;
  /** Channel minimum (the value of code 0). */
  readonly zero: Float32Array;
  /** Channel maximum (the value of the top code). */
  readonly max: Float32Array;
}

function isPositiveInt(x: number): boolean {
  return Number.isSafeInteger(x) && x > 0;
}

/** Normalises a layout to {outChannels, rowLength}, rejecting non-positive or non-integer dims. */
export function resolveLayout(layout: ChannelLayout): { outChannels: number; rowLength: number } {
  if (Array.isArray(layout)) {
    const dims = layout as readonly number[];
    if (dims.length < 1 || !dims.every(isPositiveInt)) {
      throw new QuantizeError('QUANT_BAD_SHAPE', `bad weight shape [${dims.join(', ')}]`);
    }
    let rowLength = 1;
    for (let i = 1; i < dims.length; i++) rowLength *= dims[i]!;
    return { outChannels: dims[0]!, rowLength };
  }
  const { outChannels, rowLength } = layout as { outChannels: number; rowLength: number };
  if (!isPositiveInt(outChannels) || !isPositiveInt(rowLength)) {
    throw new QuantizeError(
      'QUANT_BAD_SHAPE',
      `outChannels (${outChannels}) and rowLength (${rowLength}) must be positive integers`,
    );
  }
  return { outChannels, rowLength };
}

function checkWeights(weights: Float32Array, outChannels: number, rowLength: number): void {
  if (weights.length !== outChannels * rowLength) {
    throw new QuantizeError(
      'QUANT_LENGTH_MISMATCH',
      `weights have ${weights.length} values, expected ${outChannels} x ${rowLength}`,
    );
  }
}

export function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < MIN_BITS || bits > MAX_BITS) {
    throw new QuantizeError('QUANT_BAD_BITS', `bit width ${bits} outside ${MIN_BITS}..${MAX_BITS}`);
  }
}

/** A channel's width: 1..8, or OFF_BITS. */
export function checkChannelBits(bits: number): void {
  if (bits !== OFF_BITS) checkBits(bits);
}

/** Per-channel min and max. Rejects NaN and ±Infinity (they have no meaningful range). */
export function channelRanges(
  weights: Float32Array,
  outChannels: number,
  rowLength: number,
): ChannelRanges {
  resolveLayout({ outChannels, rowLength });
  checkWeights(weights, outChannels, rowLength);
  const min = new Float32Array(outChannels);
  const max = new Float32Array(outChannels);
  for (let j = 0; j < outChannels; j++) {
    const base = j * rowLength;
    let lo = Infinity;
    let hi = -Infinity;
    for (let k = 0; k < rowLength; k++) {
      const w = weights[base + k]!;
      if (!Number.isFinite(w)) {
        throw new QuantizeError(
          'QUANT_NON_FINITE',
          `weight ${base + k} (channel ${j}, element ${k}) is ${w}`,
        );
      }
      if (w < lo) lo = w;
      if (w > hi) hi = w;
    }
    // `+ 0` turns -0 into +0: m + q*s would do so anyway, and min/max should equal deq exactly.
    min[j] = lo + 0;
    max[j] = hi + 0;
  }
  return { min, max };
}

/**
 * Smallest value >= x (x > 0, f64) that is an f32 with at most `sigBits` significant bits.
 * Exact: every step is a power-of-two scaling or an integer ceil in f64.
 */
function ceilToSignificantBits(x: number, sigBits: number): number {
  let e = Math.floor(Math.log2(x));
  // log2 can be off by one near powers of two; pin e so that 2^e <= x < 2^(e+1).
  if (2 ** e > x) e -= 1;
  if (2 ** (e + 1) <= x) e += 1;
  // f32 cannot resolve below 2^-149, whatever the significand width.
  const quantumExp = Math.max(e - sigBits + 1, -149);
  const quantum = 2 ** quantumExp;
  return Math.ceil(x / quantum) * quantum;
}

/**
 * The f32 step for a channel with range [min, max] quantized to `bits`. Both inputs must be f32
 * values (as from {@link channelRanges}). Returns 0 for a constant channel.
 */
export function channelScale(min: number, max: number, bits: number): number {
  checkBits(bits);
  if (!Number.isFinite(min) || !Number.isFinite(max) || !(max >= min)) {
    throw new QuantizeError('QUANT_BAD_RANGE', `channel range [${min}, ${max}] is not ordered`);
  }
  if (max === min) return 0;
  const n = 2 ** bits - 1;
  const step = ceilToSignificantBits(Math.max((max - min) / n, F32_MIN_SUBNORMAL), 24 - bits);
  // n * step must stay finite in f32, or the kernel's q * scale would overflow to Infinity.
  if (n * step > F32_MAX) {
    throw new QuantizeError(
      'QUANT_RANGE_OVERFLOW',
      `channel range [${min}, ${max}] is too wide to dequantize in f32`,
    );
  }
  return step;
}

/** Round half to even (matches WGSL `round`). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The single dequantization formula (the kernel's must be the same, see the file comment).
 * `code * scale` is exact in f32 by construction of the scale, so only the sum is rounded.
 */
export function dequantizeCode(
  code: number,
  bits: number,
  scale: number,
  zero: number,
  max: number,
): number {
  return code === 2 ** bits - 1 ? max : Math.fround(zero + code * scale);
}

function checkBitsPerChannel(bitsPerChannel: Uint8Array, outChannels: number): void {
  if (bitsPerChannel.length !== outChannels) {
    throw new QuantizeError(
      'QUANT_LENGTH_MISMATCH',
      `bitsPerChannel has ${bitsPerChannel.length} entries, expected ${outChannels}`,
    );
  }
  for (let j = 0; j < outChannels; j++) checkChannelBits(bitsPerChannel[j]!);
}

/** Quantizes every output channel of `weights` to its own width. Inputs are not modified. */
export function quantizeChannels(
  weights: Float32Array,
  layout: ChannelLayout,
  bitsPerChannel: Uint8Array,
): QuantizedChannels {
  const { outChannels, rowLength } = resolveLayout(layout);
  checkWeights(weights, outChannels, rowLength);
  checkBitsPerChannel(bitsPerChannel, outChannels);
  const { min, max } = channelRanges(weights, outChannels, rowLength);
  const scale = new Float32Array(outChannels);
  const codes = new Uint8Array(outChannels * rowLength);
  for (let j = 0; j < outChannels; j++) {
    const bits = bitsPerChannel[j]!;
    if (bits === OFF_BITS) {
      // n = 2^0 - 1 = 0, so code 0 is the top code and dequantizes to max: 0.
      min[j] = 0;
      max[j] = 0;
      continue;
    }
    const m = min[j]!;
    const s = channelScale(m, max[j]!, bits);
    scale[j] = s;
    if (s === 0) continue; // constant channel: every code is 0, deq = m
    const n = 2 ** bits - 1;
    const base = j * rowLength;
    for (let k = 0; k < rowLength; k++) {
      const q = roundHalfEven((weights[base + k]! - m) / s);
      codes[base + k] = q > n ? n : q; // q >= 0 because w >= m
    }
  }
  return { outChannels, rowLength, bits: bitsPerChannel.slice(), codes, scale, zero: min, max };
}

/** Checks that a QuantizedChannels is self-consistent (e.g. after deserialising it). */
export function checkQuantized(q: QuantizedChannels): void {
  const { outChannels, rowLength } = resolveLayout(q);
  checkBitsPerChannel(q.bits, outChannels);
  for (const [name, arr] of [
    ['scale', q.scale],
    ['zero', q.zero],
    ['max', q.max],
  ] as const) {
    if (arr.length !== outChannels) {
      throw new QuantizeError(
        'QUANT_LENGTH_MISMATCH',
        `${name} has ${arr.length} entries, expected ${outChannels}`,
      );
    }
  }
  if (q.codes.length !== outChannels * rowLength) {
    throw new QuantizeError(
      'QUANT_LENGTH_MISMATCH',
      `codes have ${q.codes.length} values, expected ${outChannels} x ${rowLength}`,
    );
  }
  for (let j = 0; j < outChannels; j++) {
    const n = 2 ** q.bits[j]! - 1;
    const base = j * rowLength;
    for (let k = 0; k < rowLength; k++) {
      if (q.codes[base + k]! > n) {
        throw new QuantizeError(
          'QUANT_BAD_CODE',
          `code ${q.codes[base + k]} of channel ${j} exceeds ${n} (${q.bits[j]} bits)`,
        );
      }
    }
  }
}

/** Dequantized weights, row-major in the original channel order. */
export function dequantizeChannels(q: QuantizedChannels): Float32Array {
  checkQuantized(q);
  const { outChannels, rowLength } = q;
  const out = new Float32Array(outChannels * rowLength);
  for (let j = 0; j < outChannels; j++) {
    const bits = q.bits[j]!;
    const s = q.scale[j]!;
    const m = q.zero[j]!;
    const hi = q.max[j]!;
    const base = j * rowLength;
    for (let k = 0; k < rowLength; k++) {
      out[base + k] = dequantizeCode(q.codes[base + k]!, bits, s, m, hi);
    }
  }
  return out;
}

/**
 * Quantize-then-dequantize in one call. `bits` is one width for every channel or one per channel
 * (OFF_BITS allowed: those channels become 0).
 */
export function fakeQuantize(
  weights: Float32Array,
  layout: ChannelLayout,
  bits: number | Uint8Array,
): Float32Array {
  const { outChannels } = resolveLayout(layout);
  let perChannel: Uint8Array;
  if (typeof bits === 'number') {
    checkChannelBits(bits);
    perChannel = new Uint8Array(outChannels).fill(bits);
  } else {
    perChannel = bits;
  }
  return dequantizeChannels(quantizeChannels(weights, layout, perChannel));
}
