import { describe, expect, it } from 'vitest';
import { packLayer } from '../../src/core/packing.ts';
import type { Strategy } from '../../src/core/strategy.ts';
import { foldedGrid } from '../../src/gpu/adapt-program.ts';
import { MatmulArgumentError, planMixedMatmul } from '../../src/gpu/matmul-program.ts';
import {
  buildAdaptSegments,
  buildChannelTable,
  groupWordStarts,
  LayerLayoutError,
  MAX_LAYER_CHANNELS,
  planLayerPacking,
  planModelRegions,
  SEGMENT_STRIDE,
  StrategyMismatchError,
  strategyBits,
  withWords,
} from '../../src/gpu/packed-layout.ts';
import { ADAPT_TILE } from '../../src/gpu/shader-constants.ts';

const layers = [
  { name: 'q', outChannels: 5, rowLength: 7 },
  { name: 'ffn', outChannels: 70, rowLength: 33 },
  { name: 'one', outChannels: 1, rowLength: 1 },
];

describe('planLayerPacking', () => {
  it('produces core packLayer meta, position and groups for mixed widths', () => {
    const bits = Uint8Array.from([3, 8, 1, 3, 5, 8, 2, 7, 6, 4, 1, 3]);
    const rowLength = 29;
    const cpu = packLayer(new Float32Array(bits.length * rowLength).map((_, i) => Math.sin(i)), bits.length, rowLength, bits);
    const plan = planLayerPacking(bits, rowLength);
    expect(Array.from(plan.meta)).toEqual(Array.from(cpu.meta));
    expect(Array.from(plan.position)).toEqual(Array.from(cpu.position));
    expect(Array.from(plan.groups)).toEqual(Array.from(cpu.groups));
    expect(plan.wordCount).toBe(cpu.words.length);
  });
});

describe('planModelRegions', () => {
  it('packs weights, tables and words densely, words sized for 8-bit rows', () => {
    const r = planModelRegions(layers);
    expect(r.layers.map((l) => l.weightStart)).toEqual([0, 35, 35 + 70 * 33]);
    expect(r.weightCount).toBe(35 + 70 * 33 + 1);
    expect(r.channelCount).toBe(76);
    expect(r.layers.map((l) => l.tableStart)).toEqual([0, 5, 75]);
    expect(r.layers.map((l) => l.wordCapacity)).toEqual([5 * 2, 70 * 9, 1]);
    expect(r.layers.map((l) => l.wordStart)).toEqual([0, 10, 640]);
    expect(r.wordLength).toBe(641);
  });

  it('withWords packs each layer\'s words back to back, exactly', () => {
    const r = withWords(planModelRegions(layers), [3, 100, 1]);
    expect(r.layers.map((l) => [l.wordStart, l.wordCapacity])).toEqual([[0, 3], [3, 100], [103, 1]]);
    expect(r.wordLength).toBe(104);
    expect(r.layers.map((l) => l.tableStart)).toEqual([0, 5, 75]);
  });

  it('rejects duplicate names, non-positive sizes and more channels than u16 indices reach', () => {
    expect(() => planModelRegions([layers[0]!, layers[0]!])).toThrow(LayerLayoutError);
    expect(() => planModelRegions([{ name: 'x', outChannels: 0, rowLength: 3 }])).toThrow(LayerLayoutError);
    expect(() => planModelRegions([])).toThrow(LayerLayoutError);
    expect(() => planModelRegions([{ name: 'x', outChannels: MAX_LAYER_CHANNELS, rowLength: 1 }])).not.toThrow();
    expect(() => planModelRegions([{ name: 'x', outChannels: MAX_LAYER_CHANNELS + 1, rowLength: 1 }])).toThrow(LayerLayoutError);
  });
});

