/**
 * Strategy bitstream, version 1: what the cloud sends the device. It carries one 2-bit level
 * index per output channel of every quantizable layer, plus what the device needs to check that
 * the strategy was computed for the model it actually holds.
 *
 * All multi-byte integers are little-endian. n = modelId length, L = layerCount,
 * C = sum of the channel counts, P = ceil(C / 4) payload bytes.
 *
 * | offset        | size | field                                                                  |
 * |---------------|------|------------------------------------------------------------------------|
 * | 0             | 4    | magic "CHRD" (0x43 0x48 0x52 0x44)                                      |
 * | 4             | 1    | version u8 = 1                                                         |
 * | 5             | 1    | flags u8, must be 0 in v1                                              |
 * | 6             | 2    | reserved u16, must be 0                                                |
 * | 8             | 1    | modelId length n, 1..64                                                |
 * | 9             | n    | modelId, UTF-8; v1 only admits the slug alphabet [a-z0-9._-]            |
 * | 9+n           | 32   | frozen-weights hash: raw SHA-256 bytes                                 |
 * | 41+n          | 4    | level table: 4 x u8 bit widths, strictly increasing; the first in 0..8  |
 * |               |      | (0 = OFF_BITS: that level's channels are switched off), the rest 1..8   |
 * | 45+n          | 2    | beta u16 = round(beta * 65535), beta in [0, 1]                          |
 * | 47+n          | 2    | layerCount L u16, 1..1024                                              |
 * | 49+n          | 4L   | per layer: channel count u32, 1..65536; C <= 2^22                      |
 * | 49+n+4L       | P    | payload: 2 bits per channel, layers concatenated in order; channel c    |
 * |               |      | sits in byte c>>2 at bits 2*(c&3)..2*(c&3)+1 (LSB first); bits past C   |
 * |               |      | in the last byte are padding and must be 0                              |
 * | 49+n+4L+P     | 4    | CRC-32 (IEEE, reflected, as zlib) of every preceding byte, u32          |
 *
 * Total size: 53 + n + 4L + P bytes (59 at least, about 1 MiB at most).
 *
 * Off level, no version bump: a level table may start at 0 in version 1. The layout and every
 * other field keep their meaning, so every stream an older encoder wrote decodes as before, and a
 * decoder from before the off level rejects a table starting at 0 with BITSTREAM_BAD_LEVEL_TABLE
 * (after the CRC): a typed error naming what it cannot read. A version 2 written only for such
 * tables would tell an old decoder no more (BITSTREAM_UNSUPPORTED_VERSION) while tying the version
 * to a field; one written for every stream would make old pages refuse strategies they can apply.
 *
 * Every field is canonical (padding, flags and reserved must be 0; beta is stored, not derived),
 * so a stream that decodes re-encodes to exactly the same bytes.
 *
 * Decoding order: the fields that decide the layout (length floor, magic, version, flags,
 * modelId length, layer and channel counts) are checked with bounds checks as they are read;
 * the exact total length follows from the checked counts and is compared with the buffer before
 * anything is allocated; then the CRC; only then the semantic checks (modelId alphabet, level
 * table, padding) and the caller's expectations (model, hash, layers).
 */
import { ChordError, ERROR_CODES } from './errors.ts';
import { crc32 } from './crc32.ts';
import { levelTableProblem, type LayerStrategy, type LevelTable, type Strategy } from './strategy.ts';

export const BITSTREAM_MAGIC: readonly number[] = [0x43, 0x48, 0x52, 0x44]; // "CHRD"
export const BITSTREAM_VERSION = 1;
export const MAX_MODEL_ID_BYTES = 64;
export const MAX_LAYERS = 1024;
export const MAX_CHANNELS_PER_LAYER = 65536;
export const MAX_TOTAL_CHANNELS = 1 << 22;
export const HASH_BYTES = 32;
export const BETA_SCALE = 65535;

/** Offsets of the fixed header fields that precede the modelId. */
const OFF_VERSION = 4;
const OFF_FLAGS = 5;
const OFF_RESERVED = 6;
const OFF_MODEL_ID_LENGTH = 8;
const OFF_MODEL_ID = 9;
/** Bytes after the modelId up to and including layerCount: hash, level table, beta, layerCount. */
const AFTER_MODEL_ID = HASH_BYTES + 4 + 2 + 2;
const CRC_BYTES = 4;

/** Smallest possible stream: 1-byte modelId, one layer with one channel. */
export const MIN_BITSTREAM_BYTES = OFF_MODEL_ID + 1 + AFTER_MODEL_ID + 4 + 1 + CRC_BYTES;

