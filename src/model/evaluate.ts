/**
 * Full-ranking evaluation: each user's target is ranked against every item, once with the
 * user's history left rankable ("unmasked") and once with the history removed ("masked").
 * Ranks and means come from src/core/metrics (ties count against the target). Beside them, the
 * share of the unmasked top-10 that is the user's own history: the slots the unmasked protocol
 * spends on items the user already has.
 */
import * as tf from '@tensorflow/tfjs';
import { historyShareAtK, RankingMetrics, rankOf, type RankingSummary } from '../core/metrics.ts';
import type { SplitDataset } from '../data/types.ts';
import { writeLastWindow } from './batches.ts';

/** Per user: the input history and the held-out target item (0 = skip the user). */
export interface EvalSet {
  readonly histories: readonly ArrayLike<number>[];
  readonly targets: ArrayLike<number>;
}

export function validationSet(ds: SplitDataset): EvalSet {
  return { histories: ds.train, targets: ds.valid };
}

/** Test input = training sequence followed by the validation item. */
export function testSet(ds: SplitDataset): EvalSet {
  const histories = ds.train.map((t, u) => {
    const h = new Int32Array(t.length + 1);
    h.set(t);
    h[t.length] = ds.valid[u]!;
    return h;
  });
  return { histories, targets: ds.test };
}

export interface Metrics {
  readonly ndcg5: number;
  readonly ndcg10: number;
  readonly hr5: number;
  readonly hr10: number;
  readonly mrr: number;
}

export interface EvalResult {
  readonly users: number;
  readonly unmasked: Metrics;
  readonly masked: Metrics;
  /** Mean over users of the fraction of the unmasked top-10 that are history items (masked: 0 by construction). */
  readonly historyShare10: number;
}

/** Scores [B, numItems] for windows seq [B, inputLen] of users (column j = item j + 1). */
export type ScoreFn = (seq: tf.Tensor2D, users: tf.Tensor1D) => tf.Tensor2D;

function toMetrics(s: RankingSummary): Metrics {
  return { ndcg5: s.ndcg[5]!, ndcg10: s.ndcg[10]!, hr5: s.hr[5]!, hr10: s.hr[10]!, mrr: s.mrr };
}

/** Scores [users.length * numItems] (row k = users[k], column j = item j + 1). */
export type UserScorer = (users: readonly number[]) => Float32Array;

/** Per evaluated user (those with a target, in user order): the target's 0-based rank, unmasked and masked. */
export interface UserRanks {
  readonly users: Int32Array;
  readonly unmasked: Int32Array;
  readonly masked: Int32Array;
}

/**
 * Ranks every user's target against all items, unmasked and masked, scoring users in batches of
 * similar history length (a backbone that trims left padding then runs short windows for short
 * histories), and hands each user's score row, ranks and history mask (set only during the call)
 * to `visit`, in that batch order. Returns how many users were ranked.
 */
function rankEach(
  set: EvalSet,
  numItems: number,
  score: UserScorer,
  batchSize: number,
  visit: (user: number, row: Float32Array, ranks: { unmasked: number; masked: number }, history: Uint8Array) => void,
): number {
  const users: number[] = [];
  for (let u = 0; u < set.histories.length; u++) if (set.targets[u]! > 0) users.push(u);
  // Stable: equal lengths keep user order.
  const byLength = [...users].sort((a, b) => set.histories[a]!.length - set.histories[b]!.length);
  const mask = new Uint8Array(numItems);
  for (let start = 0; start < byLength.length; start += batchSize) {
    const batch = byLength.slice(start, start + batchSize);
    const scores = score(batch);
    batch.forEach((u, k) => {
      const row = scores.subarray(k * numItems, (k + 1) * numItems);
      const target = set.targets[u]! - 1;
      const h = set.histories[u]!;
      for (let i = 0; i < h.length; i++) if (h[i]! > 0) mask[h[i]! - 1] = 1;
      visit(u, row, { unmasked: rankOf(row, target), masked: rankOf(row, target, mask) }, mask);
      for (let i = 0; i < h.length; i++) if (h[i]! > 0) mask[h[i]! - 1] = 0;
    });
  }
  return users.length;
}

