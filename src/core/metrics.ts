/**
 * Ranking metrics for leave-one-out next-item evaluation: HR@K, NDCG@K and MRR, one relevant
 * item per user, and the share of a top-k taken by the user's own history (a diagnostic).
 *
 * Rank convention (0-based): rank = number of competing items whose score is strictly greater
 * than the target's PLUS the number of competing items whose score equals it. Ties are broken
 * against the target, the conservative choice: a model that scores everything equal gets the
 * worst rank instead of a lucky one, and the result does not depend on sort stability or on
 * where the target sits in the array (RecBole's topk-based ranking leaves ties to the kernel).
 * Competitors are all items except the target and the excluded ones (e.g. the user's history);
 * the target itself is always ranked even when the mask marks it, so repeat purchases count.
 * NaN scores are rejected: they order neither above nor below anything.
 */
import { ChordError } from './errors.ts';

/** Bad ranks, cut-offs, masks or scores handed to the metrics. */
export class MetricsInputError extends ChordError<'MetricsInputError'> {
  override readonly name = 'MetricsInputError';
  constructor(message: string) {
    super('METRICS_INPUT', message);
  }
}

export type Scores = Float32Array | Float64Array | readonly number[];
/** Items to leave out of the ranking: a set of item ids, or a mask with nonzero = excluded. */
export type Exclusion = ReadonlySet<number> | Uint8Array;

function isExcluded(exclude: Exclusion | undefined, item: number): boolean {
  if (exclude === undefined) return false;
  if (exclude instanceof Uint8Array) return exclude[item] !== 0;
  return exclude.has(item);
}

/** 0-based rank of `target` among `scores` (ties against the target, see module comment). */
export function rankOf(scores: Scores, target: number, exclude?: Exclusion): number {
  if (!Number.isInteger(target) || target < 0 || target >= scores.length) {
    throw new MetricsInputError(`target ${target} outside 0..${scores.length - 1}`);
  }
  if (exclude instanceof Uint8Array && exclude.length !== scores.length) {
    throw new MetricsInputError(`mask has ${exclude.length} entries for ${scores.length} items`);
  }
  const t = scores[target]!;
  if (Number.isNaN(t)) throw new MetricsInputError(`target score is NaN`);
  let rank = 0;
  for (let i = 0; i < scores.length; i++) {
    if (i === target) continue;
    const s = scores[i]!;
    if (Number.isNaN(s)) throw new MetricsInputError(`score of item ${i} is NaN`);
    if (s >= t && !isExcluded(exclude, i)) rank++;
  }
  return rank;
}

/** Rank of a target against sampled negatives: number of negatives scoring >= the target. */
export function sampledRank(targetScore: number, negativeScores: Scores): number {
  if (Number.isNaN(targetScore)) throw new MetricsInputError('target score is NaN');
  let rank = 0;
  for (let i = 0; i < negativeScores.length; i++) {
    const s = negativeScores[i]!;
    if (Number.isNaN(s)) throw new MetricsInputError(`negative score ${i} is NaN`);
    if (s >= targetScore) rank++;
  }
  return rank;
}

function checkRank(rank: number): void {
  if (!Number.isInteger(rank) || rank < 0) {
    throw new MetricsInputError(`rank must be a non-negative integer, got ${rank}`);
  }
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k <= 0) throw new MetricsInputError(`k must be a positive integer, got ${k}`);
}

export function hitAtK(rank: number, k: number): number {
  checkRank(rank);
  checkK(k);
  return rank < k ? 1 : 0;
}

/** With one relevant item the ideal DCG is 1, so NDCG@K = 1/log2(rank + 2) inside the cut-off. */
export function ndcgAtK(rank: number, k: number): number {
  checkRank(rank);
  checkK(k);
  return rank < k ? 1 / Math.log2(rank + 2) : 0;
}

export function mrr(rank: number): number {
  checkRank(rank);
  return 1 / (rank + 1);
}

/** Means over users; `hr[k]` and `ndcg[k]` for every requested cut-off. */
export interface RankingSummary {
  readonly users: number;
  readonly hr: Readonly<Record<number, number>>;
  readonly ndcg: Readonly<Record<number, number>>;
  readonly mrr: number;
}

/** Metrics of a single ranked target. */
export interface RankedTarget {
  readonly rank: number;
  readonly hr: Readonly<Record<number, number>>;
  readonly ndcg: Readonly<Record<number, number>>;
  readonly mrr: number;
}

function normaliseKs(ks: readonly number[]): number[] {
  if (ks.length === 0) throw new MetricsInputError('at least one cut-off k is required');
  ks.forEach(checkK);
  return [...new Set(ks)].sort((a, b) => a - b);
}

/** Streaming mean of HR@K, NDCG@K and MRR over added ranks. */
export class RankingMetrics {
  readonly ks: readonly number[];
  private readonly hitSums: Float64Array;
  private readonly ndcgSums: Float64Array;
  private mrrSum = 0;
  private count = 0;

