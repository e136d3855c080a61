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

/** The users of `set` with a target, in user order. */
export function usersWithTarget(set: EvalSet): number[] {
  const users: number[] = [];
  for (let u = 0; u < set.histories.length; u++) if (set.targets[u]! > 0) users.push(u);
  return users;
}

/**
 * Per ranked user, in user order: the target's 0-based rank unmasked and masked, and the share of
 * the unmasked top-10 that is the user's history. A part of an evaluation that can be computed
 * over any subset of the users and merged (summarizeUserRows): the same numbers whatever the split.
 */
export interface UserRankRows {
  readonly users: Int32Array;
  readonly unmasked: Int32Array;
  readonly masked: Int32Array;
  readonly historyShare10: Float64Array;
}

/**
 * Ranks the target of each of `users` (default: every user with a target) against all items,
 * unmasked and masked, scoring them in batches of similar history length (a backbone that trims
 * left padding then runs short windows for short histories).
 */
export function rankUserRows(set: EvalSet, numItems: number, score: UserScorer, batchSize = 128, users: readonly number[] = usersWithTarget(set)): UserRankRows {
  const inOrder = [...users].sort((a, b) => a - b);
  for (const u of inOrder) {
    if (!(set.targets[u]! > 0)) throw new RangeError(`user ${u} has no target to rank`);
  }
  const slot = new Map(inOrder.map((u, i) => [u, i]));
  const rows = {
    users: Int32Array.from(inOrder),
    unmasked: new Int32Array(inOrder.length),
    masked: new Int32Array(inOrder.length),
    historyShare10: new Float64Array(inOrder.length),
  };
  // Stable: equal lengths keep user order.
  const byLength = [...inOrder].sort((a, b) => set.histories[a]!.length - set.histories[b]!.length);
  const mask = new Uint8Array(numItems);
  for (let start = 0; start < byLength.length; start += batchSize) {
    const batch = byLength.slice(start, start + batchSize);
    const scores = score(batch);
    batch.forEach((u, k) => {
      const row = scores.subarray(k * numItems, (k + 1) * numItems);
      const target = set.targets[u]! - 1;
      const h = set.histories[u]!;
      for (let i = 0; i < h.length; i++) if (h[i]! > 0) mask[h[i]! - 1] = 1;
      const i = slot.get(u)!;
      rows.unmasked[i] = rankOf(row, target);
      rows.masked[i] = rankOf(row, target, mask);
      rows.historyShare10[i] = historyShareAtK(row, mask, 10);
      for (let j = 0; j < h.length; j++) if (h[j]! > 0) mask[h[j]! - 1] = 0;
    });
  }
  return rows;
}

/**
 * The metrics and per-user ranks of parts of one evaluation (disjoint users), merged in user
 * order: means are summed in user order whatever the split, so they do not depend on it.
 */
export function summarizeUserRows(parts: readonly UserRankRows[]): { result: EvalResult; ranks: UserRanks } {
  const n = parts.reduce((a, p) => a + p.users.length, 0);
  const order: Array<[part: number, row: number]> = [];
  parts.forEach((p, k) => p.users.forEach((_, i) => order.push([k, i])));
  order.sort((a, b) => parts[a[0]]!.users[a[1]]! - parts[b[0]]!.users[b[1]]!);
  const unmasked = new RankingMetrics([5, 10]);
  const masked = new RankingMetrics([5, 10]);
  const ranks = { users: new Int32Array(n), unmasked: new Int32Array(n), masked: new Int32Array(n) };
  let historyShareSum = 0;
  order.forEach(([k, i], j) => {
    const p = parts[k]!;
    if (j > 0 && p.users[i] === ranks.users[j - 1]) throw new RangeError(`user ${p.users[i]} is in two parts of one evaluation`);
    ranks.users[j] = p.users[i]!;
    ranks.unmasked[j] = p.unmasked[i]!;
    ranks.masked[j] = p.masked[i]!;
    unmasked.add(p.unmasked[i]!);
    masked.add(p.masked[i]!);
    historyShareSum += p.historyShare10[i]!;
  });
  return {
    result: {
      users: n,
      unmasked: toMetrics(unmasked.summary()),
      masked: toMetrics(masked.summary()),
      historyShare10: historyShareSum / n,
    },
    ranks,
  };
}

/**
 * Full-ranking metrics of every user with a target, unmasked and masked, and each user's ranks
 * behind them, from one scoring pass. Both the Base loop (window scorer) and CHORD (whole-history
 * scorer) evaluate through this.
 */
export function evaluateAndRankUsers(set: EvalSet, numItems: number, score: UserScorer, batchSize = 128): { result: EvalResult; ranks: UserRanks } {
  return summarizeUserRows([rankUserRows(set, numItems, score, batchSize)]);
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
