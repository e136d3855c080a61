/**
 * Training examples and evaluation sets with each example's GRU window: the last N clicks the
 * page would have seen when the example's (last) target is predicted.
 */
import * as tf from '@tensorflow/tfjs';
import type { SplitDataset } from '../../data/types.ts';
import { sasrecWindowEnds, sasrecWindows } from '../sasrec.ts';
import type { Backbone, Examples } from '../backbone.ts';
import { batchTensors, writeLastWindow } from '../batches.ts';
import { Rng } from '../../core/rng.ts';
import { ChordTrainError } from './errors.ts';
import type { ChordBatch } from './model.ts';

export interface ChordExamples extends Examples {
  readonly gruLen: number;
  /** [count * gruLen]: per example, the clicks before its last target, left-padded with 0. */
  readonly gru: Int32Array;
}

/** How CHORD training builds each example's GRU window. */
export interface ChordWindowOptions {
  /** N: clicks the GRU sees. */
  readonly gruLen: number;
  /**
   * SASRec only: how many of a window's last targets its `z` conditions (>= maxLen: all). The GRU sees
   * the N items before the first of them, and the window's earlier slots are context without a
   * target; windows end every `zTargets` items, so every target is still seen every epoch.
   */
  readonly zTargets: number;
}

/**
 * The backbone's examples for an epoch, plus GRU windows. Leak-free: every target an example
 * trains on comes after every item of the GRU window that builds its `z`, as at test time, where
 * `z` is built from the history before the held-out item.
 * - SASRec: windows end every `zTargets` items; an example keeps only its last `zTargets`
 *   targets, and its GRU window is the N items before the first of them (from the whole training
 *   sequence, so N may exceed maxLen).
 * - Caser: one example per (user, position p >= 1) in that order (caserExamples); the GRU window
 *   is the N items before p. The order is verified against the examples' own inputs and targets,
 *   so a change in the backbone's enumeration fails loudly instead of misaligning windows.
 */
export function chordExamples(backbone: Backbone, train: readonly Int32Array[], shift: number, opts: ChordWindowOptions): ChordExamples {
  const gruLen = opts.gruLen;
  if (backbone.kind === 'sasrec') {
    const L = backbone.inputLen;
    if (!Number.isInteger(opts.zTargets) || opts.zTargets < 1) {
      throw new ChordTrainError('CHORD_BAD_OPTION', `z targets ${opts.zTargets} must be a positive integer`);
    }
    const m = Math.min(opts.zTargets, L);
    const ends = sasrecWindowEnds(train, m, shift);
    const ex = sasrecWindows(L, train, ends);
    const gru = new Int32Array(ex.count * gruLen);
    const targets = ex.targets;
    ends.forEach(([u, e], i) => {
      // Slot j's target is item e - L + j + 1; the first one kept is item max(1, e - m + 1).
      targets.fill(0, i * L, (i + 1) * L - m);
      writeLastWindow(train[u]!.subarray(0, Math.max(1, e - m + 1)), gruLen, gru, i * gruLen);
    });
    return { ...ex, gruLen, gru };
  }
  const ex = backbone.examples(train, shift);
  const L = ex.inputLen;
  const gru = new Int32Array(ex.count * gruLen);
  let i = 0;
  train.forEach((t, u) => {
    for (let p = 1; p < t.length; p++, i++) {
      const ok =
        i < ex.count &&
        ex.users[i] === u &&
        ex.targets[i * ex.targetsPer] === t[p] &&
        ex.seq[i * L + L - 1] === t[p - 1];
      if (!ok) throw new ChordTrainError('CHORD_BAD_DATA', `Caser example ${i} is not (user ${u}, position ${p})`);
      writeLastWindow(t.subarray(0, p), gruLen, gru, i * gruLen);
    }
  });
  if (i !== ex.count) throw new ChordTrainError('CHORD_BAD_DATA', `Caser has ${ex.count} examples, expected ${i}`);
  return { ...ex, gruLen, gru };
}

/** Batch tensors of examples `idx` (`trim`: as batchTensors); dispose with disposeChordBatch. */
export function chordBatch(ex: ChordExamples, idx: ArrayLike<number>, trim = false): ChordBatch {
  const base = batchTensors(ex, idx, trim);
  const n = ex.gruLen;
  const gru = new Int32Array(idx.length * n);
  for (let k = 0; k < idx.length; k++) gru.set(ex.gru.subarray(idx[k]! * n, (idx[k]! + 1) * n), k * n);
  return { ...base, gru: tf.tensor2d(gru, [idx.length, n], 'int32') };
}

export function disposeChordBatch(b: ChordBatch): void {
  tf.dispose([b.seq, b.users, b.targetRows, b.targetCols, b.gru]);
}

/** Per user: the input history and the held-out target (0 = skip). */
export interface HistorySet {
  readonly histories: readonly Int32Array[];
  readonly targets: Int32Array;
}

export function validationHistories(ds: SplitDataset): HistorySet {
  return { histories: ds.train, targets: ds.valid };
}

/** The seed of sampleUsers' draw for validation during training: one sample for every run. */
export const VALIDATION_SAMPLE_SEED = 0x5a3d1e;

/**
 * `set` with only `size` of its users (those with a target) kept, drawn by a seeded shuffle; the
 * others' targets are 0 (skipped). `set` itself when it has no more than `size` such users.
 */
export function sampleUsers(set: HistorySet, size: number, seed: number): HistorySet {
  const users: number[] = [];
  for (let u = 0; u < set.targets.length; u++) if (set.targets[u]! > 0) users.push(u);
  if (users.length <= size) return set;
  const rng = new Rng(seed);
  for (let i = 0; i < size; i++) {
    const j = i + rng.int(users.length - i);
    [users[i], users[j]] = [users[j]!, users[i]!];
  }
  const targets = new Int32Array(set.targets.length);
  for (const u of users.slice(0, size)) targets[u] = set.targets[u]!;
  return { histories: set.histories, targets };
}

/** Test input = training sequence followed by the validation item. */
export function testHistories(ds: SplitDataset): HistorySet {
  return {
    histories: ds.train.map((t, u) => {
      const h = new Int32Array(t.length + 1);
      h.set(t);
      h[t.length] = ds.valid[u]!;
      return h;
    }),
    targets: ds.test,
  };
}

/**
 * Model-input windows [B, seqLen] and GRU windows [B, gruLen] of users `users`. seqLen is
 * inputLen, or with `trim` the longest of the users' histories up to inputLen (the left padding
 * every window shares is cut, for a backbone that acceptsShortWindows).
 */
export function historyWindows(
  set: HistorySet,
  users: readonly number[],
  inputLen: number,
  gruLen: number,
  trim = false,
): { seq: Int32Array; seqLen: number; gru: Int32Array } {
  let seqLen = inputLen;
  if (trim) {
    seqLen = 1;
    for (const u of users) seqLen = Math.max(seqLen, Math.min(inputLen, set.histories[u]!.length));
  }
  const seq = new Int32Array(users.length * seqLen);
  const gru = new Int32Array(users.length * gruLen);
  users.forEach((u, k) => {
    writeLastWindow(set.histories[u]!, seqLen, seq, k * seqLen);
    writeLastWindow(set.histories[u]!, gruLen, gru, k * gruLen);
  });
  return { seq, seqLen, gru };
}