  constructor(ks: readonly number[]) {
    this.ks = normaliseKs(ks);
    this.hitSums = new Float64Array(this.ks.length);
    this.ndcgSums = new Float64Array(this.ks.length);
  }

  add(rank: number): void {
    checkRank(rank);
    this.ks.forEach((k, i) => {
      this.hitSums[i]! += hitAtK(rank, k);
      this.ndcgSums[i]! += ndcgAtK(rank, k);
    });
    this.mrrSum += mrr(rank);
    this.count++;
  }

  get users(): number {
    return this.count;
  }

  summary(): RankingSummary {
    if (this.count === 0) throw new MetricsInputError('no ranks added: the means are undefined');
    const hr: Record<number, number> = {};
    const ndcg: Record<number, number> = {};
    this.ks.forEach((k, i) => {
      hr[k] = this.hitSums[i]! / this.count;
      ndcg[k] = this.ndcgSums[i]! / this.count;
    });
    return { users: this.count, hr, ndcg, mrr: this.mrrSum / this.count };
  }
}

export interface FullRankingOptions {
  readonly k: readonly number[];
  /** Per user, the items to leave out (typically the history); undefined entries mask nothing. */
  readonly mask?: readonly (Exclusion | undefined)[];
}

/** Mean metrics when each user's target is ranked against the whole catalogue. */
export function evaluateFullRanking(
  scoresPerUser: readonly Scores[],
  targets: readonly number[],
  opts: FullRankingOptions,
): RankingSummary {
  if (targets.length !== scoresPerUser.length) {
    throw new MetricsInputError(`${targets.length} targets for ${scoresPerUser.length} users`);
  }
  if (opts.mask !== undefined && opts.mask.length !== scoresPerUser.length) {
    throw new MetricsInputError(`${opts.mask.length} masks for ${scoresPerUser.length} users`);
  }
  const acc = new RankingMetrics(opts.k);
  scoresPerUser.forEach((scores, u) => {
    acc.add(rankOf(scores, targets[u]!, opts.mask?.[u]));
  });
  return acc.summary();
}

/** Metrics of one target ranked against sampled negatives (e.g. 1 positive + 100 negatives). */
export function evaluateSampled(
  targetScore: number,
  negativeScores: Scores,
  ks: readonly number[],
): RankedTarget {
  const cutoffs = normaliseKs(ks);
  const rank = sampledRank(targetScore, negativeScores);
  const hr: Record<number, number> = {};
  const ndcg: Record<number, number> = {};
  for (const k of cutoffs) {
    hr[k] = hitAtK(rank, k);
    ndcg[k] = ndcgAtK(rank, k);
  }
  return { rank, hr, ndcg, mrr: mrr(rank) };
}

/**
 * Fraction of the top-k of `scores` that are `history` items: how many of the slots a user sees
 * under the unmasked protocol go to items they already had. Where the user never repeats an item
 * (ML-100K), each such slot is one the held-out target cannot take.
 *
 * Ties follow rankOf: there a competitor tied with the target counts above it, and the target is a
 * non-history item, so at the cut-off history items win ties against non-history ones. The share
 * is then the most the tied scores can put into the top-k, and it depends on neither sort stability
 * nor item order. A catalogue smaller than k has a top-k of all its items, the denominator too.
 */
export function historyShareAtK(scores: Scores, history: Exclusion, k: number): number {
  checkK(k);
  const n = scores.length;
  if (n === 0) throw new MetricsInputError('no scores: the top-k is empty');
  if (history instanceof Uint8Array && history.length !== n) {
    throw new MetricsInputError(`mask has ${history.length} entries for ${n} items`);
  }
  const slots = Math.min(k, n);
  // The slots-th largest score, by insertion into a descending buffer (k is small: O(n·k)).
  const top = new Float64Array(slots);
  let filled = 0;
  for (let i = 0; i < n; i++) {
    const s = scores[i]!;
    if (Number.isNaN(s)) throw new MetricsInputError(`score of item ${i} is NaN`);
    if (filled === slots && s <= top[slots - 1]!) continue;
    let j = filled === slots ? slots - 1 : filled++;
    while (j > 0 && top[j - 1]! < s) {
      top[j] = top[j - 1]!;
      j--;
    }
    top[j] = s;
  }
  const cut = top[slots - 1]!;
  let above = 0;
  let historyAbove = 0;
  let historyTied = 0;
  for (let i = 0; i < n; i++) {
    const s = scores[i]!;
    if (s > cut) {
      above++;
      if (isExcluded(history, i)) historyAbove++;
    } else if (s === cut && isExcluded(history, i)) {
      historyTied++;
    }
  }
  // `above` < slots: only the slots left after the strictly-higher items are contested by ties.
  return (historyAbove + Math.min(historyTied, slots - above)) / slots;
}