describe('strategyBits, adapt segments and the channel table', () => {
  const strategy: Strategy = {
    levelTable: [2, 4, 6, 8],
    beta: 0.125,
    layers: layers.map((l) => ({ name: l.name, levels: new Uint8Array(l.outChannels).map((_, j) => j % 4) })),
  };

  it('maps levels through the level table; one segment per width group, tiles numbered across the model', () => {
    const bits = strategyBits(strategy, layers);
    expect(Array.from(bits[0]!)).toEqual([2, 4, 6, 8, 2]);
    const packings = bits.map((b, l) => planLayerPacking(b, layers[l]!.rowLength));
    const regions = withWords(planModelRegions(layers), packings.map((p) => p.wordCount));
    const { segments, tiles } = buildAdaptSegments(regions, packings);
    const rows = Array.from({ length: segments.length / SEGMENT_STRIDE }, (_, i) => Array.from(segments.subarray(i * SEGMENT_STRIDE, (i + 1) * SEGMENT_STRIDE)));
    // q (rows of 7): widths 8, 6, 4 one channel each, then channels 0 and 4 at 2 bits.
    expect(rows.slice(0, 4)).toEqual([
      [0, 0, 1, 8, 0, 7, 0, 0],
      [1, 1, 1, 6, 0, 7, 2, 0],
      [2, 2, 1, 4, 0, 7, 4, 0],
      [3, 3, 2, 2, 0, 7, 5, 0],
    ]);
    // ffn (70 channels of 33): 17 channels at 8 bits (9 words each) come first; its words follow q's 7.
    expect(rows[4]).toEqual([4, 5, 17, 8, 35, 33, 7, 0]);
    expect(rows[5]).toEqual([5, 5 + 17, 17, 6, 35, 33, 7 + 17 * 9, 0]);
    // A segment of more than ADAPT_TILE channels would take several tiles; 'one' is a single segment.
    expect(rows).toHaveLength(4 + 4 + 1);
    expect(rows[8]).toEqual([8, 75, 1, 2, 35 + 70 * 33, 1, regions.layers[2]!.wordStart, 0]);
    expect(tiles).toBe(9);
    const wide = withWords(planModelRegions([{ name: 'w', outChannels: ADAPT_TILE + 1, rowLength: 2 }]), [ADAPT_TILE + 1]);
    const one = planLayerPacking(new Uint8Array(ADAPT_TILE + 1).fill(8), 2);
    expect(buildAdaptSegments(wide, [one]).tiles).toBe(2);
  });

  it('group word starts and the u16 channel table follow core\'s packing order', () => {
    const bits = strategyBits(strategy, layers);
    const packings = bits.map((b, l) => planLayerPacking(b, layers[l]!.rowLength));
    const regions = planModelRegions(layers);
    expect(groupWordStarts(packings[1]!.groups, 33)).toEqual([0, 17 * 9, 17 * 9 + 17 * 7, 17 * 9 + 17 * 7 + 18 * 5]);
    const table = buildChannelTable(regions, packings);
    expect(table.length).toBe(76);
    expect(Array.from(table.subarray(0, 5))).toEqual([3, 2, 1, 0, 4]);
    expect(Array.from(table.subarray(5, 8))).toEqual([3, 7, 11]);
    expect(table[75]).toBe(0);
    expect(buildChannelTable(planModelRegions([layers[0]!]), [packings[0]!]).length).toBe(6); // padded to u32 words
  });

  it('rejects strategies that do not fit the layers', () => {
    const renamed = { ...strategy, layers: [{ ...strategy.layers[0]!, name: 'k' }, ...strategy.layers.slice(1)] };
    expect(() => strategyBits(renamed, layers)).toThrow(StrategyMismatchError);
    expect(() => strategyBits({ ...strategy, layers: strategy.layers.slice(1) }, layers)).toThrow(StrategyMismatchError);
    const badLevel = { ...strategy, layers: [{ name: 'q', levels: Uint8Array.from([0, 1, 2, 3, 4]) }, ...strategy.layers.slice(1)] };
    expect(() => strategyBits(badLevel, layers)).toThrow(StrategyMismatchError);
    expect(() => strategyBits({ ...strategy, levelTable: [2, 4, 6, 9] }, layers)).toThrow(StrategyMismatchError);
  });

  it('off level (0 bits): channels pack to no words; their segment still runs (to write their range) and owns no word', () => {
    const off: Strategy = { ...strategy, levelTable: [0, 3, 4, 5] };
    const bits = strategyBits(off, layers);
    expect(Array.from(bits[0]!)).toEqual([0, 3, 4, 5, 0]);
    expect(Array.from(bits[2]!)).toEqual([0]);
    const packings = bits.map((b, l) => planLayerPacking(b, layers[l]!.rowLength));
    packings.forEach((plan, l) => {
      const { outChannels, rowLength } = layers[l]!;
      const cpu = packLayer(new Float32Array(outChannels * rowLength).map((_, i) => Math.cos(i)), outChannels, rowLength, bits[l]!);
      expect(Array.from(plan.meta)).toEqual(Array.from(cpu.meta));
      expect(Array.from(plan.groups)).toEqual(Array.from(cpu.groups));
      expect(plan.wordCount).toBe(cpu.words.length);
    });
    // q (rows of 7): 5 bits in 2 words, 4 and 3 bits in 1, then channels 0 and 4 off.
    expect(Array.from(packings[0]!.groups)).toEqual([5, 0, 1, 4, 1, 2, 3, 2, 3, 0, 3, 5]);
    expect(packings[0]!.wordCount).toBe(4);
    expect(packings[2]!.wordCount).toBe(0);
    const regions = withWords(planModelRegions(layers), packings.map((p) => p.wordCount));
    const { segments, tiles } = buildAdaptSegments(regions, packings);
    const rows = Array.from({ length: segments.length / SEGMENT_STRIDE }, (_, i) => Array.from(segments.subarray(i * SEGMENT_STRIDE, (i + 1) * SEGMENT_STRIDE)));
    expect(rows.slice(0, 4)).toEqual([
      [0, 0, 1, 5, 0, 7, 0, 0],
      [1, 1, 1, 4, 0, 7, 2, 0],
      [2, 2, 1, 3, 0, 7, 3, 0],
      [3, 3, 2, 0, 0, 7, 4, 0],
    ]);
    // q's off segment starts where ffn's first segment starts: the later one owns that word.
    expect(rows[4]![6]).toBe(4);
    // 'one' is a single off channel: a tile of its own, no words, at the end of the words.
    expect(rows[rows.length - 1]).toEqual([tiles - 1, 75, 1, 0, 35 + 70 * 33, 1, regions.wordLength, 0]);
  });
});

