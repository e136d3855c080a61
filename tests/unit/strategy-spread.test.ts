import { describe, expect, it } from 'vitest';
import { ChordError } from '../../src/core/errors.ts';
import { strategySpread, StrategySpreadInputError } from '../../src/core/strategy-spread.ts';
import type { LevelTable, Strategy } from '../../src/core/strategy.ts';

/** A two-layer strategy (layer a: 2 channels, layer b: 2 channels) from level indices. */
function strategy(a: number[], b: number[], levelTable: LevelTable = [2, 4, 6, 8]): Strategy {
  return { levelTable, beta: 0.125, layers: [{ name: 'a', levels: Uint8Array.from(a) }, { name: 'b', levels: Uint8Array.from(b) }] };
}
// Layer a's rows are 1 weight long, layer b's 3: b's channels weigh three times as much in the average bits.
const ROWS = [1, 3];

describe('strategySpread', () => {
  it('counts differing channels over consecutive pairs (wrapping around), global channels and the average-bit range', () => {
    const s = [
      strategy([0, 3], [1, 1]), // bits 2 8 | 4 4 -> (2+8+12+12)/8 = 4.25
      strategy([0, 3], [1, 3]), // bits 2 8 | 4 8 -> (2+8+12+24)/8 = 5.75
      strategy([0, 1], [1, 0]), // bits 2 4 | 4 2 -> (2+4+12+6)/8  = 3
    ];
    const r = strategySpread(s, ROWS);
    // pairs (0,1): 1 of 4 differ; (1,2): 2 of 4 (a1, b1); (2,0): 2 of 4 (a1, b1)
    expect(r.pairDiffer).toBeCloseTo((1 / 4 + 2 / 4 + 2 / 4) / 3, 12);
    // a0 (2 bit) and b0 (4 bit) are the same for all three users
    expect(r.globalChannels).toBe(2 / 4);
    expect(r.averageBits).toEqual({ min: 3, mean: (4.25 + 5.75 + 3) / 3, max: 5.75 });
    expect(r.users).toBe(3);
    expect(r.channels).toBe(4);
  });

  it("gives each layer's weight share and mean bits; weighted by share they add up to the mean average bits", () => {
    const s = [
      strategy([3, 3], [0, 0]), // a: 8 8 | b: 2 2
      strategy([3, 1], [0, 1]), // a: 8 4 | b: 2 4
    ];
    const r = strategySpread(s, ROWS);
    expect(r.layers.map((l) => l.name)).toEqual(['a', 'b']);
    // a holds 2 of the 8 weights, b 6
    expect(r.layers.map((l) => l.weightShare)).toEqual([0.25, 0.75]);
    expect(r.layers[0]!.meanBits).toBe((8 + 8 + 8 + 4) / 4);
    expect(r.layers[1]!.meanBits).toBe((2 + 2 + 2 + 4) / 4);
    const weighted = r.layers.reduce((t, l) => t + l.weightShare * l.meanBits, 0);
    expect(weighted).toBeCloseTo(r.averageBits.mean, 12);
    // The big layer drives the average: b at 2.5 bits holds the model at 3.625 although a sits at 7.
    expect(r.averageBits.mean).toBeCloseTo(3.625, 12);
  });

  it('is zero spread for one shared strategy, and for a single user', () => {
    const one = strategy([1, 2], [0, 3]);
    const same = strategySpread([one, strategy([1, 2], [0, 3]), one], ROWS);
    expect(same.pairDiffer).toBe(0);
    expect(same.globalChannels).toBe(1);
    expect(same.averageBits.min).toBe(same.averageBits.max);
    const single = strategySpread([one], ROWS);
    expect(single.pairDiffer).toBe(0);
    expect(single.globalChannels).toBe(1);
  });

  it('uses consecutive pairs, not all pairs: two alternating strategies differ in every pair', () => {
    const x = strategy([0, 0], [0, 0]);
    const y = strategy([3, 3], [3, 3]);
    // consecutive pairs of x y x y all differ everywhere; all pairs would give 4 of 6 pairs
    expect(strategySpread([x, y, x, y], ROWS).pairDiffer).toBe(1);
    expect(strategySpread([x, x, y, y], ROWS).pairDiffer).toBe(0.5);
    expect(strategySpread([x, y, x, y], ROWS).globalChannels).toBe(0);
  });

  it('compares bit widths, not level indices', () => {
    // level 0 of [3,4,5,6] is 3 bits; level 1 of [2,3,4,5] is 3 bits too
    const r = strategySpread([strategy([0, 0], [0, 0], [3, 4, 5, 6]), strategy([1, 1], [1, 1], [2, 3, 4, 5])], ROWS);
    expect(r.pairDiffer).toBe(0);
    expect(r.globalChannels).toBe(1);
  });

  it('refuses no strategies and strategies of other shapes with a ChordError', () => {
    const ok = strategy([0, 0], [0, 0]);
    const bad = [
      [] as Strategy[],
      [ok, { ...ok, layers: ok.layers.slice(0, 1) }],
      [ok, strategy([0, 0, 0], [0, 0])],
      [ok, { ...ok, layers: [ok.layers[0]!, { name: 'c', levels: Uint8Array.from([0, 0]) }] }],
    ];
    for (const s of bad) {
      expect(() => strategySpread(s, ROWS)).toThrow(StrategySpreadInputError);
    }
    expect(() => strategySpread([], ROWS)).toThrow(ChordError);
    expect(() => strategySpread([], ROWS)).toThrow(expect.objectContaining({ code: 'STRATEGY_SPREAD_INPUT' }));
  });
});
