/**
 * Mixed-width bit packing of one quantized layer into u32 words, laid out for cheap GPU unpacking.
 *
 * Layout (all arrays are plain typed arrays, uploadable as-is and storable in IndexedDB):
 *
 * - Packed order. `order` = original channel indices sorted by bit width descending, ties kept in
 *   index order (stable). Packed position p is the p-th channel of that order. Channels of one
 *   width are contiguous, so a workgroup assigned to a width group never diverges on `bits`.
 * - Rows. Channel rows are stored in packed order, each starting on a word boundary. A word holds
 *   valuesPerWord = floor(32 / bits) codes, LSB first: code k of a row is in word
 *   wordOffset + floor(k / vpw), at bit (k % vpw) * bits. No code straddles two words; 3, 5, 6
 *   and 7 bits leave 2, 2, 2 and 4 high bits of each word unused, in exchange for a one-shift,
 *   one-mask unpack. A row uses ceil(rowLength / vpw) words; unused slots and bits are zero.
 * - Off channels (OFF_BITS = 0 bits) come last and pack to zero words: their single code 0 is
 *   the top code, which dequantizes to the channel's max, 0 (scale, zero and max are all +0).
 * - `meta`: Uint32Array, META_STRIDE (4) u32 per packed position:
 *     [META_CHANNEL] original channel index, [META_BITS] bits (1..8, or 0 for off),
 *     [META_WORD_OFFSET] first word of the row, [META_VALUES_PER_WORD] floor(32 / bits), 0 if off.
 *   (vec4<u32> in WGSL.)
 * - `scale`, `zero`, `max`: Float32Array per packed position (step, channel min, channel max).
 * - `position`: Uint32Array, original channel -> packed position (inverse of the order), for a
 *   kernel that walks output channels in their original order.
 * - `groups`: Uint32Array, GROUP_STRIDE (3) u32 per width present, widths descending:
 *     [bits, start, end) — the packed positions of that width, for one dispatch per width.
 *
 * Dequantizing code q of packed position p in WGSL (bit-identical to quantize.ts, see there):
 *
 *   let m = meta[p];                                  // (channel, bits, wordOffset, vpw)
 *   let word = words[m.z + k / m.w];
 *   let q = (word >> ((k % m.w) * m.y)) & ((1u << m.y) - 1u);
 *   let w = select(zero[p] + f32(q) * scale[p], maxv[p], q == (1u << m.y) - 1u);
 */
import { ChordError, type ErrorCodeOf } from './errors.ts';
import {
  type ChannelLayout,
  type QuantizedChannels,
  checkChannelBits,
  checkQuantized,
  dequantizeCode,
  MAX_BITS,
  quantizeChannels,
  resolveLayout,
} from './quantize.ts';
import { OFF_BITS } from './strategy.ts';

export type PackingErrorCode = ErrorCodeOf<'PackingError'>;

export class PackingError extends ChordError<'PackingError'> {
  override readonly name = 'PackingError';
  constructor(code: PackingErrorCode, message: string) {
    super(code, message);
  }
}

export const META_STRIDE = 4;
export const META_CHANNEL = 0;
export const META_BITS = 1;
export const META_WORD_OFFSET = 2;
export const META_VALUES_PER_WORD = 3;

export const GROUP_STRIDE = 3;
export const GROUP_BITS = 0;
export const GROUP_START = 1;
export const GROUP_END = 2;

export interface PackedLayer {
  readonly outChannels: number;
  readonly rowLength: number;
  readonly words: Uint32Array;
  /** META_STRIDE u32 per packed position. */
  readonly meta: Uint32Array;
  readonly scale: Float32Array;
  readonly zero: Float32Array;
  readonly max: Float32Array;
  /** Original channel -> packed position. */
  readonly position: Uint32Array;
  /** GROUP_STRIDE u32 per width present: bits, start, end (packed positions). */
  readonly groups: Uint32Array;
}