describe('dispatch planning', () => {
  it('folds large workgroup counts into two dimensions', () => {
    expect(foldedGrid(100, 65535)).toEqual([100, 1]);
    const [x, y] = foldedGrid(200_000, 65535);
    expect(y).toBe(4);
    expect(x * y).toBeGreaterThanOrEqual(200_000);
    expect(x).toBeLessThanOrEqual(65535);
  });

  it('gives every width group its own tiles and checks buffer sizes', () => {
    const fakeBuffer = (size: number) => ({ buffer: { size } as GPUBuffer, size });
    const groups = Uint32Array.from([8, 0, 3, 4, 3, 20, 2, 20, 64]);
    // Words: 3 rows of 3 (8 bits), 17 of 2 (4 bits), 44 of 1 (2 bits), from word 7.
    const words = 3 * 3 + 17 * 2 + 44;
    const layer = {
      outChannels: 64, rowLength: 10, groups,
      words: fakeBuffer((7 + words) * 4), wordStart: 7,
      ranges: fakeBuffer((3 + 64) * 8), chan: fakeBuffer(34 * 4), tableStart: 3,
    };
    const plan = planMixedMatmul({ layer, rows: 5, x: fakeBuffer(5 * 10 * 4), y: fakeBuffer(5 * 64 * 4) });
    expect(plan.grid).toEqual([1 + 2 + 3, 2]);
    expect(Array.from(plan.params.subarray(0, 12))).toEqual([5, 10, 64, 3, 0, 0, 64, 0, 7, 3, 0, 0]);
    expect(Array.from(plan.params.subarray(12, 24))).toEqual([8, 0, 3, 0, 4, 3, 20, 1, 2, 20, 64, 3]);
    const args = { rows: 5, x: fakeBuffer(5 * 10 * 4), y: fakeBuffer(5 * 64 * 4) };
    expect(() => planMixedMatmul({ ...args, layer: { ...layer, words: fakeBuffer((7 + words) * 4 - 4) } })).toThrow(MatmulArgumentError);
    expect(() => planMixedMatmul({ ...args, layer: { ...layer, ranges: fakeBuffer((3 + 64) * 8 - 8) } })).toThrow(MatmulArgumentError);
    expect(() => planMixedMatmul({ ...args, layer: { ...layer, chan: fakeBuffer(33 * 4) } })).toThrow(MatmulArgumentError);
    const gap = Uint32Array.from([8, 0, 3, 4, 4, 20, 2, 20, 64]);
    expect(() => planMixedMatmul({ ...args, layer: { ...layer, groups: gap } })).toThrow(MatmulArgumentError);
    expect(() => planMixedMatmul({ layer, rows: 5, x: fakeBuffer(196), y: fakeBuffer(5 * 64 * 4) })).toThrow(MatmulArgumentError);
    expect(() => planMixedMatmul({ layer, rows: 5, x: fakeBuffer(200), y: fakeBuffer(5 * 64 * 4 - 4) })).toThrow(MatmulArgumentError);
  });

  it('plans an off group (0 bits) with tiles but no words, and a layer using all nine widths 0..8', () => {
    const fakeBuffer = (size: number) => ({ buffer: { size } as GPUBuffer, size });
    const base = { rows: 1, x: fakeBuffer(10 * 4), y: fakeBuffer(64 * 4) };
    const layer = { outChannels: 64, rowLength: 10, wordStart: 0, ranges: fakeBuffer(64 * 8), chan: fakeBuffer(32 * 4), tableStart: 0 };
    // 20 channels at 4 bits (2 words each), 44 off: the words buffer needs the 40 words alone.
    const offGroups = Uint32Array.from([4, 0, 20, 0, 20, 64]);
    const plan = planMixedMatmul({ ...base, layer: { ...layer, groups: offGroups, words: fakeBuffer(40 * 4) } });
    expect(plan.grid).toEqual([2 + 3, 1]);
    expect(Array.from(plan.params.subarray(12, 20))).toEqual([4, 0, 20, 0, 0, 20, 64, 2]);
    const nine = Uint32Array.from(Array.from({ length: 9 }, (_, g) => [8 - g, g * 7, g === 8 ? 64 : (g + 1) * 7]).flat());
    expect(() => planMixedMatmul({ ...base, layer: { ...layer, groups: nine, words: fakeBuffer(64 * 3 * 4) } })).not.toThrow();
    const nineBad = nine.map((v, i) => (i === 0 ? 9 : v));
    expect(() => planMixedMatmul({ ...base, layer: { ...layer, groups: nineBad, words: fakeBuffer(64 * 3 * 4) } })).toThrow(MatmulArgumentError);
  });
});
