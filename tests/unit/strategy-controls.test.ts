import { describe, expect, it } from 'vitest';
import { AllocationInputError, averageBits } from '../../src/core/allocation.ts';
import { shuffleChannelsWithinLayers, uniformLevelTable, uniformStrategy } from '../../src/core/strategy-controls.ts';
import { channelBits, type Strategy } from '../../src/core/strategy.ts';

/** Two layers of Γ-like strategies: 64 channels with every level, and 8 with two. */
function strategy(): Strategy {
  const a = Uint8Array.from({ length: 64 }, (_, i) => (i < 8 ? 3 : i < 16 ? 1 : i < 20 ? 2 : 0));
  const b = Uint8Array.from([3, 0, 0, 0, 0, 0, 0, 1]);
  return { levelTable: [2, 4, 6, 8], beta: 0.125, layers: [{ name: 'b0.q', levels: a }, { name: 'b0.ffn1', levels: b }] };
}
const ROWS = [64, 256];
const sorted = (x: Uint8Array) => Array.from(x).sort((p, q) => p - q);

describe('shuffleChannelsWithinLayers', () => {
  it('keeps each layer\'s widths (so the average bits, to the bit) and moves them to other channels', () => {
    const s = strategy();
    const before = s.layers.map((l) => Array.from(l.levels));
    const t = shuffleChannelsWithinLayers(s, 7);
    t.layers.forEach((l, i) => {
      expect(l.name).toBe(s.layers[i]!.name);
      expect(sorted(l.levels)).toEqual(sorted(s.layers[i]!.levels));
    });
    expect(averageBits(t, ROWS)).toBe(averageBits(s, ROWS));
    expect(t.levelTable).toBe(s.levelTable);
    // The 64-channel layer's 8-bit channels land mostly elsewhere.
    const moved = t.layers[0]!.levels.filter((v, i) => v !== s.layers[0]!.levels[i]).length;
    expect(moved).toBeGreaterThan(16);
    // Pure: the input is left as it was.
    expect(s.layers.map((l) => Array.from(l.levels))).toEqual(before);
  });

  it('is a function of the seed: the same seed gives the same shuffle, another seed another', () => {
    const s = strategy();
    const levels = (x: Strategy) => x.layers.map((l) => Array.from(l.levels));
    expect(levels(shuffleChannelsWithinLayers(s, 7))).toEqual(levels(shuffleChannelsWithinLayers(s, 7)));
    expect(levels(shuffleChannelsWithinLayers(s, 8))).not.toEqual(levels(shuffleChannelsWithinLayers(s, 7)));
  });

  it('puts every channel everywhere over many seeds (no position is favoured)', () => {
    // Channel 0 of layer b carries the one 8-bit level: over 4,000 seeds each of the 8 positions gets it ~1/8 of the time.
    const counts = new Array<number>(8).fill(0);
    for (let seed = 0; seed < 4000; seed++) counts[shuffleChannelsWithinLayers(strategy(), seed).layers[1]!.levels.indexOf(3)]!++;
    for (const c of counts) expect(Math.abs(c - 500)).toBeLessThan(5 * Math.sqrt(4000 * (1 / 8) * (7 / 8)));
  });
});

describe('uniformStrategy', () => {
  it('gives every channel of the template\'s layers the uniform width', () => {
    const u = uniformStrategy(strategy(), 3);
    expect(u.layers.map((l) => [l.name, l.levels.length])).toEqual([
      ['b0.q', 64],
      ['b0.ffn1', 8],
    ]);
    u.layers.forEach((l, i) => l.levels.forEach((_, c) => expect(channelBits(u, i, c)).toBe(3)));
    expect(averageBits(u, ROWS)).toBe(3);
  });

  it('refuses widths its level table cannot start', () => {
    expect(uniformLevelTable(5)).toEqual([5, 6, 7, 8]);
    expect(() => uniformLevelTable(6)).toThrow(AllocationInputError);
    expect(() => uniformStrategy(strategy(), 0)).toThrow(AllocationInputError);
  });
});