export interface PackedByteLength {
  /** Bytes of the code words alone. */
  readonly words: number;
  /** Bytes of meta, scale, zero, max, position and groups. */
  readonly tables: number;
  readonly total: number;
}

/** Codes per word: floor(32 / bits), or 0 for an off channel (it has no codes to store). */
export function valuesPerWord(bits: number): number {
  checkChannelBits(bits);
  return bits === OFF_BITS ? 0 : Math.floor(32 / bits);
}

/** Words of one row: 0 for an off channel. */
export function wordsPerRow(bits: number, rowLength: number): number {
  const vpw = valuesPerWord(bits);
  return vpw === 0 ? 0 : Math.ceil(rowLength / vpw);
}

/** Original channel indices sorted by width descending (off channels last), stable by index. */
export function packingOrder(bitsPerChannel: Uint8Array): Uint32Array {
  for (const b of bitsPerChannel) checkChannelBits(b);
  const order = new Uint32Array(bitsPerChannel.length);
  let p = 0;
  for (let bits = MAX_BITS; bits >= OFF_BITS; bits--) {
    for (let j = 0; j < bitsPerChannel.length; j++) {
      if (bitsPerChannel[j] === bits) order[p++] = j;
    }
  }
  return order;
}

function widthsPresent(bitsPerChannel: Uint8Array): number {
  const seen = new Set<number>(bitsPerChannel);
  return seen.size;
}

/** Sizes of the arrays {@link packLayer} would produce, without packing anything. */
export function packedByteLength(rowLength: number, bitsPerChannel: Uint8Array): PackedByteLength {
  resolveLayout({ outChannels: bitsPerChannel.length, rowLength });
  let wordCount = 0;
  for (const b of bitsPerChannel) wordCount += wordsPerRow(b, rowLength);
  const out = bitsPerChannel.length;
  const words = wordCount * 4;
  // meta (4 u32) + scale + zero + max + position, each 4 bytes per channel; groups 3 u32 per width.
  const tables = out * (META_STRIDE + 4) * 4 + widthsPresent(bitsPerChannel) * GROUP_STRIDE * 4;
  return { words, tables, total: words + tables };
}

/** Packs already-quantized channels (codes are copied, not re-quantized). */
export function packQuantized(q: QuantizedChannels): PackedLayer {
  checkQuantized(q);
  return packChecked(q);
}

/** packQuantized for channels known to be consistent (fresh from quantizeChannels): no second pass over the codes. */
function packChecked(q: QuantizedChannels): PackedLayer {
  const { outChannels, rowLength } = q;
  const order = packingOrder(q.bits);
  const meta = new Uint32Array(outChannels * META_STRIDE);
  const scale = new Float32Array(outChannels);
  const zero = new Float32Array(outChannels);
  const max = new Float32Array(outChannels);
  const position = new Uint32Array(outChannels);
  const groupList: number[] = [];

  let wordOffset = 0;
  for (let p = 0; p < outChannels; p++) {
    const ch = order[p]!;
    const bits = q.bits[ch]!;
    const vpw = valuesPerWord(bits);
    const mp = p * META_STRIDE;
    meta[mp + META_CHANNEL] = ch;
    meta[mp + META_BITS] = bits;
    meta[mp + META_WORD_OFFSET] = wordOffset;
    meta[mp + META_VALUES_PER_WORD] = vpw;
    scale[p] = q.scale[ch]!;
    zero[p] = q.zero[ch]!;
    max[p] = q.max[ch]!;
    position[ch] = p;
    wordOffset += wordsPerRow(bits, rowLength);
    const prevBits = p > 0 ? q.bits[order[p - 1]!]! : -1;
    if (bits !== prevBits) {
      if (groupList.length > 0) groupList[groupList.length - 1] = p; // end of the previous group
      groupList.push(bits, p, outChannels);
    }
  }

  const words = new Uint32Array(wordOffset);
  const codes = q.codes;
  for (let p = 0; p < outChannels; p++) {
    const mp = p * META_STRIDE;
    const ch = meta[mp + META_CHANNEL]!;
    const bits = meta[mp + META_BITS]!;
    const vpw = meta[mp + META_VALUES_PER_WORD]!;
    if (vpw === 0) continue; // off: no words
    // Code k of the row goes to word floor(k / vpw) at bit (k % vpw) * bits, filled one word at a
    // time. `<<` and `|` yield a signed int32 once bit 31 is set; the Uint32Array store wraps it back.
    let w = meta[mp + META_WORD_OFFSET]!;
    const end = ch * rowLength + rowLength;
    let acc = 0;
    let shift = 0;
    let inWord = 0;
    for (let i = ch * rowLength; i < end; i++) {
      acc |= codes[i]! << shift;
      shift += bits;
      if (++inWord === vpw) {
        words[w++] = acc;
        acc = 0;
        shift = 0;
        inWord = 0;
      }
    }
    if (inWord > 0) words[w] = acc;
  }

  return {
    outChannels,
    rowLength,
    words,
    meta,
    scale,
    zero,
    max,
    position,
    groups: Uint32Array.from(groupList),
  };
}

