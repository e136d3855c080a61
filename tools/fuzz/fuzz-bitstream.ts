/**
 * Deterministic fuzzer for the strategy bitstream decoder (pure; the CLI lives in
 * fuzz-bitstream-cli.ts). Every case draws from its own PRNG seeded by (seed, case index), so a
 * failing case can be replayed alone with `runBitstreamFuzzCase(seed, index)`.
 *
 * Invariants checked on every decode attempt:
 * - decode returns or throws a BitstreamError whose code is a known one, nothing else;
 * - a successful decode re-encodes to exactly the input bytes and satisfies the expectation it
 *   was given (model, hash, layer names and counts).
 * And per case kind:
 * - a valid, unmutated stream decodes to the strategy that was encoded;
 * - edits whose outcome is known must fail with that code (a single bit flip is always
 *   rejected, a truncation is 'BITSTREAM_TRUNCATED', non-zero padding with a repaired CRC is
 *   'BITSTREAM_BAD_PADDING', ...).
 * A crash is any other exception or a broken invariant.
 */
import {
  BITSTREAM_ERROR_CODES,
  BitstreamError,
  decodeStrategy,
  encodeStrategy,
  MAX_CHANNELS_PER_LAYER,
  MAX_LAYERS,
  MAX_TOTAL_CHANNELS,
  type BitstreamErrorCode,
  type DecodedStrategy,
  type ExpectedLayer,
  type StrategyExpectation,
} from '../../src/core/bitstream.ts';
import { crc32 } from '../../src/core/crc32.ts';
import type { LevelTable, Strategy } from '../../src/core/strategy.ts';

export interface FuzzOptions {
  readonly cases: number;
  readonly seed: number;
  /** How many failing inputs to keep (default 5). */
  readonly maxFailures?: number;
  /** Called every `progressEvery` cases (default 1000) and once at the end. */
  readonly onProgress?: (done: number, crashes: number) => void;
  readonly progressEvery?: number;
}

export interface FuzzFailure {
  /** Case index; replay with runBitstreamFuzzCase(seed, caseIndex). */
  readonly caseIndex: number;
  readonly kind: string;
  readonly reason: string;
  readonly inputLength: number;
  /** Input bytes as hex, cut to MAX_FAILURE_HEX_BYTES bytes (then ending in "..."). */
  readonly hex: string;
}

export interface FuzzResult {
  readonly cases: number;
  readonly crashes: number;
  readonly failures: FuzzFailure[];
  /** How often each decode outcome ('ok' or an error code) was seen: shows which checks were reached. */
  readonly outcomes: Record<string, number>;
}

export const MAX_FAILURE_HEX_BYTES = 4096;

