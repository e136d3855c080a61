import { describe, expect, it } from 'vitest';
import {
  ranksBefore,
  scoreCandidates,
  scoreCandidatesWithEmbeddings,
  topK,
  type ScoringTable,
} from '../../src/core/forward/index.ts';
import { codeOf } from '../fixtures/forward-error-code.ts';
import { mulberry32 } from '../fixtures/mulberry32.ts';

/** Reference order: a full sort by (score desc, NaN last, index asc). */
function sortedOrder(scores: ArrayLike<number>): number[] {
  const key = (i: number) => (Number.isNaN(scores[i]) ? -Infinity : scores[i]!);
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => {
    const na = Number.isNaN(scores[a]);
    const nb = Number.isNaN(scores[b]);
    if (na !== nb) return na ? 1 : -1;
    return key(b) - key(a) || a - b;
  });
}

describe('topK', () => {
  it('breaks ties by lower candidate index', () => {
    const s = Float32Array.from([1, 3, 3, 2, 3]);
    expect(Array.from(topK(s, 3))).toEqual([1, 2, 4]);
    expect(Array.from(topK(s, 5))).toEqual([1, 2, 4, 3, 0]);
    expect(Array.from(topK(s, 1))).toEqual([1]);
  });

  it('treats +0 and -0 as equal and ranks NaN below -Infinity', () => {
    expect(Array.from(topK([-0, 0], 2))).toEqual([0, 1]);
    expect(Array.from(topK([0, -0], 2))).toEqual([0, 1]);
    expect(Array.from(topK([NaN, -Infinity, 1, NaN, Infinity], 5))).toEqual([4, 2, 1, 0, 3]);
    expect(ranksBefore([NaN, -Infinity], 1, 0)).toBe(true);
    expect(ranksBefore([NaN, -Infinity], 0, 1)).toBe(false);
  });

  it('clamps k to the number of scores and rejects a bad k', () => {
    expect(Array.from(topK([2, 1], 10))).toEqual([0, 1]);
    expect(topK([2, 1], 0).length).toBe(0);
    expect(topK([], 3).length).toBe(0);
    expect(codeOf(() => topK([1], -1))).toBe('FORWARD_BAD_OPTION');
    expect(codeOf(() => topK([1], 1.5))).toBe('FORWARD_BAD_OPTION');
  });

  it('equals a full sort on random scores with many ties, for every k', () => {
    const rand = mulberry32(5);
    for (const n of [1, 7, 100, 333]) {
      // Few distinct values, so most comparisons are ties.
      const s = Float32Array.from({ length: n }, () => Math.floor(rand() * 6) - 2);
      const ref = sortedOrder(s);
      for (const k of [1, 2, 5, Math.floor(n / 2), n]) expect(Array.from(topK(s, k))).toEqual(ref.slice(0, k));
    }
  });
});

describe('scoreCandidates', () => {
  // 3 items of dim 2; row 0 is padding.
  const table: ScoringTable = {
    dim: 2,
    numItems: 3,
    embeddings: Float32Array.from([9, 9, 1, 0, 0, 1, 1, -1]),
    bias: Float32Array.from([100, 0.5, -0.5, 0]),
  };

  it('is rep . embedding + bias in candidate order', () => {
    const rep = Float32Array.from([2, 3]);
    expect(Array.from(scoreCandidates(rep, table, [3, 1, 2, 1]))).toEqual([-1, 2.5, 2.5, 2.5]);
    expect(Array.from(scoreCandidates(rep, { ...table, bias: null }, [1, 2, 3]))).toEqual([2, 3, -1]);
    const out = new Float32Array(2);
    expect(scoreCandidates(rep, table, [2, 3], out)).toBe(out);
    expect(Array.from(out)).toEqual([2.5, -1]);
  });

  it('rejects padding, out-of-range and fractional ids, and a wrong-length rep', () => {
    const rep = Float32Array.from([2, 3]);
    expect(codeOf(() => scoreCandidates(rep, table, [0]))).toBe('FORWARD_BAD_ITEM');
    expect(codeOf(() => scoreCandidates(rep, table, [4]))).toBe('FORWARD_BAD_ITEM');
    expect(codeOf(() => scoreCandidates(rep, table, [1.5]))).toBe('FORWARD_BAD_ITEM');
    expect(codeOf(() => scoreCandidates(new Float32Array(3), table, [1]))).toBe('FORWARD_BAD_OPTION');
    expect(codeOf(() => scoreCandidates(rep, table, [1], new Float32Array(2)))).toBe('FORWARD_BAD_OPTION');
  });

  it('with shop-sent embeddings equals table scoring of the same rows', () => {
    const rep = Float32Array.from([0.25, -1.5]);
    const ids = [2, 3, 1];
    const candidates = ids.map((id) => ({
      id: `sku-${id}`,
      embedding: Array.from(table.embeddings.subarray(id * 2, id * 2 + 2)),
      bias: table.bias![id]!,
    }));
    expect(Array.from(scoreCandidatesWithEmbeddings(rep, candidates))).toEqual(
      Array.from(scoreCandidates(rep, table, ids)),
    );
    // Without bias: the plain dot product.
    expect(Array.from(scoreCandidatesWithEmbeddings(rep, [{ id: 7, embedding: [4, 1] }]))).toEqual([-0.5]);
    // Ranked with the same tie-break.
    const s = scoreCandidatesWithEmbeddings(rep, [
      { id: 'a', embedding: [0, 0] },
      { id: 'b', embedding: [4, 0] },
      { id: 'c', embedding: [0, 0] },
    ]);
    expect(Array.from(topK(s, 3))).toEqual([1, 0, 2]);
  });

  it('rejects embeddings of the wrong length or with non-finite values', () => {
    const rep = Float32Array.from([1, 1]);
    expect(codeOf(() => scoreCandidatesWithEmbeddings(rep, [{ id: 'x', embedding: [1, 2, 3] }]))).toBe(
      'FORWARD_BAD_CANDIDATE',
    );
    expect(codeOf(() => scoreCandidatesWithEmbeddings(rep, [{ id: 'x', embedding: [1, NaN] }]))).toBe(
      'FORWARD_BAD_CANDIDATE',
    );
    expect(codeOf(() => scoreCandidatesWithEmbeddings(rep, [{ id: 'x', embedding: [1, 1], bias: Infinity }]))).toBe(
      'FORWARD_BAD_CANDIDATE',
    );
  });
});
