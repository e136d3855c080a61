import { DatasetError } from './errors.ts';
import { coreThresholds, describeCoreThreshold, kcoreWithPasses, type CoreThreshold } from './kcore.ts';
import { buildSequences } from './sequences.ts';
import type { Interaction, SequenceData, SplitDataset } from './types.ts';

/** Fewest interactions a user needs: one training item as input, one validation and one test target. */
export const MIN_SPLIT_LENGTH = 3;

/**
 * Leave-last-one-out: per user, the last item is the test target, the second last the validation
 * target, the rest the training sequence. Every user must have at least MIN_SPLIT_LENGTH items;
 * prepareDataset guarantees that by filtering first, so a short user here is a caller error.
 */
export function splitLeaveLastOut(data: SequenceData): SplitDataset {
  const train: Int32Array[] = [];
  const valid = new Int32Array(data.numUsers);
  const test = new Int32Array(data.numUsers);
  data.sequences.forEach((seq, u) => {
    if (seq.length < MIN_SPLIT_LENGTH) {
      throw new DatasetError(
        'DATASET_TOO_SHORT',
        `user "${data.userIds[u]}" has ${seq.length} interactions; leave-last-one-out needs at least ${MIN_SPLIT_LENGTH}`,
      );
    }
    train.push(seq.slice(0, seq.length - 2));
    valid[u] = seq[seq.length - 2]!;
    test[u] = seq[seq.length - 1]!;
  });
  return {
    numItems: data.numItems,
    numUsers: data.numUsers,
    train,
    valid,
    test,
    itemIds: data.itemIds,
    userIds: data.userIds,
  };
}

/** Input sequence for predicting valid[u]. */
export function validationInput(ds: SplitDataset, u: number): Int32Array {
  const seq = ds.train[u];
  if (!seq) throw new RangeError(`user ${u} out of range`);
  return seq;
}

/** Input sequence for predicting test[u]: the training sequence followed by the validation item. */
export function testInput(ds: SplitDataset, u: number): Int32Array {
  const seq = validationInput(ds, u);
  const out = new Int32Array(seq.length + 1);
  out.set(seq);
  out[seq.length] = ds.valid[u]!;
  return out;
}

export interface PrepareOptions {
  /** k-core threshold for users and items (the CHORD protocol uses 10), or one each. Default 10. */
  readonly k?: CoreThreshold;
}

export interface PreparedDataset {
  readonly split: SplitDataset;
  /** The interactions that survived filtering, in input order. */
  readonly filtered: Interaction[];
  /** k-core passes that removed something. */
  readonly passes: number;
}

/**
 * The full protocol: k-core filter -> per-user chronological order (stable on ties) -> dense ids
 * -> leave-last-one-out. Users with fewer than 3 interactions cannot be split, so the user
 * threshold of the k-core is max(k, 3), k the user threshold: for k >= 3 (the usual case) that
 * changes nothing, and for smaller k the short users are dropped inside the fixed-point loop, so
 * the item counts stay consistent with the users that remain instead of leaving items orphaned by
 * a later drop.
 */
export function prepareDataset(interactions: readonly Interaction[], options: PrepareOptions = {}): PreparedDataset {
  const k = options.k ?? 10;
  const { user, item } = coreThresholds(k);
  const { interactions: filtered, passes } = kcoreWithPasses(interactions, {
    user: Math.max(user, MIN_SPLIT_LENGTH),
    item,
  });
  if (filtered.length === 0) {
    throw new DatasetError('DATASET_EMPTY', `no interactions left after the filter (${describeCoreThreshold(k)})`);
  }
  return { split: splitLeaveLastOut(buildSequences(filtered)), filtered, passes };
}
