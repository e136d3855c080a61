import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SplitDataset } from '../../src/data/types.ts';
import { initBackend } from '../../src/model/backend.ts';
import { evaluateRanking, evaluateUsers, rankUsers, testSet, validationSet } from '../../src/model/evaluate.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

/**
 * A scorer that ranks item i by i (item 6 best) and records the windows it was given. Items
 * 1..6; column j is item j + 1.
 */
function byItemId(seen: number[][]) {
  return (seq: tf.Tensor2D): tf.Tensor2D => {
    seen.push(...(seq.arraySync() as number[][]));
    const b = seq.shape[0];
    return tf.tile(tf.tensor2d([[1, 2, 3, 4, 5, 6]]), [b, 1]) as tf.Tensor2D;
  };
}

describe('evaluateRanking', () => {
  it('ranks over all items, unmasked and with the history removed', () => {
    // user 0: target 4, history holds 5 and 6 (the two best) -> unmasked rank 2, masked rank 0.
    // user 1: target 1, history [2] -> unmasked rank 5, masked rank 4.
    const set = { histories: [Int32Array.from([6, 5]), Int32Array.from([2])], targets: Int32Array.from([4, 1]) };
    const seen: number[][] = [];
    const r = evaluateRanking(byItemId(seen), 6, 3, set);
    expect(r.users).toBe(2);
    expect(r.unmasked.hr5).toBeCloseTo(0.5, 10); // ranks 2 and 5
    expect(r.unmasked.ndcg10).toBeCloseTo((1 / Math.log2(4) + 1 / Math.log2(7)) / 2, 10);
    expect(r.masked.hr5).toBeCloseTo(1, 10); // ranks 0 and 4
    expect(r.masked.ndcg5).toBeCloseTo((1 + 1 / Math.log2(6)) / 2, 10);
    expect(r.masked.mrr).toBeCloseTo((1 + 1 / 5) / 2, 10);
    // Windows are the last inputLen items, left-padded; the shorter history is scored first.
    expect(seen).toEqual([[0, 0, 2], [0, 6, 5]]);
  });

  it('uses train as validation input and train + valid as test input', () => {
    const ds: SplitDataset = {
      numItems: 6,
      numUsers: 2,
      train: [Int32Array.from([1, 2, 3]), Int32Array.from([4])],
      valid: Int32Array.from([5, 6]),
      test: Int32Array.from([6, 1]),
      itemIds: ['[PAD]', '1', '2', '3', '4', '5', '6'],
      userIds: ['a', 'b'],
    };
    expect(validationSet(ds).histories.map((h) => Array.from(h))).toEqual([[1, 2, 3], [4]]);
    expect(testSet(ds).histories.map((h) => Array.from(h))).toEqual([[1, 2, 3, 5], [4, 6]]);
    const seen: number[][] = [];
    const r = evaluateRanking(byItemId(seen), 6, 2, testSet(ds));
    expect(seen).toEqual([[4, 6], [3, 5]]);
    // user 0: target 6 is best -> rank 0; user 1: target 1 is worst, history 4 and 6 masked -> rank 3.
    expect(r.masked.hr5).toBe(1);
    expect(r.unmasked.hr5).toBe(0.5);
  });
});

describe('rankUsers', () => {
  it('scores users shortest history first but returns ranks in user order', () => {
    // User u's row scores the target (item 1) u and every other item 2.5: users 0-2 rank it
    // last (5), users 3 and 4 first (0). Histories get shorter with the user id.
    const histories = [5, 4, 3, 2, 1].map((n) => Int32Array.from({ length: n }, () => 6));
    const set = { histories, targets: Int32Array.from([1, 1, 1, 1, 1]) };
    const order: number[] = [];
    const score = (users: readonly number[]) => {
      order.push(...users);
      const out = new Float32Array(users.length * 6).fill(2.5);
      users.forEach((u, k) => (out[k * 6] = u));
      return out;
    };
    const r = rankUsers(set, 6, score, 2);
    expect(order).toEqual([4, 3, 2, 1, 0]);
    expect(Array.from(r.users)).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(r.unmasked)).toEqual([5, 5, 5, 0, 0]);
  });


  it("gives each user's ranks behind evaluateUsers' means, skipping users without a target", () => {
    // Items 1..6 scored by id (item 6 best). user 0: target 4, history 6 5 -> ranks 2 / 0;
    // user 1: no target; user 2: target 1, history 2 -> ranks 5 / 4.
    const set = { histories: [Int32Array.from([6, 5]), Int32Array.from([3]), Int32Array.from([2])], targets: Int32Array.from([4, 0, 1]) };
    const score = (users: readonly number[]) => {
      const out = new Float32Array(users.length * 6);
      users.forEach((_, k) => out.set([1, 2, 3, 4, 5, 6], k * 6));
      return out;
    };
    // Batches of one: the ranks do not depend on how users are batched.
    const r = rankUsers(set, 6, score, 1);
    expect(Array.from(r.users)).toEqual([0, 2]);
    expect(Array.from(r.unmasked)).toEqual([2, 5]);
    expect(Array.from(r.masked)).toEqual([0, 4]);
    const m = evaluateUsers(set, 6, score);
    expect(m.users).toBe(2);
    expect(m.unmasked.ndcg10).toBe((1 / Math.log2(4) + 1 / Math.log2(7)) / 2);
    expect(m.masked.mrr).toBeCloseTo((1 + 1 / 5) / 2, 12);
  });
});