/**
 * Full-ranking metrics of every user with a target, unmasked and masked, and each user's ranks
 * behind them, from one scoring pass. Both the Base loop (window scorer) and CHORD (whole-history
 * scorer) evaluate through this. Means are summed in user order, whatever order users were scored in.
 */
export function evaluateAndRankUsers(set: EvalSet, numItems: number, score: UserScorer, batchSize = 128): { result: EvalResult; ranks: UserRanks } {
  const numUsers = set.histories.length;
  const unmaskedOf = new Int32Array(numUsers).fill(-1);
  const maskedOf = new Int32Array(numUsers);
  const shareOf = new Float64Array(numUsers);
  const n = rankEach(set, numItems, score, batchSize, (u, row, ranks, history) => {
    unmaskedOf[u] = ranks.unmasked;
    maskedOf[u] = ranks.masked;
    shareOf[u] = historyShareAtK(row, history, 10);
  });
  const unmasked = new RankingMetrics([5, 10]);
  const masked = new RankingMetrics([5, 10]);
  const users: number[] = [];
  let historyShareSum = 0;
  for (let u = 0; u < numUsers; u++) {
    if (unmaskedOf[u]! < 0) continue;
    unmasked.add(unmaskedOf[u]!);
    masked.add(maskedOf[u]!);
    historyShareSum += shareOf[u]!;
    users.push(u);
  }
  return {
    result: {
      users: n,
      unmasked: toMetrics(unmasked.summary()),
      masked: toMetrics(masked.summary()),
      historyShare10: historyShareSum / n,
    },
    ranks: {
      users: Int32Array.from(users),
      unmasked: Int32Array.from(users, (u) => unmaskedOf[u]!),
      masked: Int32Array.from(users, (u) => maskedOf[u]!),
    },
  };
}

/** Full-ranking metrics of every user with a target, unmasked and masked (evaluateAndRankUsers' means). */
export function evaluateUsers(set: EvalSet, numItems: number, score: UserScorer, batchSize = 128): EvalResult {
  return evaluateAndRankUsers(set, numItems, score, batchSize).result;
}

/**
 * Each user's ranks, as evaluateUsers computes them: for paired comparisons of two models on the
 * same users, where the means alone cannot say whether a difference is more than noise.
 */
export function rankUsers(set: EvalSet, numItems: number, score: UserScorer, batchSize = 128): UserRanks {
  return evaluateAndRankUsers(set, numItems, score, batchSize).ranks;
}

/**
 * The values of the score tensor `compute` builds, every intermediate tensor disposed. The copy
 * leaves tf.tidy as a closure variable: a typed array returned from tidy is walked element by
 * element in search of tensors (about a second for 256 users x 12k items).
 */
export function scoresToHost(compute: () => tf.Tensor): Float32Array {
  let out: Float32Array | undefined;
  tf.tidy(() => {
    out = compute().dataSync() as Float32Array;
  });
  return out!;
}

export function evaluateRanking(
  score: ScoreFn,
  numItems: number,
  inputLen: number,
  set: EvalSet,
  batchSize = 256,
): EvalResult {
  const windowScorer: UserScorer = (batch) => {
    const seq = new Int32Array(batch.length * inputLen);
    batch.forEach((u, k) => writeLastWindow(set.histories[u]!, inputLen, seq, k * inputLen));
    return scoresToHost(() => score(tf.tensor2d(seq, [batch.length, inputLen], 'int32'), tf.tensor1d(Array.from(batch), 'int32')));
  };
  return evaluateUsers(set, numItems, windowScorer, batchSize);
}
