/**
 * Full-ranking evaluation over users' histories (masked and unmasked, NDCG/HR@5/10, MRR), with
 * ranks from core/metrics: src/model/evaluate.ts's evaluateUsers, with a scorer that gets whole
 * users, because CHORD needs more of a history than the backbone's window (the GRU's N clicks).
 */
import * as tf from '@tensorflow/tfjs';
import { scoresToHost, type UserScorer } from '../evaluate.ts';
import { historyWindows, type HistorySet } from './data.ts';
import type { ChordModel } from './model.ts';

/** The training-side scorer: tfjs forward, hard strategies from the tfjs hypernet. */
export function modelScorer(model: ChordModel, set: HistorySet, gruLen: number): UserScorer {
  const { inputLen, acceptsShortWindows } = model.backbone;
  return (users) => {
    const { seq, seqLen, gru } = historyWindows(set, users, inputLen, gruLen, acceptsShortWindows);
    return scoresToHost(() =>
      model.scores(
        tf.tensor2d(seq, [users.length, seqLen], 'int32'),
        tf.tensor2d(gru, [users.length, gruLen], 'int32'),
        tf.tensor1d(Array.from(users), 'int32'),
      ),
    );
  };
}

export { evaluateAndRankUsers, evaluateUsers, rankUsers, type UserScorer } from '../evaluate.ts';