/** Quantizes `weights` per channel (quantize.ts) and packs the codes. */
export function packLayer(
  weights: Float32Array,
  outChannels: number,
  rowLength: number,
  bitsPerChannel: Uint8Array,
): PackedLayer {
  return packChecked(quantizeChannels(weights, { outChannels, rowLength }, bitsPerChannel));
}

/** Same as {@link packLayer} for a full weight shape ([out, in] or [out, in, kh, kw]). */
export function packWeights(
  weights: Float32Array,
  layout: ChannelLayout,
  bitsPerChannel: Uint8Array,
): PackedLayer {
  return packQuantized(quantizeChannels(weights, layout, bitsPerChannel));
}

function corrupt(message: string): never {
  throw new PackingError('PACK_CORRUPT', message);
}

/**
 * Checks that a PackedLayer is internally consistent (sizes, permutation, offsets, groups, and
 * scale, zero and max all +0 on off channels, which would otherwise dequantize to their max). Use
 * it on layers read back from storage; it does not check that codes are below 2^bits since unused
 * high bits are ignored by the unpacker anyway.
 */
export function validatePackedLayer(packed: PackedLayer): void {
  const { outChannels, rowLength } = packed;
  if (!Number.isSafeInteger(outChannels) || outChannels < 1) corrupt(`outChannels ${outChannels}`);
  if (!Number.isSafeInteger(rowLength) || rowLength < 1) corrupt(`rowLength ${rowLength}`);
  const sized: [string, ArrayLike<number>, number][] = [
    ['meta', packed.meta, outChannels * META_STRIDE],
    ['scale', packed.scale, outChannels],
    ['zero', packed.zero, outChannels],
    ['max', packed.max, outChannels],
    ['position', packed.position, outChannels],
  ];
  for (const [name, arr, len] of sized) {
    if (arr.length !== len) corrupt(`${name} has ${arr.length} entries, expected ${len}`);
  }
  let expectedOffset = 0;
  let prevBits = MAX_BITS + 1;
  for (let p = 0; p < outChannels; p++) {
    const mp = p * META_STRIDE;
    const ch = packed.meta[mp + META_CHANNEL]!;
    const bits = packed.meta[mp + META_BITS]!;
    if (ch >= outChannels || packed.position[ch] !== p) corrupt(`position ${p} / channel ${ch}`);
    if (bits > MAX_BITS || bits > prevBits) corrupt(`bits ${bits} at ${p}`);
    if (packed.meta[mp + META_VALUES_PER_WORD] !== valuesPerWord(bits)) corrupt(`vpw at ${p}`);
    if (bits === OFF_BITS && !(isPositiveZero(packed.scale[p]!) && isPositiveZero(packed.zero[p]!) && isPositiveZero(packed.max[p]!))) {
      corrupt(`off channel at ${p} has scale ${packed.scale[p]}, zero ${packed.zero[p]}, max ${packed.max[p]} (must be +0)`);
    }
    if (packed.meta[mp + META_WORD_OFFSET] !== expectedOffset) corrupt(`word offset at ${p}`);
    expectedOffset += wordsPerRow(bits, rowLength);
    prevBits = bits;
  }
  if (packed.words.length !== expectedOffset) {
    corrupt(`words has ${packed.words.length} entries, expected ${expectedOffset}`);
  }
  const g = packed.groups;
  if (g.length % GROUP_STRIDE !== 0) corrupt(`groups length ${g.length}`);
  let next = 0;
  for (let i = 0; i < g.length; i += GROUP_STRIDE) {
    const bits = g[i + GROUP_BITS]!;
    const start = g[i + GROUP_START]!;
    const end = g[i + GROUP_END]!;
    if (start !== next || end <= start || end > outChannels) corrupt(`group ${i / GROUP_STRIDE}`);
    for (let p = start; p < end; p++) {
      if (packed.meta[p * META_STRIDE + META_BITS] !== bits) corrupt(`group ${bits} at ${p}`);
    }
    // Adjacent groups of equal width would mean the order is not grouped.
    if (end < outChannels && packed.meta[end * META_STRIDE + META_BITS] === bits) {
      corrupt(`group ${bits} ends early at ${end}`);
    }
    next = end;
  }
  if (next !== outChannels) corrupt(`groups cover ${next} of ${outChannels} positions`);
}

