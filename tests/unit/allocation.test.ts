import { describe, expect, it } from 'vitest';
import {
  AllocationInputError,
  NonFiniteScoreError,
  allocateStrategy,
  averageBits,
  channelAverageBits,
  channelScores,
  gammaAllocate,
  lambdaAdjust,
  lambdaShifts,
  tierSize,
} from '../../src/core/allocation.ts';
import { ChordError } from '../../src/core/errors.ts';
import { channelBits } from '../../src/core/strategy.ts';
import type { Strategy } from '../../src/core/strategy.ts';

function bitsOf(strategy: Strategy, layer: number): number[] {
  const l = strategy.layers[layer]!;
  return Array.from(l.levels, (_, j) => channelBits(strategy, layer, j));
}

describe('channelScores', () => {
  it('is softmax(alphaF) times the L1 mass of each row of alphaE', () => {
    // softmax([0, ln 3]) = [1/4, 3/4]; S = [|1|+|-1|, |0.5|+|-0.5|] = [2, 1]
    // alpha_W = [2/4, 3/4] = [0.5, 0.75]
    const scores = channelScores(
      new Float32Array([0, Math.log(3)]),
      new Float32Array([1, -1, 0.5, -0.5]),
      2,
      2,
    );
    expect(scores[0]).toBeCloseTo(0.5, 6);
    expect(scores[1]).toBeCloseTo(0.75, 6);
  });

  it('stays finite for large logits (max is subtracted before exp)', () => {
    // softmax([1000, 1000, 990]) ~ [0.49998, 0.49998, 2.27e-5]; S = [1, 2, 3]
    const scores = channelScores(new Float32Array([1000, 1000, 990]), new Float32Array([1, 2, 3]), 3, 1);
    const e = Math.exp(-10);
    expect(scores[0]).toBeCloseTo(1 / (2 + e), 6);
    expect(scores[1]).toBeCloseTo(2 / (2 + e), 6);
    expect(scores[2]).toBeCloseTo((3 * e) / (2 + e), 8);
  });

  it('rejects wrong shapes and non-finite sensitivities with typed errors', () => {
    expect(() => channelScores(new Float32Array(3), new Float32Array(4), 2, 2)).toThrow(AllocationInputError);
    expect(() => channelScores(new Float32Array(2), new Float32Array(5), 2, 2)).toThrow(AllocationInputError);
    expect(() => channelScores(new Float32Array([0, NaN]), new Float32Array(4), 2, 2)).toThrow(NonFiniteScoreError);
    expect(() => channelScores(new Float32Array(2), new Float32Array([0, Infinity, 0, 0]), 2, 2)).toThrow(
      NonFiniteScoreError,
    );
  });
});

describe('gammaAllocate', () => {
  it('gives the top beta channels tier 2, the next beta tier 1, the rest tier 0', () => {
    // n = 16, beta = 0.125 -> k = 2. Scores descending: ch 5 (16), ch 11 (15), ch 0 (14), ch 3 (13).
    const scores = new Float32Array(16).fill(1);
    scores[5] = 16;
    scores[11] = 15;
    scores[0] = 14;
    scores[3] = 13;
    const tiers = gammaAllocate(scores, 0.125);
    const expected = new Uint8Array(16);
    expected[5] = 2;
    expected[11] = 2;
    expected[0] = 1;
    expected[3] = 1;
    expect(tiers).toEqual(expected);
  });

  it('averages 3 bits at beta = 0.125 on 64 channels with tiers 8/4/2', () => {
    const scores = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 12.9898) * 43758.5453);
    const tiers = gammaAllocate(scores, 0.125);
    const bits = Array.from(tiers, (t) => [2, 4, 8][t]!);
    // 8 * 8 + 8 * 4 + 48 * 2 = 192 -> 192 / 64 = 3
    expect(bits.reduce((a, b) => a + b, 0) / 64).toBe(3);
  });

  it('rounds beta * n half up and caps k at n / 2', () => {
    expect(tierSize(4, 0.125)).toBe(1); // 0.5 -> 1: a 4-channel layer keeps one 8-bit channel
    expect(tierSize(3, 0.125)).toBe(0); // 0.375 -> 0
    expect(tierSize(20, 0.125)).toBe(3); // 2.5 -> 3
    expect(tierSize(3, 0.5)).toBe(1); // round(1.5) = 2 but floor(3 / 2) = 1
    expect(Array.from(gammaAllocate(new Float32Array([4, 3, 2, 1]), 0.125))).toEqual([2, 1, 0, 0]);
    expect(Array.from(gammaAllocate(new Float32Array([1, 2, 3]), 0.125))).toEqual([0, 0, 0]);
  });

  it('breaks score ties toward the lower channel index', () => {
    expect(Array.from(gammaAllocate(new Float32Array([1, 1, 1, 1]), 0.25))).toEqual([2, 1, 0, 0]);
    expect(Array.from(gammaAllocate(new Float32Array([0, 7, 0, 7, 7, 0, 0, 0]), 0.125))).toEqual([
      0, 2, 0, 1, 0, 0, 0, 0,
    ]);
  });

  it('rejects NaN scores and beta outside [0, 0.5]', () => {
    const nan = () => gammaAllocate(new Float32Array([1, NaN]), 0.25);
    expect(nan).toThrow(NonFiniteScoreError);
    expect(nan).toThrow(ChordError);
    try {
      nan();
    } catch (e) {
      expect((e as ChordError).code).toBe('ALLOCATION_NON_FINITE_SCORE');
    }
    expect(() => gammaAllocate(new Float32Array(4), 0.6)).toThrow(AllocationInputError);
    expect(() => gammaAllocate(new Float32Array(4), -0.1)).toThrow(AllocationInputError);
    expect(() => gammaAllocate(new Float32Array(4), NaN)).toThrow(AllocationInputError);
  });
});

