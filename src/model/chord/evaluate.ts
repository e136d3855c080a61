/**
 * Full-ranking evaluation over users' histories (masked and unmasked, NDCG/HR@5/10, MRR), with
 * ranks from core/metrics: the same protocol as src/model/evaluate.ts, but the scorer gets whole
 * users, because CHORD needs more of a history than the backbone's window (the GRU's N clicks).
 */
import * as tf from '@tensorflow/tfjs';
import { RankingMetrics, rankOf, type RankingSummary } from '../../core/metrics.ts';
import type { EvalResult, Metrics } from '../evaluate.ts';
import { historyWindows, type HistorySet } from './data.ts';
import type { ChordModel } from './model.ts';

/** Scores [users.length * numItems] (row k = users[k], column j = item j + 1). */
export type UserScorer = (users: readonly number[]) => Float32Array;

function toMetrics(s: RankingSummary): Metrics {
  return { ndcg5: s.ndcg[5]!, ndcg10: s.ndcg[10]!, hr5: s.hr[5]!, hr10: s.hr[10]!, mrr: s.mrr };
}

export function evaluateUsers(set: HistorySet, numItems: number, score: UserScorer, batchSize = 128): EvalResult {
  const users: number[] = [];
  for (let u = 0; u < set.histories.length; u++) if (set.targets[u]! > 0) users.push(u);
  const unmasked = new RankingMetrics([5, 10]);
  const masked = new RankingMetrics([5, 10]);
  const mask = new Uint8Array(numItems);
  for (let start = 0; start < users.length; start += batchSize) {
    const batch = users.slice(start, start + batchSize);
    const scores = score(batch);
    batch.forEach((u, k) => {
      const row = scores.subarray(k * numItems, (k + 1) * numItems);
      const target = set.targets[u]! - 1;
      unmasked.add(rankOf(row, target));
      const h = set.histories[u]!;
      for (let i = 0; i < h.length; i++) if (h[i]! > 0) mask[h[i]! - 1] = 1;
      masked.add(rankOf(row, target, mask));
      for (let i = 0; i < h.length; i++) if (h[i]! > 0) mask[h[i]! - 1] = 0;
    });
  }
  return { users: users.length, unmasked: toMetrics(unmasked.summary()), masked: toMetrics(masked.summary()) };
}

/** The training-side scorer: tfjs forward, hard strategies from the tfjs hypernet. */
export function modelScorer(model: ChordModel, set: HistorySet, gruLen: number): UserScorer {
  const inputLen = model.backbone.inputLen;
  return (users) => {
    const { seq, gru } = historyWindows(set, users, inputLen, gruLen);
    let out: Float32Array | undefined;
    tf.tidy(() => {
      const s = model.scores(
        tf.tensor2d(seq, [users.length, inputLen], 'int32'),
        tf.tensor2d(gru, [users.length, gruLen], 'int32'),
        tf.tensor1d(Array.from(users), 'int32'),
      );
      out = s.dataSync() as Float32Array;
    });
    return out!;
  };
}
