import { describe, expect, it } from 'vitest';
import {
  MetricsInputError,
  RankingMetrics,
  evaluateFullRanking,
  evaluateSampled,
  hitAtK,
  mrr,
  ndcgAtK,
  rankOf,
  sampledRank,
} from '../../src/core/metrics.ts';

describe('rankOf', () => {
  it('counts competitors scoring above the target', () => {
    // target 0.5 (item 2); above it: item 1 (0.9), item 3 (0.9) -> rank 2
    expect(rankOf([0.1, 0.9, 0.5, 0.9], 2)).toBe(2);
    expect(rankOf(new Float32Array([0.1, 0.9, 0.5, 0.9]), 1)).toBe(1); // item 3 ties at 0.9
    expect(rankOf([3, 2, 1], 0)).toBe(0);
  });

  it('breaks ties against the target', () => {
    // items 0 and 2 tie with the target (0.5) -> both count -> rank 2, whatever the position
    expect(rankOf([0.5, 0.5, 0.5, 0.2], 1)).toBe(2);
    expect(rankOf([0.5, 0.5, 0.5, 0.2], 0)).toBe(2);
    // all equal: worst rank n - 1
    expect(rankOf(new Float32Array(10), 4)).toBe(9);
    expect(rankOf([0.5, 0.5, 0.5, 0.2], 3)).toBe(3);
  });

  it('leaves out excluded items, given as a set or a mask', () => {
    const scores = [0.9, 0.8, 0.3, 0.7];
    // target item 2 (0.3): 0.9, 0.8, 0.7 above -> 3
    expect(rankOf(scores, 2)).toBe(3);
    // exclude items 0 and 1 -> only item 3 above -> 1
    expect(rankOf(scores, 2, new Set([0, 1]))).toBe(1);
    // mask items 0 and 3 -> only item 1 above -> 1
    expect(rankOf(scores, 2, new Uint8Array([1, 0, 0, 1]))).toBe(1);
    // the target is ranked even if the mask marks it (repeat purchase)
    expect(rankOf(scores, 2, new Uint8Array([0, 0, 1, 0]))).toBe(3);
  });

  it('rejects bad targets, masks and NaN scores', () => {
    expect(() => rankOf([1, 2], 2)).toThrow(MetricsInputError);
    expect(() => rankOf([1, 2], -1)).toThrow(MetricsInputError);
    expect(() => rankOf([1, 2], 0, new Uint8Array(3))).toThrow(MetricsInputError);
    expect(() => rankOf([NaN, 2], 0)).toThrow(MetricsInputError);
    expect(() => rankOf([1, NaN], 0)).toThrow(MetricsInputError);
  });
});

describe('per-rank metrics', () => {
  it('HR@K is 1 inside the cut-off', () => {
    expect(hitAtK(0, 1)).toBe(1);
    expect(hitAtK(4, 5)).toBe(1);
    expect(hitAtK(5, 5)).toBe(0);
  });

  it('NDCG@K is 1/log2(rank + 2) inside the cut-off', () => {
    expect(ndcgAtK(0, 5)).toBe(1);
    expect(ndcgAtK(1, 5)).toBeCloseTo(0.6309297535714575, 15); // 1 / log2(3)
    expect(ndcgAtK(2, 5)).toBe(0.5); // 1 / log2(4)
    expect(ndcgAtK(6, 10)).toBeCloseTo(1 / 3, 15); // 1 / log2(8)
    expect(ndcgAtK(5, 5)).toBe(0);
  });

  it('MRR is 1/(rank + 1)', () => {
    expect(mrr(0)).toBe(1);
    expect(mrr(3)).toBe(0.25);
  });

  it('rejects non-integer ranks and cut-offs', () => {
    expect(() => hitAtK(-1, 5)).toThrow(MetricsInputError);
    expect(() => ndcgAtK(1.5, 5)).toThrow(MetricsInputError);
    expect(() => ndcgAtK(1, 0)).toThrow(MetricsInputError);
    expect(() => mrr(NaN)).toThrow(MetricsInputError);
  });
});

