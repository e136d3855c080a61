import { describe, expect, it } from 'vitest';
import { historyShareAtK, MetricsInputError, rankOf } from '../../src/core/metrics.ts';
import { uniformU32 } from '../../src/core/prng.ts';
import { evaluateUsers } from '../../src/model/evaluate.ts';

/** Reference: sort by score, history items first among equal scores, count history in the first k. */
function bySorting(scores: readonly number[], history: ReadonlySet<number>, k: number): number {
  const order = scores.map((s, i) => i).sort((a, b) => scores[b]! - scores[a]! || Number(history.has(b)) - Number(history.has(a)));
  const slots = Math.min(k, scores.length);
  return order.slice(0, slots).filter((i) => history.has(i)).length / slots;
}

describe('historyShareAtK', () => {
  it('counts the history items among the k best scores', () => {
    const scores = [0.9, 0.1, 0.8, 0.7, 0.2];
    // top-3: items 0 (0.9), 2 (0.8), 3 (0.7); history 0 and 3 -> 2 of 3
    expect(historyShareAtK(scores, new Set([0, 3]), 3)).toBeCloseTo(2 / 3, 15);
    expect(historyShareAtK(new Float32Array(scores), new Uint8Array([1, 0, 0, 1, 0]), 3)).toBeCloseTo(2 / 3, 15);
    // history below the cut-off does not count
    expect(historyShareAtK(scores, new Set([1, 4]), 3)).toBe(0);
    expect(historyShareAtK(scores, new Set([1, 4]), 5)).toBe(0.4);
    expect(historyShareAtK(scores, new Set(), 2)).toBe(0);
    expect(historyShareAtK(scores, new Set([0, 2]), 2)).toBe(1);
  });

  it('gives tied slots at the cut-off to history items, wherever they sit in the array', () => {
    // item 3 (0.9) first; one slot left for the three items tied at 0.5
    expect(historyShareAtK([0.5, 0.5, 0.5, 0.9], new Set([2]), 2)).toBe(0.5);
    expect(historyShareAtK([0.5, 0.5, 0.5, 0.9], new Set([0]), 2)).toBe(0.5);
    // two tied history items, one slot: still 1 of 2; two slots: both
    expect(historyShareAtK([0.5, 0.5, 0.5, 0.9], new Set([0, 1]), 2)).toBe(0.5);
    expect(historyShareAtK([0.5, 0.5, 0.5, 0.9], new Set([0, 1]), 3)).toBeCloseTo(2 / 3, 15);
    // the history item above the tie and one in it
    expect(historyShareAtK([0.5, 0.5, 0.5, 0.9], new Set([3, 1]), 2)).toBe(1);
    // all scores equal: every history item up to k
    expect(historyShareAtK(new Float32Array(20), new Set([3]), 10)).toBe(0.1);
    expect(historyShareAtK(new Float32Array(20), new Set([0, 5, 7, 9, 11, 13, 15, 17, 19, 2, 4, 6]), 10)).toBe(1);
    // a tie above the cut-off changes nothing: both 0.9 items are in
    expect(historyShareAtK([0.9, 0.9, 0.1, 0.5], new Set([1, 2]), 3)).toBeCloseTo(1 / 3, 15);
  });

  it('matches a history-first sort on random scores with many ties, and agrees with rankOf', () => {
    let counter = 0;
    const rand = () => uniformU32(7, 0, counter++) / 2 ** 32;
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + Math.floor(rand() * 30);
      const scores = Array.from({ length: n }, () => Math.floor(rand() * 5)); // few distinct values: ties everywhere
      const history = new Set(Array.from({ length: n }, (_, i) => i).filter(() => rand() < 0.3));
      const k = 1 + Math.floor(rand() * 12);
      const share = historyShareAtK(scores, history, k);
      expect(share).toBeCloseTo(bySorting(scores, history, k), 12);
      // A non-history target inside the unmasked top-k has every history item ranked above it
      // (unmasked rank - masked rank of the target) inside that top-k too.
      for (let t = 0; t < n; t++) {
        if (history.has(t)) continue;
        const r = rankOf(scores, t);
        if (r < k) expect(share * Math.min(k, n)).toBeGreaterThanOrEqual(r - rankOf(scores, t, history) - 1e-9);
      }
    }
  });

  it('uses the whole catalogue when it is smaller than k', () => {
    expect(historyShareAtK([3, 2, 1], new Set([0]), 10)).toBeCloseTo(1 / 3, 15);
    expect(historyShareAtK([-Infinity, 1], new Set([0]), 10)).toBe(0.5);
    expect(historyShareAtK([-Infinity, 1], new Set([0]), 1)).toBe(0);
  });

  it('rejects bad cut-offs, masks, NaN and empty scores', () => {
    expect(() => historyShareAtK([1, 2], new Set(), 0)).toThrow(MetricsInputError);
    expect(() => historyShareAtK([1, 2], new Set(), 1.5)).toThrow(MetricsInputError);
    expect(() => historyShareAtK([1, 2], new Uint8Array(3), 1)).toThrow(MetricsInputError);
    expect(() => historyShareAtK([1, NaN], new Set(), 1)).toThrow(MetricsInputError);
    expect(() => historyShareAtK([], new Set(), 1)).toThrow(MetricsInputError);
  });
});

describe('evaluateUsers: historyShare10', () => {
  it('is the mean over evaluated users of the history share of the unmasked top-10', () => {
    // 12 items scored by id (item 12 best); column j = item j + 1.
    const numItems = 12;
    const byId = (users: readonly number[]) => {
      const out = new Float32Array(users.length * numItems);
      users.forEach((_, k) => {
        for (let j = 0; j < numItems; j++) out[k * numItems + j] = j + 1;
      });
      return out;
    };
    const set = {
      // user 0: 12, 11 and 3 are in the top-10 (items 3..12) -> 0.3; user 1: item 1 is not -> 0;
      // user 2 has no target and is skipped.
      histories: [Int32Array.from([0, 12, 11, 3]), Int32Array.from([1]), Int32Array.from([12])],
      targets: Int32Array.from([5, 2, 0]),
    };
    const r = evaluateUsers(set, numItems, byId);
    expect(r.users).toBe(2);
    expect(r.historyShare10).toBeCloseTo(0.15, 15);
    // the masked view is unaffected: user 0's target 5 has 12..6 above it minus 12 and 11 -> rank 5
    expect(r.masked.hr5).toBe(0);
    // unmasked ranks 7 (items 6..12 above 5) and 10 (items 3..12 above 2, outside the top-10)
    expect(r.unmasked.ndcg10).toBeCloseTo(1 / Math.log2(9) / 2, 12);
  });

  it('counts tied history items in the top-10 as rankOf counts them against the target', () => {
    const numItems = 15;
    const flat = (users: readonly number[]) => new Float32Array(users.length * numItems);
    const r = evaluateUsers({ histories: [Int32Array.from([1, 2, 3])], targets: Int32Array.from([4]) }, numItems, flat);
    expect(r.historyShare10).toBeCloseTo(0.3, 15);
    expect(r.unmasked.hr10).toBe(0); // rank 14: everything ties and counts against the target
  });
});
