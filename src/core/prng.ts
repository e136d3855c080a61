/**
 * Counter-based PRNG for the frozen backbone weights: Philox4x32-10 (Salmon et al., SC'11,
 * "Parallel random numbers: as easy as 1, 2, 3"; the Random123 reference).
 *
 * Why Philox: it is a pure function of (key, counter), so element i of any tensor can be
 * regenerated on its own (a device can rebuild one channel, a test can rebuild a slice), it
 * passes BigCrush, it has published known-answer vectors to pin the implementation against, and
 * it needs only 32-bit multiplies, which JavaScript can do exactly: the low half with
 * `Math.imul`, the high half from 16-bit limbs whose partial products stay below 2^53. No
 * floating-point library call is involved in the integer stream, so it is bit-identical in every
 * JavaScript engine.
 *
 * Keying: key = (seed, stream), where stream = FNV-1a-32 of the layer name's UTF-8 bytes.
 * Counter words: (block low 32 bits, block high bits, domain, 0). The domain word separates the
 * uniform stream from the normal stream of the same (seed, stream) so the two never share bits.
 */

const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
const PHILOX_W0 = 0x9e3779b9;
const PHILOX_W1 = 0xbb67ae85;
const PHILOX_ROUNDS = 10;

const TWO_POW_32 = 4294967296;
const TWO_POW_MINUS_32 = 1 / TWO_POW_32;
const TWO_POW_MINUS_53 = 1 / 9007199254740992;

/** Counter word 2: which derived distribution a block feeds. */
const DOMAIN_UNIFORM = 0;
const DOMAIN_NORMAL = 1;

/** High 32 bits of the 64-bit product of two u32 values. */
export function mulHi32(a: number, b: number): number {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  // Each partial product of 16-bit limbs is < 2^32 and each sum below stays < 2^32 (they are
  // pieces of a 64-bit product), so the double arithmetic is exact and `>>>`/`&` see exact u32s.
  const lolo = aLo * bLo;
  const mid1 = aHi * bLo + (lolo >>> 16);
  const mid2 = aLo * bHi + (mid1 & 0xffff);
  return (aHi * bHi + (mid1 >>> 16) + (mid2 >>> 16)) >>> 0;
}

/**
 * One Philox4x32-10 block: encrypts counter (c0..c3) under key (k0, k1) and writes the four
 * output words to `out[0..3]`.
 */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): void {
  let x0 = c0 >>> 0;
  let x1 = c1 >>> 0;
  let x2 = c2 >>> 0;
  let x3 = c3 >>> 0;
  let key0 = k0 >>> 0;
  let key1 = k1 >>> 0;
  for (let round = 0; round < PHILOX_ROUNDS; round++) {
    const hi0 = mulHi32(PHILOX_M0, x0);
    const lo0 = Math.imul(PHILOX_M0, x0) >>> 0;
    const hi1 = mulHi32(PHILOX_M1, x2);
    const lo1 = Math.imul(PHILOX_M1, x2) >>> 0;
    x0 = (hi1 ^ x1 ^ key0) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ key1) >>> 0;
    x3 = lo0;
    key0 = (key0 + PHILOX_W0) >>> 0;
    key1 = (key1 + PHILOX_W1) >>> 0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}

/** FNV-1a (32-bit) over the UTF-8 bytes of `name`: the stable stream id of a layer. */
export function streamId(name: string): number {
  const bytes = new TextEncoder().encode(name);
  let h = 0x811c9dc5;
  for (const byte of bytes) {
    h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function assertU32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`${what} must be an integer in [0, 2^32), got ${value}`);
  }
}