describe('evaluateFullRanking', () => {
  it('averages over users with ties and history masks', () => {
    const scores = [
      // u0: target 0 has the top score -> rank 0
      [0.9, 0.1, 0.4, 0.3],
      // u1: target 0 (0.3): item 1 above, item 3 ties -> rank 2
      new Float32Array([0.3, 0.9, 0.2, 0.3, 0.1]),
      // u2: target 0 (0.1): six items above -> 6; history {1, 2} masked -> 4
      [0.1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.05],
    ];
    const s = evaluateFullRanking(scores, [0, 0, 0], { k: [3, 1], mask: [undefined, undefined, new Set([1, 2])] });
    // ranks 0, 2, 4
    expect(s.users).toBe(3);
    expect(s.hr[1]).toBeCloseTo(1 / 3, 15); // (1 + 0 + 0) / 3
    expect(s.hr[3]).toBeCloseTo(2 / 3, 15); // (1 + 1 + 0) / 3
    expect(s.ndcg[1]).toBeCloseTo(1 / 3, 15); // (1 + 0 + 0) / 3
    expect(s.ndcg[3]).toBeCloseTo(0.5, 15); // (1 + 1/log2(4) + 0) / 3 = 1.5 / 3
    expect(s.mrr).toBeCloseTo(23 / 45, 15); // (1 + 1/3 + 1/5) / 3 = (23/15) / 3
  });

  it('rejects mismatched inputs and an empty evaluation', () => {
    expect(() => evaluateFullRanking([[1, 2]], [0, 1], { k: [1] })).toThrow(MetricsInputError);
    expect(() => evaluateFullRanking([[1, 2]], [0], { k: [1], mask: [] })).toThrow(MetricsInputError);
    expect(() => evaluateFullRanking([], [], { k: [1] })).toThrow(MetricsInputError);
    expect(() => evaluateFullRanking([[1, 2]], [0], { k: [] })).toThrow(MetricsInputError);
  });
});

describe('evaluateSampled', () => {
  it('ranks the target against sampled negatives, ties against the target', () => {
    // negatives >= 0.5: 0.9 and the tie 0.5 -> rank 2
    const r = evaluateSampled(0.5, [0.9, 0.5, 0.1, 0.2], [5, 1, 2]);
    expect(r.rank).toBe(2);
    expect(r.hr).toEqual({ 1: 0, 2: 0, 5: 1 });
    expect(r.ndcg[5]).toBe(0.5); // 1 / log2(2 + 2)
    expect(r.ndcg[2]).toBe(0);
    expect(r.mrr).toBeCloseTo(1 / 3, 15);
    expect(sampledRank(1, new Float32Array([0.1, 0.2]))).toBe(0);
    expect(() => sampledRank(NaN, [0])).toThrow(MetricsInputError);
  });
});

describe('RankingMetrics', () => {
  it('streams means and deduplicates and sorts cut-offs', () => {
    const m = new RankingMetrics([10, 5, 5]);
    expect(m.ks).toEqual([5, 10]);
    // ranks 0, 7, 20
    // HR@5 = 1/3, HR@10 = 2/3; NDCG@10 = (1 + 1/log2(9)) / 3; MRR = (1 + 1/8 + 1/21) / 3
    for (const rank of [0, 7, 20]) m.add(rank);
    const s = m.summary();
    expect(s.users).toBe(3);
    expect(s.hr[5]).toBeCloseTo(1 / 3, 15);
    expect(s.hr[10]).toBeCloseTo(2 / 3, 15);
    expect(s.ndcg[5]).toBeCloseTo(1 / 3, 15);
    expect(s.ndcg[10]).toBeCloseTo((1 + 1 / Math.log2(9)) / 3, 15);
    expect(s.mrr).toBeCloseTo((1 + 1 / 8 + 1 / 21) / 3, 15);
  });

  it('refuses to summarise nothing and rejects bad ranks', () => {
    const m = new RankingMetrics([5]);
    expect(() => m.summary()).toThrow(MetricsInputError);
    expect(() => m.add(-1)).toThrow(MetricsInputError);
    expect(() => m.add(0.5)).toThrow(MetricsInputError);
    expect(m.users).toBe(0);
    expect(() => new RankingMetrics([0])).toThrow(MetricsInputError);
  });
});
