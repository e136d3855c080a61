import { describe, expect, it } from 'vitest';
import { averageBits } from '../../src/core/allocation.ts';
import {
  BudgetInputError,
  applyBudget,
  channelRangesFromWeights,
  demotionNoise,
} from '../../src/core/budget.ts';
import type { FrozenLayerInfo } from '../../src/core/budget.ts';
import type { Strategy } from '../../src/core/strategy.ts';

/** Deterministic pseudo-random numbers in [0, 1) (LCG), so the fixtures need no seed module. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Three layers of 64 channels with row lengths 16, 32, 48 and Γ-style levels: 8 channels at
 * level 3 (8 bit), 8 at level 1 (4 bit), 48 at level 0 (2 bit) -> every layer averages 3 bits.
 */
function fixture(): { strategy: Strategy; frozen: FrozenLayerInfo[]; rowLengths: number[] } {
  const rand = lcg(42);
  const rowLengths = [16, 32, 48];
  const layers = rowLengths.map((_, l) => {
    const levels = new Uint8Array(64);
    for (let j = 0; j < 64; j++) levels[(j * 37 + l) % 64] = j < 8 ? 3 : j < 16 ? 1 : 0;
    return { name: `layer${l}`, levels };
  });
  const frozen = rowLengths.map((rowLength) => ({
    rowLength,
    ranges: Float32Array.from({ length: 64 }, () => 0.05 + rand()),
  }));
  return { strategy: { levelTable: [2, 4, 6, 8], beta: 0.125, layers }, frozen, rowLengths };
}

const levelsOf = (s: Strategy) => s.layers.map((l) => Array.from(l.levels));

describe('channelRangesFromWeights', () => {
  it('returns max - min per row', () => {
    // row 0: max 1, min -2 -> 3; row 1: constant -> 0
    const r = channelRangesFromWeights(new Float32Array([1, -2, 0.5, 3, 3, 3]), 2, 3);
    expect(Array.from(r)).toEqual([3, 0]);
  });

  it('rejects bad shapes and non-finite weights', () => {
    expect(() => channelRangesFromWeights(new Float32Array(5), 2, 3)).toThrow(BudgetInputError);
    expect(() => channelRangesFromWeights(new Float32Array([0, NaN]), 1, 2)).toThrow(BudgetInputError);
  });
});

describe('demotionNoise', () => {
  it('is rowLength * r^2 * (1/(2^b-1)^2 - 1/(2^B-1)^2) / 12', () => {
    // 2 -> 1 bit, r = 3, one weight: 9 * (1/1 - 1/9) / 12 = 8 / 12
    expect(demotionNoise(1, 3, 2, 1)).toBeCloseTo(2 / 3, 12);
    // 8 -> 6 bit, r = 1, 10 weights: 10 * (1/3969 - 1/65025) / 12
    expect(demotionNoise(10, 1, 8, 6)).toBeCloseTo((10 * (1 / 3969 - 1 / 65025)) / 12, 15);
  });
});