function isPositiveZero(x: number): boolean {
  return x === 0 && !Object.is(x, -0);
}

function checkChannel(packed: PackedLayer, channel: number): number {
  if (!Number.isInteger(channel) || channel < 0 || channel >= packed.outChannels) {
    throw new PackingError(
      'PACK_BAD_CHANNEL',
      `channel ${channel} outside 0..${packed.outChannels - 1}`,
    );
  }
  return packed.position[channel]!;
}

function unpackRowInto(packed: PackedLayer, p: number, out: Uint8Array | null): Uint8Array {
  const mp = p * META_STRIDE;
  const bits = packed.meta[mp + META_BITS]!;
  const base = packed.meta[mp + META_WORD_OFFSET]!;
  const vpw = packed.meta[mp + META_VALUES_PER_WORD]!;
  const mask = (1 << bits) - 1;
  const row = out ?? new Uint8Array(packed.rowLength);
  if (vpw === 0) return row.fill(0); // off: every code is 0
  for (let k = 0; k < packed.rowLength; k++) {
    row[k] = (packed.words[base + Math.floor(k / vpw)]! >>> ((k % vpw) * bits)) & mask;
  }
  return row;
}

/** Codes of one original channel, in row order. */
export function unpackCodes(packed: PackedLayer, channel: number): Uint8Array {
  return unpackRowInto(packed, checkChannel(packed, channel), null);
}

/** All weights dequantized, row-major in the original channel order. */
export function dequantizePacked(packed: PackedLayer): Float32Array {
  validatePackedLayer(packed);
  const { outChannels, rowLength } = packed;
  const out = new Float32Array(outChannels * rowLength);
  const codes = new Uint8Array(rowLength);
  for (let p = 0; p < outChannels; p++) {
    unpackRowInto(packed, p, codes);
    const bits = packed.meta[p * META_STRIDE + META_BITS]!;
    const ch = packed.meta[p * META_STRIDE + META_CHANNEL]!;
    const s = packed.scale[p]!;
    const m = packed.zero[p]!;
    const hi = packed.max[p]!;
    const row = ch * rowLength;
    for (let k = 0; k < rowLength; k++) out[row + k] = dequantizeCode(codes[k]!, bits, s, m, hi);
  }
  return out;
}
