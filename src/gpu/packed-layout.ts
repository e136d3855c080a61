/**
 * CPU side of GPU adaptation: where each quantizable layer lives in the model-wide GPU buffers,
 * and the per-strategy tables of the packed layout (src/core/packing.ts). Only O(channels) work
 * happens here; the per-weight quantization and packing run in shaders/adapt_quantize_pack.wgsl.
 *
 * GPU layout (QuantizedModelWeights), per packed position p of a layer (core's packing order):
 * - `words`: core's packed words, each layer's rows back to back from its wordStart;
 * - `ranges`: (min, max) of the channel as f32 bits (8 B per channel);
 * - `chan`: the original channel index as a u16, two per u32 (2 B per channel).
 * Everything else core's PackedLayer holds per channel is derived where it is needed: the width
 * and word offset from the layer's width groups (bits, start, end), which kernels receive in
 * their uniforms, and the step from (min, max, bits) with core's exact formula
 * (shaders/packed_scale_lib.wgsl). Regions are dense: kernels address layers by element offsets
 * passed in uniforms, never by buffer-range bindings, so no alignment padding is needed.
 * Off channels (OFF_BITS, the last width group) hold no words and the range (0, 0), as in core.
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
import { OFF_BITS, type Strategy } from '../core/strategy.ts';
import { ADAPT_TILE } from './shader-constants.ts';

/** Most channels a layer may have: the GPU stores channel indices as u16. */
export const MAX_LAYER_CHANNELS = 2 ** 16;

/** u32 per adapt segment (struct Segment in shaders/adapt_segments_lib.wgsl). */
export const SEGMENT_STRIDE = 8;

/** The model's layers do not describe a valid set of buffers. */
export class LayerLayoutError extends ChordError<'LayerLayoutError'> {
  override readonly name = 'LayerLayoutError';
  constructor(message: string) {
    super('GPU_LAYER_LAYOUT', message);
  }
}