function assertIndex(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${value}`);
  }
}

/** Runs Philox on block number `blockIndex` (any safe integer) of a domain. */
function block(
  seed: number,
  stream: number,
  domain: number,
  blockIndex: number,
  out: Uint32Array,
): void {
  philox4x32(
    blockIndex >>> 0,
    Math.floor(blockIndex / TWO_POW_32) >>> 0,
    domain,
    0,
    seed,
    stream,
    out,
  );
}

/** The u32 at position `counter` of the uniform sequence keyed by (seed, stream). */
export function uniformU32(seed: number, stream: number, counter: number): number {
  assertU32(seed, 'seed');
  assertU32(stream, 'stream');
  assertIndex(counter, 'counter');
  const out = new Uint32Array(4);
  block(seed, stream, DOMAIN_UNIFORM, Math.floor(counter / 4), out);
  return out[counter % 4]!;
}

/**
 * Fills `out[j]` with element `offset + j` of U[lo, hi) keyed by (seed, stream), rounded to
 * float32. The real-valued draw is u = x / 2^32 with x the u32 at that counter; rounding the
 * result to float32 can land exactly on `hi`, so the float32 values lie in [lo, hi].
 */
export function fillUniform<T extends Float32Array>(
  out: T,
  seed: number,
  stream: number,
  lo: number,
  hi: number,
  offset = 0,
): T {
  assertU32(seed, 'seed');
  assertU32(stream, 'stream');
  assertIndex(offset, 'offset');
  assertIndex(offset + out.length, 'offset + length');
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(lo <= hi)) {
    throw new RangeError(`uniform bounds must be finite with lo <= hi, got [${lo}, ${hi}]`);
  }
  const span = hi - lo;
  const words = new Uint32Array(4);
  let cachedBlock = -1;
  for (let j = 0; j < out.length; j++) {
    const i = offset + j;
    const b = Math.floor(i / 4);
    if (b !== cachedBlock) {
      block(seed, stream, DOMAIN_UNIFORM, b, words);
      cachedBlock = b;
    }
    out[j] = lo + span * (words[i % 4]! * TWO_POW_MINUS_32);
  }
  return out;
}

/** A double in (0, 1) with 53 random bits from two u32 words; never 0, so log() is finite. */
function openUnit53(a: number, b: number): number {
  return ((a >>> 5) * 67108864 + (b >>> 6) + 0.5) * TWO_POW_MINUS_53;
}

/**
 * Fills `out[j]` with element `offset + j` of N(mean, std^2) keyed by (seed, stream), rounded
 * to float32. Box–Muller: normal block p (one Philox call) gives two 53-bit uniforms u1, u2;
 * element 2p is r·cos(θ) and element 2p+1 is r·sin(θ) with r = sqrt(-2 ln u1), θ = 2π u2.
 * Math.log/cos/sin are fdlibm ports in V8 (Node and Chromium share them), and a last-ulp
 * difference in another engine's double result almost never survives rounding to float32.
 */
export function fillNormal<T extends Float32Array>(
  out: T,
  seed: number,
  stream: number,
  mean: number,
  std: number,
  offset = 0,
): T {
  assertU32(seed, 'seed');
  assertU32(stream, 'stream');
  assertIndex(offset, 'offset');
  assertIndex(offset + out.length, 'offset + length');
  if (!Number.isFinite(mean) || !Number.isFinite(std) || std < 0) {
    throw new RangeError(`normal needs finite mean and std >= 0, got mean ${mean}, std ${std}`);
  }
  const words = new Uint32Array(4);
  let cachedPair = -1;
  let radius = 0;
  let theta = 0;
  for (let j = 0; j < out.length; j++) {
    const i = offset + j;
    const pair = Math.floor(i / 2);
    if (pair !== cachedPair) {
      block(seed, stream, DOMAIN_NORMAL, pair, words);
      const u1 = openUnit53(words[0]!, words[1]!);
      const u2 = openUnit53(words[2]!, words[3]!);
      radius = Math.sqrt(-2 * Math.log(u1));
      theta = 2 * Math.PI * u2;
      cachedPair = pair;
    }
    const z = i % 2 === 0 ? radius * Math.cos(theta) : radius * Math.sin(theta);
    out[j] = mean + std * z;
  }
  return out;
}