export const BITSTREAM_ERROR_CODES = ERROR_CODES.BitstreamError;

export type BitstreamErrorCode = (typeof BITSTREAM_ERROR_CODES)[number];

export class BitstreamError extends ChordError<'BitstreamError'> {
  override readonly name = 'BitstreamError';
  constructor(code: BitstreamErrorCode, message: string) {
    super(code, message);
  }
}

export interface StrategyMeta {
  /** Model slug, [a-z0-9._-], 1..64 characters. */
  readonly modelId: string;
  /** SHA-256 of the frozen weights, 64 hex digits (either case). */
  readonly frozenWeightsHash: string;
}

export interface DecodedStrategy {
  readonly modelId: string;
  /** 64 lowercase hex digits. */
  readonly frozenWeightsHash: string;
  readonly strategy: Strategy;
}

export interface ExpectedLayer {
  readonly name: string;
  readonly outChannels: number;
}

export interface StrategyExpectation {
  readonly modelId?: string;
  /** Compared case-insensitively. */
  readonly frozenWeightsHash?: string;
  /** The manifest's quantizable layers in order; supplies the layer names. */
  readonly layers?: readonly ExpectedLayer[];
}

function fail(code: BitstreamErrorCode, message: string): never {
  throw new BitstreamError(code, message);
}

const SLUG = /^[a-z0-9._-]+$/;

function isSlugByte(b: number): boolean {
  return (
    (b >= 0x61 && b <= 0x7a) || // a-z
    (b >= 0x30 && b <= 0x39) || // 0-9
    b === 0x2e || // .
    b === 0x5f || // _
    b === 0x2d // -
  );
}

function checkLayerCount(count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > MAX_LAYERS) {
    fail('BITSTREAM_BAD_COUNT', `layer count ${count} outside 1..${MAX_LAYERS}`);
  }
}

/** Validates the channel counts and returns their sum. */
function checkChannelCounts(counts: ArrayLike<number>): number {
  checkLayerCount(counts.length);
  let total = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (!Number.isInteger(c) || c < 1 || c > MAX_CHANNELS_PER_LAYER) {
      fail('BITSTREAM_BAD_COUNT', `layer ${i}: channel count ${c} outside 1..${MAX_CHANNELS_PER_LAYER}`);
    }
    total += c;
  }
  if (total > MAX_TOTAL_CHANNELS) {
    fail('BITSTREAM_BAD_COUNT', `total channel count ${total} exceeds ${MAX_TOTAL_CHANNELS}`);
  }
  return total;
}

function checkModelIdLength(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_MODEL_ID_BYTES) {
    fail('BITSTREAM_BAD_MODEL_ID', `modelId length ${n} outside 1..${MAX_MODEL_ID_BYTES}`);
  }
}

function payloadBytes(totalChannels: number): number {
  return Math.ceil(totalChannels / 4);
}

function sizeFor(modelIdLength: number, layerCount: number, totalChannels: number): number {
  return (
    OFF_MODEL_ID + modelIdLength + AFTER_MODEL_ID + 4 * layerCount + payloadBytes(totalChannels) + CRC_BYTES
  );
}

/**
 * Exact encoded size in bytes; throws BitstreamError ('BITSTREAM_BAD_COUNT',
 * 'BITSTREAM_BAD_MODEL_ID') on invalid input.
 */
export function strategyBitstreamSize(
  layerChannelCounts: readonly number[],
  modelIdLength: number,
): number {
  checkModelIdLength(modelIdLength);
  const total = checkChannelCounts(layerChannelCounts);
  return sizeFor(modelIdLength, layerChannelCounts.length, total);
}

function checkLevelTable(table: readonly number[]): void {
  const problem = levelTableProblem(table);
  if (problem) fail('BITSTREAM_BAD_LEVEL_TABLE', problem);
}

function hexToBytes(hex: string): Uint8Array {
  if (typeof hex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hex)) {
    fail('BITSTREAM_BAD_HASH', 'frozenWeightsHash must be 64 hex digits (a SHA-256)');
  }
  const out = new Uint8Array(HASH_BYTES);
  for (let i = 0; i < HASH_BYTES; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return s;
}

/**
 * Encodes a strategy. Layer names are not carried (the receiver takes them from its manifest).
 * Throws BitstreamError: 'BITSTREAM_BAD_MODEL_ID', 'BITSTREAM_BAD_HASH', 'BITSTREAM_BAD_LEVEL_TABLE'
 * (table invalid or a level index outside 0..3), 'BITSTREAM_BAD_BETA', 'BITSTREAM_BAD_COUNT'.
 */
