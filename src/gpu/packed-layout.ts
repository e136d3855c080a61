/**
 * CPU side of GPU adaptation: where each quantizable layer lives in the model-wide GPU buffers,
 * and the per-strategy tables of the packed layout (src/core/packing.ts). Only O(channels) work
 * happens here; the per-weight quantization and packing run in shaders/adapt_quantize_pack.wgsl.
 *
 * Regions are fixed for the life of a model: every layer reserves the words of its widest
 * possible packing (all channels at the width with the fewest values per word), so re-adapting to
 * any strategy rewrites buffers in place and never reallocates or rebinds. Each region starts on a
 * 256-byte boundary (WebGPU's default minStorageBufferOffsetAlignment), so a layer can be bound as
 * its own buffer range and a kernel sees exactly core's per-layer arrays.
 */
import { ChordError } from '../core/errors.ts';
import {
  GROUP_STRIDE,
  META_BITS,
  META_CHANNEL,
  META_STRIDE,
  META_VALUES_PER_WORD,
  META_WORD_OFFSET,
  packingOrder,
  valuesPerWord,
  wordsPerRow,
} from '../core/packing.ts';
import { MAX_BITS, MIN_BITS } from '../core/quantize.ts';
import type { Strategy } from '../core/strategy.ts';

/** Byte alignment of every layer region; 256 is the largest value WebGPU allows for the limit. */
export const REGION_ALIGN_BYTES = 256;
const ALIGN_ELEMENTS = REGION_ALIGN_BYTES / 4;

/** u32 per adapt row: weightStart, rowLength, wordStart, bits, tableIndex (struct Row in WGSL). */
export const ADAPT_ROW_STRIDE = 5;

/** The model's layers do not describe a valid set of buffers. */
export class LayerLayoutError extends ChordError {
  constructor(message: string) {
    super('gpu-layer-layout', message);
  }
}

/** A strategy that does not fit the model's layers (count, names, channel counts, level table). */
export class StrategyMismatchError extends ChordError {
  constructor(message: string) {
    super('gpu-strategy-mismatch', message);
  }
}

export interface QuantizableLayer {
  readonly name: string;
  readonly outChannels: number;
  readonly rowLength: number;
}

/** Where one layer lives in the model-wide buffers (all offsets in 4-byte elements). */
export interface LayerRegion extends QuantizableLayer {
  /** First weight of the layer in the frozen-weights buffer (layers concatenated densely). */
  readonly weightStart: number;
  /** Packed position 0 in scale / zero / max; meta starts at META_STRIDE * tableStart. */
  readonly tableStart: number;
  /** First word of the layer in the words buffer. */
  readonly wordStart: number;
  /** Words reserved for the layer: enough for any strategy. */
  readonly wordCapacity: number;
}

export interface ModelRegions {
  readonly layers: readonly LayerRegion[];
  readonly weightCount: number;
  readonly channelCount: number;
  /** Elements of each per-channel table (scale, zero, max), padding included. */
  readonly tableLength: number;
  readonly wordLength: number;
}

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** Most words a row can need: the width with the fewest values per word (8 bits: 4). */
export function maxWordsPerRow(rowLength: number): number {
  let most = 0;
  for (let b = MIN_BITS; b <= MAX_BITS; b++) most = Math.max(most, wordsPerRow(b, rowLength));
  return most;
}