/** A strategy that does not fit the model's layers (count, names, channel counts, level table). */
export class StrategyMismatchError extends ChordError<'StrategyMismatchError'> {
  override readonly name = 'StrategyMismatchError';
  constructor(message: string) {
    super('GPU_STRATEGY_MISMATCH', message);
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
  /** Packed position 0 of the layer in `ranges` (vec2 elements) and `chan` (u16 elements). */
  readonly tableStart: number;
  /** First word of the layer in the words buffer. */
  readonly wordStart: number;
  /** Words reserved for the layer. */
  readonly wordCapacity: number;
}

export interface ModelRegions {
  readonly layers: readonly LayerRegion[];
  readonly weightCount: number;
  /** Channels of all layers: the length of `ranges` and `chan`. */
  readonly channelCount: number;
  readonly wordLength: number;
}

/** Most words a row can need: the width with the fewest values per word (8 bits: 4). */
export function maxWordsPerRow(rowLength: number): number {
  let most = 0;
  for (let b = MIN_BITS; b <= MAX_BITS; b++) most = Math.max(most, wordsPerRow(b, rowLength));
  return most;
}

/**
 * Dense regions: weights, tables and words of the layers back to back. Words are reserved for
 * any strategy (each layer's widest packing); `withWords` re-plans them for one strategy.
 */
export function planModelRegions(layers: readonly QuantizableLayer[]): ModelRegions {
  if (layers.length === 0) throw new LayerLayoutError('a model needs at least one quantizable layer');
  const names = new Set<string>();
  const out: LayerRegion[] = [];
  let weightStart = 0;
  let tableStart = 0;
  let wordStart = 0;
  for (const layer of layers) {
    const { name, outChannels, rowLength } = layer;
    if (names.has(name)) throw new LayerLayoutError(`duplicate layer name ${JSON.stringify(name)}`);
    names.add(name);
    for (const [what, v] of [['outChannels', outChannels], ['rowLength', rowLength]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new LayerLayoutError(`${name}: ${what} = ${v}`);
    }
    if (outChannels > MAX_LAYER_CHANNELS) {
      throw new LayerLayoutError(`${name}: ${outChannels} channels, at most ${MAX_LAYER_CHANNELS} (u16 channel indices)`);
    }
    const wordCapacity = outChannels * maxWordsPerRow(rowLength);
    out.push({ name, outChannels, rowLength, weightStart, tableStart, wordStart, wordCapacity });
    weightStart += outChannels * rowLength;
    tableStart += outChannels;
    wordStart += wordCapacity;
  }
  // Indices in the kernels are u32 element indices.
  if (weightStart >= 2 ** 32 || wordStart >= 2 ** 32) throw new LayerLayoutError('model too large for u32 indexing');
  return { layers: out, weightCount: weightStart, channelCount: tableStart, wordLength: wordStart };
}

/** `base` with each layer's words region exactly `words[l]` long, back to back. */
export function withWords(base: ModelRegions, words: readonly number[]): ModelRegions {
  let wordStart = 0;
  const layers = base.layers.map((layer, l) => {
    const wordCapacity = words[l]!;
    const region = { ...layer, wordStart, wordCapacity };
    wordStart += wordCapacity;
    return region;
  });
  if (wordStart >= 2 ** 32) throw new LayerLayoutError('model too large for u32 indexing');
  return { ...base, layers, wordLength: wordStart };
}

/**
 * The strategy-dependent tables of one layer, identical to those of core's packQuantized (host
 * copies: of these only the channel order, via buildChannelTable, and the groups reach the GPU).
 */
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

/**
 * Bits per channel of every layer under `strategy`, checked against the model's layers. A width
 * of OFF_BITS (0) switches a channel off: it packs to no words and its weights are 0.
 */
export function strategyBits(strategy: Strategy, layers: readonly QuantizableLayer[]): Uint8Array[] {
  const table = strategy.levelTable;
  // Only what packing needs: any four widths, repeats too (a table of one width sizes a buffer for
  // every channel at it). Whether a table is a valid strategy's is the bitstream decoder's check.
  if (table.length !== 4) throw new StrategyMismatchError(`level table has ${table.length} entries, expected 4`);
  for (const b of table) {
    if (!Number.isInteger(b) || b < OFF_BITS || b > MAX_BITS) {
      throw new StrategyMismatchError(`level table ${JSON.stringify(table)} has a width outside ${OFF_BITS}..${MAX_BITS}`);
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

/** Words of each layer's rows before its width group g (groups in core's order). */
export function groupWordStarts(groups: Uint32Array, rowLength: number): number[] {
  const starts: number[] = [];
  let word = 0;
  for (let i = 0; i < groups.length; i += GROUP_STRIDE) {
    starts.push(word);
    word += (groups[i + 2]! - groups[i + 1]!) * wordsPerRow(groups[i]!, rowLength);
  }
  return starts;
}

/**
 * The adapt kernels' segments (SEGMENT_STRIDE u32 each, struct Segment in adapt_segments_lib.wgsl): one per
 * width group of every layer, with its first tile of ADAPT_TILE channels; `tiles` in all.
 */
export function buildAdaptSegments(regions: ModelRegions, packings: readonly LayerPacking[]): { segments: Uint32Array<ArrayBuffer>; tiles: number } {
  const rows: number[] = [];
  let tiles = 0;
  regions.layers.forEach((layer, l) => {
    const { groups } = packings[l]!;
    const starts = groupWordStarts(groups, layer.rowLength);
    for (let i = 0, g = 0; i < groups.length; i += GROUP_STRIDE, g++) {
      const bits = groups[i]!;
      const start = groups[i + 1]!;
      const count = groups[i + 2]! - start;
      rows.push(tiles, layer.tableStart + start, count, bits, layer.weightStart, layer.rowLength, layer.wordStart + starts[g]!, 0);
      tiles += Math.ceil(count / ADAPT_TILE);
    }
  });
  return { segments: Uint32Array.from(rows), tiles };
}

/**
 * The `chan` table: each layer's original channel index per packed position (u16) from its
 * tableStart, padded to whole u32 words.
 */
export function buildChannelTable(regions: ModelRegions, packings: readonly LayerPacking[]): Uint16Array<ArrayBuffer> {
  const table = new Uint16Array(2 * Math.ceil(regions.channelCount / 2));
  regions.layers.forEach((layer, l) => {
    const { meta } = packings[l]!;
    for (let p = 0; p < layer.outChannels; p++) table[layer.tableStart + p] = meta[p * META_STRIDE + META_CHANNEL]!;
  });
  return table;
}