export function encodeStrategy(strategy: Strategy, meta: StrategyMeta): Uint8Array {
  const { modelId } = meta;
  if (typeof modelId !== 'string' || !SLUG.test(modelId)) {
    fail('BITSTREAM_BAD_MODEL_ID', `modelId ${JSON.stringify(modelId)} is not a slug [a-z0-9._-]+`);
  }
  checkModelIdLength(modelId.length); // a slug is ASCII: characters = UTF-8 bytes
  const hash = hexToBytes(meta.frozenWeightsHash);
  checkLevelTable(strategy.levelTable);
  const { beta } = strategy;
  if (typeof beta !== 'number' || !(beta >= 0 && beta <= 1)) {
    fail('BITSTREAM_BAD_BETA', `beta ${beta} outside [0, 1]`);
  }
  const layers = strategy.layers;
  const counts = layers.map((l) => l.levels.length);
  const total = checkChannelCounts(counts);

  const out = new Uint8Array(sizeFor(modelId.length, layers.length, total));
  const view = new DataView(out.buffer);
  out.set(BITSTREAM_MAGIC, 0);
  out[OFF_VERSION] = BITSTREAM_VERSION;
  out[OFF_FLAGS] = 0;
  view.setUint16(OFF_RESERVED, 0, true);
  out[OFF_MODEL_ID_LENGTH] = modelId.length;
  for (let i = 0; i < modelId.length; i++) out[OFF_MODEL_ID + i] = modelId.charCodeAt(i);
  let p = OFF_MODEL_ID + modelId.length;
  out.set(hash, p);
  p += HASH_BYTES;
  out.set(strategy.levelTable, p);
  p += 4;
  view.setUint16(p, Math.round(beta * BETA_SCALE), true);
  p += 2;
  view.setUint16(p, layers.length, true);
  p += 2;
  for (const c of counts) {
    view.setUint32(p, c, true);
    p += 4;
  }
  let channel = 0;
  for (let li = 0; li < layers.length; li++) {
    const levels = layers[li]!.levels;
    for (let j = 0; j < levels.length; j++, channel++) {
      const v = levels[j];
      if (v === undefined || !(v >= 0 && v <= 3) || !Number.isInteger(v)) {
        fail('BITSTREAM_BAD_LEVEL_TABLE', `layer ${li} channel ${j}: level index ${v} outside 0..3`);
      }
      out[p + (channel >> 2)]! |= v << ((channel & 3) << 1);
    }
  }
  p += payloadBytes(total);
  view.setUint32(p, crc32(out.subarray(0, p)), true);
  return out;
}

/**
 * Decodes and verifies a strategy bitstream. Layer names come from `expect.layers` when given
 * (whose count and channel counts must then match), else "layer{i}". Throws only BitstreamError.
 */