export function planModelRegions(layers: readonly QuantizableLayer[]): ModelRegions {
  if (layers.length === 0) throw new LayerLayoutError('a model needs at least one quantizable layer');
  const names = new Set<string>();
  const out: LayerRegion[] = [];
  let weightStart = 0;
  let tableStart = 0;
  let wordStart = 0;
  let channelCount = 0;
  for (const layer of layers) {
    const { name, outChannels, rowLength } = layer;
    if (names.has(name)) throw new LayerLayoutError(`duplicate layer name ${JSON.stringify(name)}`);
    names.add(name);
    for (const [what, v] of [['outChannels', outChannels], ['rowLength', rowLength]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new LayerLayoutError(`${name}: ${what} = ${v}`);
    }
    const wordCapacity = outChannels * maxWordsPerRow(rowLength);
    out.push({ name, outChannels, rowLength, weightStart, tableStart, wordStart, wordCapacity });
    weightStart += outChannels * rowLength;
    tableStart = alignUp(tableStart + outChannels, ALIGN_ELEMENTS);
    wordStart = alignUp(wordStart + wordCapacity, ALIGN_ELEMENTS);
    channelCount += outChannels;
  }
  // Indices in the kernels are u32 element indices.
  if (weightStart >= 2 ** 32 || wordStart >= 2 ** 32) throw new LayerLayoutError('model too large for u32 indexing');
  return { layers: out, weightCount: weightStart, channelCount, tableLength: tableStart, wordLength: wordStart };
}

/** The strategy-dependent tables of one layer, identical to those of core's packQuantized. */
export interface LayerPacking {
  /** Bits per original channel. */
  readonly bits: Uint8Array;
  readonly meta: Uint32Array;
  readonly position: Uint32Array;
  readonly groups: Uint32Array;
  readonly wordCount: number;
}

export function planLayerPacking(bitsPerChannel: Uint8Array, rowLength: number): LayerPacking {
  const order = packingOrder(bitsPerChannel);
  const outChannels = bitsPerChannel.length;
  const meta = new Uint32Array(outChannels * META_STRIDE);
  const position = new Uint32Array(outChannels);
  const groups: number[] = [];
  let wordOffset = 0;
  for (let p = 0; p < outChannels; p++) {
    const ch = order[p]!;
    const bits = bitsPerChannel[ch]!;
    const mp = p * META_STRIDE;
    meta[mp + META_CHANNEL] = ch;
    meta[mp + META_BITS] = bits;
    meta[mp + META_WORD_OFFSET] = wordOffset;
    meta[mp + META_VALUES_PER_WORD] = valuesPerWord(bits);
    position[ch] = p;
    wordOffset += wordsPerRow(bits, rowLength);
    const last = groups.length - GROUP_STRIDE;
    if (last < 0 || groups[last] !== bits) {
      if (last >= 0) groups[last + 2] = p;
      groups.push(bits, p, outChannels);
    }
  }
  return { bits: bitsPerChannel.slice(), meta, position, groups: Uint32Array.from(groups), wordCount: wordOffset };
}

/** Bits per channel of every layer under `strategy`, checked against the model's layers. */
export function strategyBits(strategy: Strategy, layers: readonly QuantizableLayer[]): Uint8Array[] {
  const table = strategy.levelTable;
  if (table.length !== 4) throw new StrategyMismatchError(`level table has ${table.length} entries, expected 4`);
  for (const b of table) {
    if (!Number.isInteger(b) || b < MIN_BITS || b > MAX_BITS) {
      throw new StrategyMismatchError(`level table ${JSON.stringify(table)} has a width outside ${MIN_BITS}..${MAX_BITS}`);
    }
  }
  if (strategy.layers.length !== layers.length) {
    throw new StrategyMismatchError(`strategy has ${strategy.layers.length} layers, the model ${layers.length}`);
  }
  return layers.map((layer, i) => {
    const s = strategy.layers[i]!;
    if (s.name !== layer.name) {
      throw new StrategyMismatchError(`strategy layer ${i} is ${JSON.stringify(s.name)}, expected ${JSON.stringify(layer.name)}`);
    }
    if (s.levels.length !== layer.outChannels) {
      throw new StrategyMismatchError(`${layer.name}: ${s.levels.length} levels for ${layer.outChannels} channels`);
    }
    const bits = new Uint8Array(layer.outChannels);
    for (let j = 0; j < bits.length; j++) {
      const level = s.levels[j]!;
      if (level > 3) throw new StrategyMismatchError(`${layer.name}: level ${level} at channel ${j}`);
      bits[j] = table[level]!;
    }
    return bits;
  });
}

/** The adapt kernel's row table (ADAPT_ROW_STRIDE u32 per channel of the model, in packed order). */
export function buildAdaptRows(regions: ModelRegions, packings: readonly LayerPacking[]): Uint32Array<ArrayBuffer> {
  const rows = new Uint32Array(regions.channelCount * ADAPT_ROW_STRIDE);
  let r = 0;
  regions.layers.forEach((layer, l) => {
    const packing = packings[l]!;
    for (let p = 0; p < layer.outChannels; p++, r++) {
      const mp = p * META_STRIDE;
      const o = r * ADAPT_ROW_STRIDE;
      rows[o] = layer.weightStart + packing.meta[mp + META_CHANNEL]! * layer.rowLength;
      rows[o + 1] = layer.rowLength;
      rows[o + 2] = layer.wordStart + packing.meta[mp + META_WORD_OFFSET]!;
      rows[o + 3] = packing.meta[mp + META_BITS]!;
      rows[o + 4] = layer.tableStart + p;
    }
  });
  return rows;
}