describe('lambdaAdjust', () => {
  const tiers = (name: string) => ({ name, tiers: new Uint8Array([2, 1, 0, 0]) });
  // alphaL descending: layer 1 (0.9), layer 2 (0.5), layer 3 (0.3), layer 0 (0.1)
  const alphaL = new Float32Array([0.1, 0.9, 0.5, 0.3]);

  it('moves the most sensitive layer up and the least sensitive down, giving levels 2-4-6-8', () => {
    const s = lambdaAdjust([tiers('a'), tiers('b'), tiers('c'), tiers('d')], alphaL, {
      up: 1,
      down: 1,
      beta: 0.25,
    });
    // base levels for tiers [2,1,0,0] are [3,1,0,0]
    expect(Array.from(s.layers[1]!.levels)).toEqual([3, 2, 1, 1]); // up, 8 clamps at level 3
    expect(Array.from(s.layers[0]!.levels)).toEqual([2, 0, 0, 0]); // down, 2 clamps at level 0
    expect(Array.from(s.layers[2]!.levels)).toEqual([3, 1, 0, 0]);
    expect(Array.from(s.layers[3]!.levels)).toEqual([3, 1, 0, 0]);
    expect(bitsOf(s, 1)).toEqual([8, 6, 4, 4]);
    expect(bitsOf(s, 0)).toEqual([6, 2, 2, 2]);
    const used = new Set(s.layers.flatMap((l) => Array.from(l.levels, (v) => s.levelTable[v])));
    expect([...used].sort((a, b) => a! - b!)).toEqual([2, 4, 6, 8]);
    expect(s.beta).toBe(0.25);
    expect(s.layers.map((l) => l.name)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('supports another level table such as 2-5-6-7 (levels are indices)', () => {
    const s = lambdaAdjust([tiers('a'), tiers('b'), tiers('c'), tiers('d')], alphaL, {
      up: 1,
      down: 1,
      beta: 0.25,
      levelTable: [2, 5, 6, 7],
    });
    expect(s.levelTable).toEqual([2, 5, 6, 7]);
    expect(bitsOf(s, 1)).toEqual([7, 6, 5, 5]);
    expect(bitsOf(s, 0)).toEqual([6, 2, 2, 2]);
    expect(bitsOf(s, 2)).toEqual([7, 5, 2, 2]);
  });

  it('breaks alpha_L ties toward the lower layer index being more sensitive', () => {
    expect(Array.from(lambdaShifts(new Float32Array([0.5, 0.5, 0.5]), { up: 1, down: 1 }))).toEqual([1, 0, -1]);
  });

  it('accepts fractions of layers, rounded', () => {
    // 8 layers: up 0.125 -> 1 layer, down 0.25 -> 2 layers
    const a = new Float32Array([8, 7, 6, 5, 4, 3, 2, 1]);
    expect(Array.from(lambdaShifts(a, { up: 0.125, down: 0.25, unit: 'fraction' }))).toEqual([
      1, 0, 0, 0, 0, 0, -1, -1,
    ]);
  });

  it('rejects bad options and level tables', () => {
    const layers = [tiers('a'), tiers('b')];
    const two = new Float32Array([1, 2]);
    expect(() => lambdaAdjust(layers, two, { up: 2, down: 1, beta: 0.25 })).toThrow(AllocationInputError);
    expect(() => lambdaAdjust(layers, two, { up: 0.5, down: 0, beta: 0.25 })).toThrow(AllocationInputError);
    expect(() => lambdaAdjust(layers, new Float32Array(3), { up: 0, down: 0, beta: 0.25 })).toThrow(
      AllocationInputError,
    );
    expect(() => lambdaAdjust(layers, new Float32Array([NaN, 1]), { up: 1, down: 0, beta: 0.25 })).toThrow(
      NonFiniteScoreError,
    );
    for (const levelTable of [[2, 4, 4, 8], [0, 0, 4, 8], [2, 0, 4, 8], [-1, 2, 4, 8], [2, 4, 6, 9], [2, 4, 6], [2, 4.5, 6, 8]]) {
      expect(() => lambdaAdjust(layers, two, { up: 0, down: 0, beta: 0.25, levelTable })).toThrow(
        AllocationInputError,
      );
    }
  });

  it('accepts an "off" first level (0 bits) and counts it as 0 bits', () => {
    const layers = [tiers('a'), tiers('b')];
    const s = lambdaAdjust(layers, new Float32Array([1, 2]), { up: 0, down: 0, beta: 0.25, levelTable: [0, 3, 4, 5] });
    expect(s.levelTable).toEqual([0, 3, 4, 5]);
    const off = s.layers.flatMap((l) => Array.from(l.levels)).filter((v) => v === 0).length;
    expect(off).toBeGreaterThan(0);
    const rowLengths = s.layers.map(() => 1);
    const bits = s.layers.flatMap((l) => Array.from(l.levels, (v) => [0, 3, 4, 5][v]!));
    expect(averageBits(s, rowLengths)).toBeCloseTo(bits.reduce((a, b) => a + b, 0) / bits.length, 12);
  });
});

describe('allocateStrategy', () => {
  it('chains scores, Γ and Λ', () => {
    // Layer "q": 4 channels, rowLength 1. alphaF = 0 everywhere -> softmax 1/4 each,
    // alphaE = [1, 4, 3, 2] -> scores [0.25, 1, 0.75, 0.5] -> order ch1, ch2, ch3, ch0.
    // beta 0.25 -> k = 1: tiers [0, 2, 1, 0].
    // Layer "k": alphaF = [0, 0, 0, ln 9], alphaE all 1 -> ch3 top (9/12), then ties -> ch0.
    // tiers [1, 0, 0, 2]. alphaL = [0.2, 0.8]: "k" up, "q" down.
    const s = allocateStrategy({
      layers: [
        {
          name: 'q',
          alphaF: new Float32Array(4),
          alphaE: new Float32Array([1, 4, 3, 2]),
          outChannels: 4,
          rowLength: 1,
        },
        {
          name: 'k',
          alphaF: new Float32Array([0, 0, 0, Math.log(9)]),
          alphaE: new Float32Array(4).fill(1),
          outChannels: 4,
          rowLength: 1,
        },
      ],
      alphaL: new Float32Array([0.2, 0.8]),
      beta: 0.25,
      lambda: { up: 1, down: 1 },
    });
    // q: base [0, 3, 1, 0] down -> [0, 2, 0, 0]; k: base [1, 0, 0, 3] up -> [2, 1, 1, 3]
    expect(Array.from(s.layers[0]!.levels)).toEqual([0, 2, 0, 0]);
    expect(Array.from(s.layers[1]!.levels)).toEqual([2, 1, 1, 3]);
    expect(s.levelTable).toEqual([2, 4, 6, 8]);
  });

  it('defaults Λ to beta as a fraction of layers each way', () => {
    // 8 layers, beta 0.125 -> 1 up (layer 7, largest alpha_L) and 1 down (layer 0)
    const layers = Array.from({ length: 8 }, (_, l) => ({
      name: `l${l}`,
      alphaF: new Float32Array(8),
      alphaE: Float32Array.from({ length: 8 }, (_, j) => 8 - j),
      outChannels: 8,
      rowLength: 1,
    }));
    const s = allocateStrategy({ layers, alphaL: Float32Array.from({ length: 8 }, (_, l) => l), beta: 0.125 });
    // k = 1: tiers [2, 1, 0, ...] -> base levels [3, 1, 0, 0, 0, 0, 0, 0]
    expect(Array.from(s.layers[7]!.levels)).toEqual([3, 2, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(s.layers[0]!.levels)).toEqual([2, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(s.layers[3]!.levels)).toEqual([3, 1, 0, 0, 0, 0, 0, 0]);
  });
});

describe('averageBits', () => {
  const s: Strategy = {
    levelTable: [2, 4, 6, 8],
    beta: 0.125,
    layers: [
      { name: 'a', levels: new Uint8Array([3, 0]) },
      { name: 'b', levels: new Uint8Array([1]) },
    ],
  };

  it('weights each channel by its row length', () => {
    // (8*2 + 2*2 + 4*6) / (2 + 2 + 6) = 44 / 10
    expect(averageBits(s, [2, 6])).toBeCloseTo(4.4, 12);
  });

  it('channelAverageBits is the plain channel mean', () => {
    // (8 + 2 + 4) / 3
    expect(channelAverageBits(s)).toBeCloseTo(14 / 3, 12);
  });

  it('rejects mismatched row lengths', () => {
    expect(() => averageBits(s, [2])).toThrow(AllocationInputError);
    expect(() => averageBits(s, [2, 0])).toThrow(AllocationInputError);
  });
});