export function decodeStrategy(bytes: Uint8Array, expect?: StrategyExpectation): DecodedStrategy {
  // The tag test also admits a Uint8Array from another realm (an iframe), as instanceof would not.
  if (!(bytes instanceof Uint8Array) && Object.prototype.toString.call(bytes) !== '[object Uint8Array]') {
    const what = bytes === null ? 'null' : ArrayBuffer.isView(bytes) ? (bytes as object).constructor.name : typeof bytes;
    fail('BITSTREAM_NOT_BYTES', `a strategy bitstream is a Uint8Array, got ${what}`);
  }
  const len = bytes.length;
  if (len < MIN_BITSTREAM_BYTES) {
    fail('BITSTREAM_TRUNCATED', `${len} bytes is shorter than the smallest stream (${MIN_BITSTREAM_BYTES})`);
  }
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== BITSTREAM_MAGIC[i]) fail('BITSTREAM_BAD_MAGIC', 'stream does not start with "CHRD"');
  }
  const version = bytes[OFF_VERSION]!;
  if (version !== BITSTREAM_VERSION) {
    fail('BITSTREAM_UNSUPPORTED_VERSION', `version ${version}, this decoder reads ${BITSTREAM_VERSION}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flags = bytes[OFF_FLAGS]!;
  if (flags !== 0) fail('BITSTREAM_BAD_FLAGS', `flags 0x${flags.toString(16)} must be 0 in v1`);
  const reserved = view.getUint16(OFF_RESERVED, true);
  if (reserved !== 0) fail('BITSTREAM_BAD_FLAGS', `reserved field 0x${reserved.toString(16)} must be 0 in v1`);

  const idLen = bytes[OFF_MODEL_ID_LENGTH]!;
  checkModelIdLength(idLen);
  const offHash = OFF_MODEL_ID + idLen;
  const offLevels = offHash + HASH_BYTES;
  const offBeta = offLevels + 4;
  const offLayerCount = offBeta + 2;
  const offCounts = offLayerCount + 2;
  if (len < offCounts) fail('BITSTREAM_TRUNCATED', `header needs ${offCounts} bytes, stream has ${len}`);
  const layerCount = view.getUint16(offLayerCount, true);
  checkLayerCount(layerCount);
  const offPayload = offCounts + 4 * layerCount;
  if (len < offPayload) {
    fail('BITSTREAM_TRUNCATED', `${layerCount} channel counts need ${offPayload} bytes, stream has ${len}`);
  }
  const counts = new Array<number>(layerCount);
  for (let i = 0; i < layerCount; i++) counts[i] = view.getUint32(offCounts + 4 * i, true);
  const total = checkChannelCounts(counts);
  const expectedLength = sizeFor(idLen, layerCount, total);
  if (len < expectedLength) fail('BITSTREAM_TRUNCATED', `stream needs ${expectedLength} bytes, has ${len}`);
  if (len > expectedLength) {
    fail('BITSTREAM_TRAILING_BYTES', `stream has ${len - expectedLength} bytes past its end (${expectedLength})`);
  }
  const offCrc = expectedLength - CRC_BYTES;
  const stored = view.getUint32(offCrc, true);
  const actual = crc32(bytes.subarray(0, offCrc));
  if (stored !== actual) {
    fail('BITSTREAM_BAD_CHECKSUM', `CRC-32 0x${stored.toString(16)} does not match content 0x${actual.toString(16)}`);
  }

  let modelId = '';
  for (let i = 0; i < idLen; i++) {
    const b = bytes[OFF_MODEL_ID + i]!;
    if (!isSlugByte(b)) fail('BITSTREAM_BAD_MODEL_ID', `modelId byte ${i} (0x${b.toString(16)}) is not in [a-z0-9._-]`);
    modelId += String.fromCharCode(b);
  }
  const frozenWeightsHash = bytesToHex(bytes.subarray(offHash, offHash + HASH_BYTES));
  const levelTable: LevelTable = [
    bytes[offLevels]!,
    bytes[offLevels + 1]!,
    bytes[offLevels + 2]!,
    bytes[offLevels + 3]!,
  ];
  checkLevelTable(levelTable);
  const beta = view.getUint16(offBeta, true) / BETA_SCALE;

  const used = total & 3;
  if (used !== 0) {
    const last = bytes[offCrc - 1]!;
    if (last >> (used << 1) !== 0) {
      fail('BITSTREAM_BAD_PADDING', `padding bits of the last payload byte (0x${last.toString(16)}) are not 0`);
    }
  }

  if (expect?.modelId !== undefined && expect.modelId !== modelId) {
    fail('BITSTREAM_MODEL_MISMATCH', `stream is for model "${modelId}", expected "${expect.modelId}"`);
  }
  if (
    expect?.frozenWeightsHash !== undefined &&
    String(expect.frozenWeightsHash).toLowerCase() !== frozenWeightsHash
  ) {
    fail(
      'BITSTREAM_HASH_MISMATCH',
      `stream is for frozen weights ${frozenWeightsHash}, expected ${expect.frozenWeightsHash}`,
    );
  }
  const expectedLayers = expect?.layers ?? undefined;
  if (expectedLayers !== undefined) {
    if (!Array.isArray(expectedLayers)) fail('BITSTREAM_LAYER_MISMATCH', 'the expected layers must be an array');
    if (expectedLayers.length !== layerCount) {
      fail('BITSTREAM_LAYER_MISMATCH', `stream has ${layerCount} layers, manifest has ${expectedLayers.length}`);
    }
    for (let i = 0; i < layerCount; i++) {
      const e = expectedLayers[i];
      if (e?.outChannels !== counts[i]) {
        fail('BITSTREAM_LAYER_MISMATCH', `layer ${i}: stream has ${counts[i]} channels, manifest ${e?.outChannels}`);
      }
    }
  }

  const layers: LayerStrategy[] = [];
  let channel = 0;
  for (let i = 0; i < layerCount; i++) {
    const n = counts[i]!;
    const levels = new Uint8Array(n);
    for (let j = 0; j < n; j++, channel++) {
      levels[j] = (bytes[offPayload + (channel >> 2)]! >> ((channel & 3) << 1)) & 3;
    }
    layers.push({ name: expectedLayers ? String(expectedLayers[i]!.name) : `layer${i}`, levels });
  }
  return { modelId, frozenWeightsHash, strategy: { levelTable, beta, layers } };
}
