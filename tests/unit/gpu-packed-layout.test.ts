import { describe, expect, it } from 'vitest';
import { packLayer } from '../../src/core/packing.ts';
import type { Strategy } from '../../src/core/strategy.ts';
import { foldedGrid } from '../../src/gpu/adapt-program.ts';
import { MatmulArgumentError, planMixedMatmul } from '../../src/gpu/matmul-program.ts';
import {
  ADAPT_ROW_STRIDE,
  buildAdaptRows,
  LayerLayoutError,
  planLayerPacking,
  planModelRegions,
  REGION_ALIGN_BYTES,
  StrategyMismatchError,
  strategyBits,
} from '../../src/gpu/packed-layout.ts';

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
  it('packs weights densely and aligns tables and words to 256 bytes, sized for 8-bit rows', () => {
    const r = planModelRegions(layers);
    expect(r.layers.map((l) => l.weightStart)).toEqual([0, 35, 35 + 70 * 33]);
    expect(r.weightCount).toBe(35 + 70 * 33 + 1);
    expect(r.channelCount).toBe(76);
    expect(r.layers.map((l) => l.tableStart)).toEqual([0, 64, 192]);
    expect(r.layers.map((l) => l.wordCapacity)).toEqual([5 * 2, 70 * 9, 1]);
    for (const l of r.layers) expect((l.wordStart * 4) % REGION_ALIGN_BYTES).toBe(0);
    expect(r.layers[1]!.wordStart).toBe(64);
    expect(r.wordLength).toBe(64 + 640 + 64);
  });

  it('rejects duplicate names and non-positive sizes', () => {
    expect(() => planModelRegions([layers[0]!, layers[0]!])).toThrow(LayerLayoutError);
    expect(() => planModelRegions([{ name: 'x', outChannels: 0, rowLength: 3 }])).toThrow(LayerLayoutError);
    expect(() => planModelRegions([])).toThrow(LayerLayoutError);
  });
});

describe('strategyBits and buildAdaptRows', () => {
  const strategy: Strategy = {
    levelTable: [2, 4, 6, 8],
    beta: 0.125,
    layers: layers.map((l) => ({ name: l.name, levels: new Uint8Array(l.outChannels).map((_, j) => j % 4) })),
  };

  it('maps levels through the level table and fills one row per channel in packed order', () => {
    const regions = planModelRegions(layers);
    const bits = strategyBits(strategy, layers);
    expect(Array.from(bits[0]!)).toEqual([2, 4, 6, 8, 2]);
    const packings = bits.map((b, l) => planLayerPacking(b, layers[l]!.rowLength));
    const rows = buildAdaptRows(regions, packings);
    expect(rows.length).toBe(76 * ADAPT_ROW_STRIDE);
    // Layer q, packed position 0 is channel 3 (8 bits): row 3 of q, word 0, table index 0.
    expect(Array.from(rows.subarray(0, 5))).toEqual([3 * 7, 7, 0, 8, 0]);
    // Layer ffn, position 1 is channel 7 (8 bits, 9 words per row): second row of its region.
    expect(Array.from(rows.subarray(6 * 5, 7 * 5))).toEqual([35 + 7 * 33, 33, 64 + 9, 8, 65]);
  });

  it('rejects strategies that do not fit the layers', () => {
    const renamed = { ...strategy, layers: [{ ...strategy.layers[0]!, name: 'k' }, ...strategy.layers.slice(1)] };
    expect(() => strategyBits(renamed, layers)).toThrow(StrategyMismatchError);
    expect(() => strategyBits({ ...strategy, layers: strategy.layers.slice(1) }, layers)).toThrow(StrategyMismatchError);
    const badLevel = { ...strategy, layers: [{ name: 'q', levels: Uint8Array.from([0, 1, 2, 3, 4]) }, ...strategy.layers.slice(1)] };
    expect(() => strategyBits(badLevel, layers)).toThrow(StrategyMismatchError);
    expect(() => strategyBits({ ...strategy, levelTable: [0, 2, 4, 8] }, layers)).toThrow(StrategyMismatchError);
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
    const layer = {
      outChannels: 64, rowLength: 10, groups,
      words: fakeBuffer(4), meta: fakeBuffer(4), scale: fakeBuffer(4), zero: fakeBuffer(4), max: fakeBuffer(4),
    };
    const plan = planMixedMatmul({ layer, rows: 5, x: fakeBuffer(5 * 10 * 4), y: fakeBuffer(5 * 64 * 4) });
    expect(plan.grid).toEqual([1 + 2 + 3, 2]);
    expect(Array.from(plan.params.subarray(0, 8))).toEqual([5, 10, 64, 3, 0, 0, 64, 0]);
    expect(Array.from(plan.params.subarray(8, 20))).toEqual([8, 0, 3, 0, 4, 3, 20, 1, 2, 20, 64, 3]);
    expect(() => planMixedMatmul({ layer, rows: 5, x: fakeBuffer(196), y: fakeBuffer(5 * 64 * 4) })).toThrow(MatmulArgumentError);
    expect(() => planMixedMatmul({ layer, rows: 5, x: fakeBuffer(200), y: fakeBuffer(5 * 64 * 4 - 4) })).toThrow(MatmulArgumentError);
  });
});