describe('applyBudget', () => {
  it('goes 3 -> 2.5 -> 2, landing on or just below each budget', () => {
    const { strategy, frozen, rowLengths } = fixture();
    expect(averageBits(strategy, rowLengths)).toBe(3);
    const totalWeights = 64 * (16 + 32 + 48);

    const r25 = applyBudget(strategy, frozen, 2.5);
    expect(r25.averageBits).toBeLessThanOrEqual(2.5);
    // every demotion saves 2 bits per weight of one row: overshoot < 2 * 48 / 6144 = 0.015625
    expect(r25.averageBits).toBeGreaterThan(2.5 - (2 * 48) / totalWeights);
    expect(averageBits(r25.strategy, rowLengths)).toBe(r25.averageBits);
    expect(r25.clamped).toBe(false);

    const r2 = applyBudget(r25.strategy, frozen, 2);
    expect(r2.averageBits).toBe(2);
    expect(r2.strategy.layers.every((l) => l.levels.every((v) => v === 0))).toBe(true);
    // from scratch: every channel walks down to level 0; per layer 8 * 3 + 8 * 1 = 32 steps
    expect(applyBudget(strategy, frozen, 2).demotions).toBe(96);
    expect(r25.demotions + r2.demotions).toBe(96);
  });

  it('is deterministic and does not modify its input', () => {
    const { strategy, frozen } = fixture();
    const before = levelsOf(strategy);
    const a = applyBudget(strategy, frozen, 2.4);
    const b = applyBudget(fixture().strategy, fixture().frozen, 2.4);
    expect(levelsOf(a.strategy)).toEqual(levelsOf(b.strategy));
    expect(a.averageBits).toBe(b.averageBits);
    expect(levelsOf(strategy)).toEqual(before);
  });

  it('is monotone in the budget and never raises bits', () => {
    const { strategy, frozen } = fixture();
    let previous = levelsOf(strategy);
    for (let budget = 3; budget >= 1.99; budget -= 0.05) {
      const current = levelsOf(applyBudget(strategy, frozen, budget).strategy);
      current.forEach((layer, l) =>
        layer.forEach((level, j) => expect(level).toBeLessThanOrEqual(previous[l]![j]!)),
      );
      previous = current;
    }
  });

  it('switches channels off (an OFF_BITS level) only after every other demotion, without NaN', () => {
    const { strategy, frozen, rowLengths } = fixture();
    const gated: Strategy = { ...strategy, levelTable: [0, 3, 4, 5] };
    expect(demotionNoise(16, 1, 3, 0)).toBe(Infinity);
    const start = averageBits(gated, rowLengths);
    const lowest = applyBudget(gated, frozen, 0);
    expect(lowest.averageBits).toBe(0);
    expect(lowest.strategy.layers.every((l) => l.levels.every((v) => v === 0))).toBe(true);
    // A budget that only needs demotions among the non-zero widths switches nothing new off.
    const mild = applyBudget(gated, frozen, start - 0.25);
    expect(Number.isFinite(mild.averageBits)).toBe(true);
    gated.layers.forEach((layer, l) =>
      layer.levels.forEach((level, j) => {
        if (level > 0) expect(mild.strategy.layers[l]!.levels[j]).toBeGreaterThan(0);
      }),
    );
  });

  it('returns the same strategy when the budget is already met', () => {
    const { strategy, frozen } = fixture();
    for (const budget of [3, 3.5, 8]) {
      const r = applyBudget(strategy, frozen, budget);
      expect(r.strategy).toBe(strategy);
      expect(r.demotions).toBe(0);
      expect(r.averageBits).toBe(3);
    }
  });

  it('demotes narrow-range channels first, by noise per bit saved', () => {
    // One layer, 4 channels at 8 bit, rowLength 10: 320 bits over 40 weights.
    // Ratio = r^2 * (1/(2^b'-1)^2 - 1/(2^b-1)^2) / 24 (rowLength cancels, 2 bits saved):
    //   8->6 diff = 1/3969 - 1/65025 = 2.3657e-4; 6->4 diff = 1/225 - 1/3969 = 4.1925e-3
    //   ch1 (r 0.1): 8->6 9.86e-8, 6->4 1.747e-6 | ch3 (r 0.5): 8->6 2.464e-6
    //   ch0 (r 1):   8->6 9.86e-6                | ch2 (r 5):   8->6 2.464e-4
    // Order: ch1 8->6, ch1 6->4, ch3 8->6, ch0 8->6, ...
    const strategy: Strategy = {
      levelTable: [2, 4, 6, 8],
      beta: 0.125,
      layers: [{ name: 'w', levels: new Uint8Array([3, 3, 3, 3]) }],
    };
    const frozen = [{ rowLength: 10, ranges: new Float32Array([1, 0.1, 5, 0.5]) }];
    // 7.5 * 40 = 300 -> one step (20 bits)
    expect(levelsOf(applyBudget(strategy, frozen, 7.5).strategy)).toEqual([[3, 2, 3, 3]]);
    // 7 * 40 = 280 -> two steps, both on ch1 (its second step is still cheaper than ch3's first)
    expect(levelsOf(applyBudget(strategy, frozen, 7).strategy)).toEqual([[3, 1, 3, 3]]);
    expect(levelsOf(applyBudget(strategy, frozen, 6.5).strategy)).toEqual([[3, 1, 3, 2]]);
    expect(levelsOf(applyBudget(strategy, frozen, 6).strategy)).toEqual([[2, 1, 3, 2]]);
    expect(applyBudget(strategy, frozen, 6).averageBits).toBe(6);
  });

  it('breaks ratio ties by lower layer, then lower channel', () => {
    const strategy: Strategy = {
      levelTable: [2, 4, 6, 8],
      beta: 0.125,
      layers: [
        { name: 'a', levels: new Uint8Array([3, 3]) },
        { name: 'b', levels: new Uint8Array([3, 3]) },
      ],
    };
    const frozen = [
      { rowLength: 4, ranges: new Float32Array([1, 1]) },
      { rowLength: 4, ranges: new Float32Array([1, 1]) },
    ];
    // 128 bits over 16 weights; each step saves 8 bits = 0.5 of average
    expect(levelsOf(applyBudget(strategy, frozen, 7.5).strategy)).toEqual([[2, 3], [3, 3]]);
    expect(levelsOf(applyBudget(strategy, frozen, 7).strategy)).toEqual([[2, 2], [3, 3]]);
    expect(levelsOf(applyBudget(strategy, frozen, 6.5).strategy)).toEqual([[2, 2], [2, 3]]);
  });

  it('works with a non-uniform level table such as 2-5-6-7', () => {
    const strategy: Strategy = {
      levelTable: [2, 5, 6, 7],
      beta: 0.125,
      layers: [{ name: 'w', levels: new Uint8Array([3, 2, 1, 0]) }],
    };
    // bits 7 + 6 + 5 + 2 = 20 over 4 channels of rowLength 1 = 5.0
    // ranges equal: 7->6 ratio (1/63^2 - 1/127^2)/12 = 1.58e-5 beats 6->5 (1/31^2 - 1/63^2)/12 = 6.57e-5
    const frozen = [{ rowLength: 1, ranges: new Float32Array([1, 1, 1, 1]) }];
    const r = applyBudget(strategy, frozen, 4.75);
    expect(levelsOf(r.strategy)).toEqual([[2, 2, 1, 0]]);
    expect(r.averageBits).toBe(4.75);
    // 4.5 -> next cheapest: ch0 6->5 vs ch1 6->5 tie -> ch0
    expect(levelsOf(applyBudget(strategy, frozen, 4.5).strategy)).toEqual([[1, 2, 1, 0]]);
  });

  it('clamps a budget below the smallest width and reports it', () => {
    const { strategy, frozen } = fixture();
    const r = applyBudget(strategy, frozen, 1);
    expect(r.clamped).toBe(true);
    expect(r.budget).toBe(2);
    expect(r.averageBits).toBe(2);
    expect(applyBudget(strategy, frozen, 2).clamped).toBe(false);
  });

  it('rejects mismatched or invalid inputs', () => {
    const { strategy, frozen } = fixture();
    expect(() => applyBudget(strategy, frozen.slice(1), 2.5)).toThrow(BudgetInputError);
    expect(() => applyBudget(strategy, frozen, NaN)).toThrow(BudgetInputError);
    const badRange = frozen.map((f) => ({ rowLength: f.rowLength, ranges: f.ranges.slice() }));
    badRange[1]!.ranges[3] = NaN;
    expect(() => applyBudget(strategy, badRange, 2.5)).toThrow(BudgetInputError);
    const short = frozen.map((f) => ({ rowLength: f.rowLength, ranges: f.ranges.subarray(1) }));
    expect(() => applyBudget(strategy, short, 2.5)).toThrow(BudgetInputError);
  });
});