/** sfc32: small, fast, good enough for fuzzing; state seeded through splitmix32. */
export class FuzzRng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    let s = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  fill(out: Uint8Array): Uint8Array {
    for (let i = 0; i < out.length; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

const SLUG_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789._-';
const SLUG_EDGE_BYTES = [
  0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x39, 0x3a, 0x40, 0x41, 0x5a, 0x5e, 0x5f, 0x60, 0x61, 0x7a, 0x7b, 0x20, 0x00, 0x80, 0xff,
];
const KNOWN_CODES: ReadonlySet<string> = new Set(BITSTREAM_ERROR_CODES);

export interface ValidSample {
  readonly strategy: Strategy;
  readonly modelId: string;
  readonly frozenWeightsHash: string;
  readonly bytes: Uint8Array;
  readonly manifest: readonly ExpectedLayer[];
}

function randomChannelCount(rng: FuzzRng): number {
  const r = rng.int(1000);
  if (r < 2) return MAX_CHANNELS_PER_LAYER; // exercises the upper bound, rarely (it is slow)
  if (r < 60) return rng.range(1, 600);
  return rng.range(1, 48);
}

function randomLayerCount(rng: FuzzRng): number {
  const r = rng.int(1000);
  if (r < 2) return MAX_LAYERS;
  if (r < 60) return rng.range(1, 64);
  return rng.range(1, 6);
}

/** A random valid strategy with its metadata, encoded. */
export function randomValidSample(rng: FuzzRng): ValidSample {
  const layerCount = randomLayerCount(rng);
  const bigLayers = layerCount === MAX_LAYERS;
  const layers = [];
  const manifest: ExpectedLayer[] = [];
  for (let i = 0; i < layerCount; i++) {
    const n = bigLayers ? rng.range(1, 4) : randomChannelCount(rng);
    const levels = new Uint8Array(n);
    for (let j = 0; j < n; j += 16) {
      const w = rng.u32();
      for (let k = 0; k < 16 && j + k < n; k++) levels[j + k] = (w >>> (2 * k)) & 3;
    }
    const name = `blocks.${i}.${rng.pick(['attn.q', 'attn.k', 'ffn.w1', 'conv'])}`;
    layers.push({ name, levels });
    manifest.push({ name, outChannels: n });
  }
  // 0 (the off level) sorts first whenever it is chosen: the only place a table may hold it.
  const bits = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const chosen: number[] = [];
  while (chosen.length < 4) {
    const k = rng.int(bits.length);
    chosen.push(bits[k]!);
    bits.splice(k, 1);
  }
  chosen.sort((x, y) => x - y);
  const levelTable = chosen as unknown as LevelTable;
  const beta = rng.chance(0.5) ? rng.pick([0, 1, 0.125, 0.25, 0.5]) : rng.u32() / 4294967295;
  const idLen = rng.chance(0.05) ? 64 : rng.range(1, 20);
  let modelId = '';
  for (let i = 0; i < idLen; i++) modelId += SLUG_CHARS[rng.int(SLUG_CHARS.length)];
  let hash = '';
  for (let i = 0; i < 8; i++) hash += rng.u32().toString(16).padStart(8, '0');
  if (rng.chance(0.2)) hash = hash.toUpperCase();
  const strategy: Strategy = { levelTable, beta, layers };
  const bytes = encodeStrategy(strategy, { modelId, frozenWeightsHash: hash });
  return { strategy, modelId, frozenWeightsHash: hash, bytes, manifest };
}

function toHex(bytes: Uint8Array): string {
  const n = Math.min(bytes.length, MAX_FAILURE_HEX_BYTES);
  let s = '';
  for (let i = 0; i < n; i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return n < bytes.length ? s + '...' : s;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Rewrites the trailing CRC so that mutated content gets past the checksum. */
function repairCrc(bytes: Uint8Array): void {
  if (bytes.length < 4) return;
  const p = bytes.length - 4;
  const c = crc32(bytes.subarray(0, p));
  bytes[p] = c & 0xff;
  bytes[p + 1] = (c >>> 8) & 0xff;
  bytes[p + 2] = (c >>> 16) & 0xff;
  bytes[p + 3] = (c >>> 24) & 0xff;
}

/** Header field offsets of a valid stream. */
interface Layout {
  readonly idLen: number;
  readonly offHash: number;
  readonly offLevels: number;
  readonly offBeta: number;
  readonly offLayerCount: number;
  readonly offCounts: number;
  readonly offPayload: number;
  readonly offCrc: number;
  readonly totalChannels: number;
}

function layoutOf(sample: ValidSample): Layout {
  const idLen = sample.modelId.length;
  const offHash = 9 + idLen;
  const offLevels = offHash + 32;
  const offBeta = offLevels + 4;
  const offLayerCount = offBeta + 2;
  const offCounts = offLayerCount + 2;
  const offPayload = offCounts + 4 * sample.strategy.layers.length;
  let totalChannels = 0;
  for (const l of sample.strategy.layers) totalChannels += l.levels.length;
  return {
    idLen,
    offHash,
    offLevels,
    offBeta,
    offLayerCount,
    offCounts,
    offPayload,
    offCrc: sample.bytes.length - 4,
    totalChannels,
  };
}

function setU16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}

function setU32(b: Uint8Array, off: number, v: number): void {
  setU16(b, off, v & 0xffff);
  setU16(b, off + 2, (v >>> 16) & 0xffff);
}

function interestingCount(rng: FuzzRng, current: number, max: number): number {
  return rng.pick([0, 1, current - 1, current + 1, max, max + 1, 0xffff, 0x10000, 0xffffffff, rng.u32()]) >>> 0;
}

/**
 * After a count edit, makes the buffer length agree with the counts it now declares and repairs
 * the CRC, so only the decoder's own count checks stand between the edit and a successful decode.
 */
function resizeToDeclared(bytes: Uint8Array, layout: Layout, rng: FuzzRng): Uint8Array {
  const layerCount = bytes[layout.offLayerCount]! | (bytes[layout.offLayerCount + 1]! << 8);
  const countsEnd = layout.offCounts + 4 * layerCount;
  if (countsEnd > bytes.length) return bytes;
  const counts: number[] = [];
  for (let i = 0; i < layerCount; i++) {
    const o = layout.offCounts + 4 * i;
    counts.push((bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24)) >>> 0);
  }
  // Sized from the raw counts, valid or not, so a decoder that skipped a count check would
  // reach its CRC and later checks; capped so the fuzzer itself stays small and fast.
  let total = 0;
  for (const c of counts) total += c;
  if (total > 2 * MAX_TOTAL_CHANNELS) return bytes;
  const size = layout.offCounts + 4 * layerCount + Math.ceil(total / 4) + 4;
  const out = new Uint8Array(size);
  // Old CRC bytes may land in the counts or payload: that is fine, they are just more data.
  out.set(bytes.subarray(0, Math.min(size - 4, bytes.length)));
  if (bytes.length < size - 4) rng.fill(out.subarray(bytes.length, size - 4));
  const used = total & 3;
  if (used !== 0 && rng.chance(0.8)) out[size - 5] = out[size - 5]! & ((1 << (2 * used)) - 1);
  repairCrc(out);
  return out;
}

/** What a case expects of its decode, beyond the general invariants. */
type Expectation =
  | { readonly kind: 'any' }
  | { readonly kind: 'reject' }
  | { readonly kind: 'accept' }
  | { readonly kind: 'code'; readonly code: BitstreamErrorCode }
  | { readonly kind: 'exact'; readonly sample: ValidSample; readonly withManifest: boolean };

interface FuzzCase {
  readonly kind: string;
  readonly input: Uint8Array;
  readonly expect?: StrategyExpectation;
  readonly outcome: Expectation;
}

const ANY: Expectation = { kind: 'any' };

function randomBytesCase(rng: FuzzRng): FuzzCase {
  const len = rng.chance(0.8) ? rng.int(128) : rng.int(4096);
  const input = rng.fill(new Uint8Array(len));
  if (rng.chance(0.5) && len >= 6) {
    // Get past magic and version so the header parser is exercised on random data.
    input.set([0x43, 0x48, 0x52, 0x44, 1], 0);
    if (rng.chance(0.7)) input[5] = 0;
    if (rng.chance(0.7) && len >= 8) setU16(input, 6, 0);
    if (rng.chance(0.5) && len >= 9) input[8] = rng.range(1, 64);
    if (rng.chance(0.5)) repairCrc(input);
    return { kind: 'random-with-prefix', input, outcome: ANY };
  }
  return { kind: 'random', input, outcome: ANY };
}

function otherSlug(rng: FuzzRng, not: string): string {
  let s = '';
  do {
    s = '';
    const n = rng.range(1, 12);
    for (let i = 0; i < n; i++) s += SLUG_CHARS[rng.int(SLUG_CHARS.length)];
  } while (s === not);
  return s;
}

function mutationCase(rng: FuzzRng, sample: ValidSample, other: () => ValidSample): FuzzCase {
  const src = sample.bytes;
  const L = layoutOf(sample);
  const b = src.slice();
  const op = rng.int(15);
  switch (op) {
    case 0: {
      const bit = rng.int(b.length * 8);
      b[bit >> 3]! ^= 1 << (bit & 7);
      // CRC-32 detects every single-bit error, and a flip in a layout field breaks the length.
      return { kind: 'bit-flip', input: b, outcome: { kind: 'reject' } };
    }
    case 1: {
      const flips = rng.range(2, 16);
      for (let i = 0; i < flips; i++) {
        const bit = rng.int(b.length * 8);
        b[bit >> 3]! ^= 1 << (bit & 7);
      }
      const fixed = rng.chance(0.5);
      if (fixed) repairCrc(b);
      return { kind: fixed ? 'bit-flips+crc' : 'bit-flips', input: b, outcome: ANY };
    }
    case 2: {
      const sets = rng.range(1, 8);
      for (let i = 0; i < sets; i++) b[rng.int(b.length)] = rng.pick([0, 0xff, 0x7f, 0x80, 1, rng.u32() & 0xff]);
      const fixed = rng.chance(0.5);
      if (fixed) repairCrc(b);
      return { kind: fixed ? 'byte-set+crc' : 'byte-set', input: b, outcome: ANY };
    }
    case 3: {
      const len = rng.int(src.length);
      return { kind: 'truncate', input: src.slice(0, len), outcome: { kind: 'code', code: 'BITSTREAM_TRUNCATED' } };
    }
    case 4: {
      const extra = rng.fill(new Uint8Array(rng.range(1, 64)));
      const input = new Uint8Array(src.length + extra.length);
      input.set(src);
      input.set(extra, src.length);
      return { kind: 'extend', input, outcome: { kind: 'code', code: 'BITSTREAM_TRAILING_BYTES' } };
    }
    case 5: {
      const o = other().bytes;
      const i = rng.int(src.length + 1);
      const j = rng.int(o.length + 1);
      const input = new Uint8Array(i + o.length - j);
      input.set(src.subarray(0, i));
      input.set(o.subarray(j), i);
      if (rng.chance(0.5)) repairCrc(input);
      return { kind: 'splice', input, outcome: ANY };
    }
    case 6: {
      b[4] = rng.pick([0, 2, 0xff, rng.range(2, 255)]);
      repairCrc(b);
      return { kind: 'edit-version', input: b, outcome: { kind: 'code', code: 'BITSTREAM_UNSUPPORTED_VERSION' } };
    }
    case 7: {
      if (rng.chance(0.5)) b[5] = rng.range(1, 255);
      else setU16(b, 6, rng.range(1, 0xffff));
      repairCrc(b);
      return { kind: 'edit-flags', input: b, outcome: { kind: 'code', code: 'BITSTREAM_BAD_FLAGS' } };
    }
    case 8: {
      const i = rng.int(L.idLen);
      // Half the time a byte next to the edges of [a-z0-9._-], where an off-by-one would hide.
      const v = rng.chance(0.5) ? rng.pick(SLUG_EDGE_BYTES) : rng.u32() & 0xff;
      b[9 + i] = v;
      repairCrc(b);
      const slug = SLUG_CHARS.includes(String.fromCharCode(v));
      return {
        kind: 'edit-model-id',
        input: b,
        outcome: slug ? ANY : { kind: 'code', code: 'BITSTREAM_BAD_MODEL_ID' },
      };
    }
    case 9: {
      // Model id length: a layout field, so the rest of the stream no longer lines up.
      b[8] = rng.pick([0, 65, 255, L.idLen + 1, L.idLen - 1, rng.int(256)]);
      // Without a CRC repair a one-byte change is always caught (CRC-32 detects bursts <= 32 bits).
      const fixed = rng.chance(0.5);
      if (fixed) repairCrc(b);
      const outcome: Expectation = fixed || b[8] === L.idLen ? ANY : { kind: 'reject' };
      return { kind: fixed ? 'edit-model-id-length+crc' : 'edit-model-id-length', input: b, outcome };
    }
    case 10: {
      const table = [b[L.offLevels]!, b[L.offLevels + 1]!, b[L.offLevels + 2]!, b[L.offLevels + 3]!];
      table[rng.int(4)] = rng.chance(0.7) ? rng.int(10) : rng.u32() & 0xff;
      b.set(table, L.offLevels);
      repairCrc(b);
      let valid = true;
      for (let i = 0; i < 4; i++) {
        const t = table[i]!;
        if (t < (i === 0 ? 0 : 1) || t > 8 || (i > 0 && t <= table[i - 1]!)) valid = false;
      }
      return {
        kind: 'edit-level-table',
        input: b,
        outcome: valid ? ANY : { kind: 'code', code: 'BITSTREAM_BAD_LEVEL_TABLE' },
      };
    }
    case 11: {
      setU16(b, L.offBeta, rng.u32() & 0xffff);
      if (rng.chance(0.3)) b[L.offHash + rng.int(32)] = rng.u32() & 0xff;
      repairCrc(b);
      // Every u16 is a valid beta and every hash is a valid hash: this must decode.
      return { kind: 'edit-beta-hash', input: b, outcome: { kind: 'accept' } };
    }
    case 12: {
      const layers = sample.strategy.layers.length;
      if (rng.chance(0.3)) {
        setU16(b, L.offLayerCount, interestingCount(rng, layers, MAX_LAYERS) & 0xffff);
      } else {
        const i = rng.int(layers);
        const current = sample.strategy.layers[i]!.levels.length;
        setU32(b, L.offCounts + 4 * i, interestingCount(rng, current, MAX_CHANNELS_PER_LAYER));
      }
      const input = rng.chance(0.7) ? resizeToDeclared(b, L, rng) : (repairCrc(b), b);
      return { kind: 'edit-counts', input, outcome: ANY };
    }
    case 13: {
      const used = L.totalChannels & 3;
      if (used === 0) {
        b[L.offPayload + rng.int(L.offCrc - L.offPayload)] = rng.u32() & 0xff;
        repairCrc(b);
        return { kind: 'edit-payload', input: b, outcome: ANY };
      }
      const padMask = 0xff & ~((1 << (2 * used)) - 1);
      b[L.offCrc - 1]! |= padMask & (rng.range(1, 255) << (2 * used));
      if (b[L.offCrc - 1] === src[L.offCrc - 1]) b[L.offCrc - 1]! |= 0x80;
      repairCrc(b);
      return { kind: 'edit-padding', input: b, outcome: { kind: 'code', code: 'BITSTREAM_BAD_PADDING' } };
    }
    default: {
      // Valid stream, wrong expectation.
      const which = rng.int(3);
      if (which === 0) {
        return {
          kind: 'expect-model',
          input: b,
          expect: { modelId: otherSlug(rng, sample.modelId) },
          outcome: { kind: 'code', code: 'BITSTREAM_MODEL_MISMATCH' },
        };
      }
      if (which === 1) {
        const h = sample.frozenWeightsHash.toLowerCase();
        const k = rng.int(64);
        const d = ((parseInt(h[k]!, 16) + rng.range(1, 15)) & 15).toString(16);
        return {
          kind: 'expect-hash',
          input: b,
          expect: { modelId: sample.modelId, frozenWeightsHash: h.slice(0, k) + d + h.slice(k + 1) },
          outcome: { kind: 'code', code: 'BITSTREAM_HASH_MISMATCH' },
        };
      }
      const manifest = sample.manifest.map((l) => ({ ...l }));
      const r = rng.int(3);
      if (r === 0) manifest.pop();
      else if (r === 1) manifest.push({ name: 'extra', outChannels: rng.range(1, 64) });
      else {
        const i = rng.int(manifest.length);
        manifest[i] = { name: manifest[i]!.name, outChannels: manifest[i]!.outChannels + rng.pick([-1, 1, 7]) };
      }
      return {
        kind: 'expect-layers',
        input: b,
        expect: { frozenWeightsHash: sample.frozenWeightsHash, layers: manifest },
        outcome: { kind: 'code', code: 'BITSTREAM_LAYER_MISMATCH' },
      };
    }
  }
}

/** Builds case `index` of the run seeded by `seed`. */
function buildCase(seed: number, index: number): FuzzCase {
  const rng = new FuzzRng(seed, index);
  const r = rng.int(100);
  if (r < 12) return randomBytesCase(rng);
  const sample = randomValidSample(rng);
  if (r < 24) {
    const withManifest = rng.chance(0.5);
    return {
      kind: withManifest ? 'valid+manifest' : 'valid',
      input: sample.bytes,
      expect: withManifest
        ? { modelId: sample.modelId, frozenWeightsHash: sample.frozenWeightsHash, layers: sample.manifest }
        : undefined,
      outcome: { kind: 'exact', sample, withManifest },
    };
  }
  return mutationCase(rng, sample, () => randomValidSample(rng));
}

/** Places the input at a non-zero offset of a larger buffer, to catch decoders that ignore byteOffset. */
function atOffset(input: Uint8Array, rng: FuzzRng): Uint8Array {
  const pre = rng.range(1, 7);
  const buf = rng.fill(new Uint8Array(pre + input.length + rng.range(0, 7)));
  buf.set(input, pre);
  return buf.subarray(pre, pre + input.length);
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return `non-Error thrown: ${String(e)}`;
}

function checkSatisfies(d: DecodedStrategy, expect: StrategyExpectation | undefined): string | null {
  if (!expect) return null;
  if (expect.modelId !== undefined && d.modelId !== expect.modelId) return 'decoded modelId differs from expectation';
  if (expect.frozenWeightsHash !== undefined && d.frozenWeightsHash !== expect.frozenWeightsHash.toLowerCase()) {
    return 'decoded hash differs from expectation';
  }
  if (expect.layers) {
    if (expect.layers.length !== d.strategy.layers.length) return 'decoded layer count differs from manifest';
    for (let i = 0; i < expect.layers.length; i++) {
      const e = expect.layers[i]!;
      const l = d.strategy.layers[i]!;
      if (l.name !== e.name || l.levels.length !== e.outChannels) return `decoded layer ${i} differs from manifest`;
    }
  }
  return null;
}

function checkExact(d: DecodedStrategy, sample: ValidSample, withManifest: boolean): string | null {
  const s = sample.strategy;
  if (d.modelId !== sample.modelId) return 'modelId changed in round trip';
  if (d.frozenWeightsHash !== sample.frozenWeightsHash.toLowerCase()) return 'hash changed in round trip';
  if (d.strategy.levelTable.join() !== s.levelTable.join()) return 'level table changed in round trip';
  if (Math.abs(d.strategy.beta - s.beta) > 0.5 / 65535 + 1e-12) return `beta ${s.beta} came back as ${d.strategy.beta}`;
  if (d.strategy.layers.length !== s.layers.length) return 'layer count changed in round trip';
  for (let i = 0; i < s.layers.length; i++) {
    const a = s.layers[i]!;
    const b = d.strategy.layers[i]!;
    if (b.name !== (withManifest ? a.name : `layer${i}`)) return `layer ${i} name is ${b.name}`;
    if (!sameBytes(a.levels, b.levels)) return `layer ${i} levels changed in round trip`;
  }
  return null;
}

interface CaseOutcome {
  readonly outcome: string;
  readonly crash: string | null;
}

/** Decodes one case and checks every invariant; returns the outcome and the crash reason, if any. */
function judge(c: FuzzCase, input: Uint8Array): CaseOutcome {
  let decoded: DecodedStrategy;
  try {
    decoded = decodeStrategy(input, c.expect);
  } catch (e) {
    if (!(e instanceof BitstreamError) || !KNOWN_CODES.has(e.code)) {
      return { outcome: 'crash', crash: `decode threw ${describe(e)}` };
    }
    const o = c.outcome;
    if (o.kind === 'exact') return { outcome: e.code, crash: `valid stream rejected: ${e.code}: ${e.message}` };
    if (o.kind === 'code' && o.code !== e.code) {
      return { outcome: e.code, crash: `expected ${o.code}, got ${e.code}: ${e.message}` };
    }
    if (o.kind === 'accept') return { outcome: e.code, crash: `expected success, got ${e.code}: ${e.message}` };
    return { outcome: e.code, crash: null };
  }
  const o = c.outcome;
  if (o.kind === 'reject') return { outcome: 'ok', crash: 'corrupted stream was accepted' };
  if (o.kind === 'code') return { outcome: 'ok', crash: `expected ${o.code}, decode succeeded` };
  const unmet = checkSatisfies(decoded, c.expect);
  if (unmet) return { outcome: 'ok', crash: unmet };
  if (o.kind === 'exact') {
    const diff = checkExact(decoded, o.sample, o.withManifest);
    if (diff) return { outcome: 'ok', crash: diff };
  }
  let again: Uint8Array;
  try {
    again = encodeStrategy(decoded.strategy, decoded);
  } catch (e) {
    return { outcome: 'ok', crash: `re-encode of a decoded stream threw ${describe(e)}` };
  }
  if (!sameBytes(again, input)) return { outcome: 'ok', crash: 're-encode differs from the decoded bytes' };
  return { outcome: 'ok', crash: null };
}

/** Runs and judges case `index` of the run seeded by `seed`. */
export function runBitstreamFuzzCase(
  seed: number,
  index: number,
): { kind: string; input: Uint8Array; outcome: string; crash: string | null } {
  const c = buildCase(seed, index);
  const rng = new FuzzRng(seed ^ 0x5bd1e995, index);
  const input = rng.chance(0.25) ? atOffset(c.input, rng) : c.input;
  let result: CaseOutcome;
  try {
    result = judge(c, input);
  } catch (e) {
    result = { outcome: 'crash', crash: `fuzzer check threw ${describe(e)}` };
  }
  return { kind: c.kind, input, ...result };
}

export function runBitstreamFuzz(options: FuzzOptions): FuzzResult {
  const { cases, seed } = options;
  if (!Number.isInteger(cases) || cases < 0) throw new RangeError(`cases must be a non-negative integer, got ${cases}`);
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  const maxFailures = options.maxFailures ?? 5;
  const every = Math.max(1, options.progressEvery ?? 1000);
  const failures: FuzzFailure[] = [];
  const outcomes: Record<string, number> = {};
  let crashes = 0;
  for (let i = 0; i < cases; i++) {
    const r = runBitstreamFuzzCase(seed, i);
    outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
    if (r.crash !== null) {
      crashes++;
      if (failures.length < maxFailures) {
        failures.push({ caseIndex: i, kind: r.kind, reason: r.crash, inputLength: r.input.length, hex: toHex(r.input) });
      }
    }
    if (options.onProgress && (i + 1) % every === 0) options.onProgress(i + 1, crashes);
  }
  options.onProgress?.(cases, crashes);
  return { cases, crashes, failures, outcomes };
}
