/** Turning flat training examples and user histories into the int32 tensors the models eat. */
import * as tf from '@tensorflow/tfjs';
import type { BatchTensors, Examples } from './backbone.ts';

/** Items in example i's input window (windows are left-padded, so its length from the right). */
export function windowLength(ex: Examples, i: number): number {
  const L = ex.inputLen;
  for (let j = 0; j < L; j++) if (ex.seq[i * L + j]! !== 0) return L - j;
  return 0;
}

/**
 * The batch of examples `idx` (indices into `ex`). With `trim`, for examples whose target slots
 * are their input positions (SASRec), the left padding all of the batch's windows share is cut:
 * the batch is as long as its longest window (at least 1).
 */
export function batchTensors(ex: Examples, idx: ArrayLike<number>, trim = false): BatchTensors {
  const b = idx.length;
  const L = ex.inputLen;
  const T = ex.targetsPer;
  let cut = 0;
  if (trim && T === L) {
    let longest = 1;
    for (let k = 0; k < b; k++) longest = Math.max(longest, windowLength(ex, idx[k]!));
    cut = L - longest;
  }
  // cut > 0 only where target slots are input positions: both lose their first `cut`.
  const Lb = L - cut;
  const Tb = T - cut;
  const seq = new Int32Array(b * Lb);
  const users = new Int32Array(b);
  const rows: number[] = [];
  const cols: number[] = [];
  for (let k = 0; k < b; k++) {
    const i = idx[k]!;
    seq.set(ex.seq.subarray(i * L + cut, (i + 1) * L), k * Lb);
    users[k] = ex.users[i]!;
    for (let s = cut; s < T; s++) {
      const item = ex.targets[i * T + s]!;
      if (item === 0) continue;
      rows.push(k * Tb + s - cut);
      cols.push(item - 1);
    }
  }
  return {
    seq: tf.tensor2d(seq, [b, Lb], 'int32'),
    users: tf.tensor1d(users, 'int32'),
    targetRows: tf.tensor1d(rows, 'int32'),
    targetCols: tf.tensor1d(cols, 'int32'),
  };
}

export function disposeBatch(b: BatchTensors): void {
  tf.dispose([b.seq, b.users, b.targetRows, b.targetCols]);
}

/** The last `len` items of `history`, left-padded with 0, written to out[offset .. offset+len). */
export function writeLastWindow(history: ArrayLike<number>, len: number, out: Int32Array, offset: number): void {
  const n = history.length;
  for (let j = 0; j < len; j++) {
    const k = n - len + j;
    out[offset + j] = k >= 0 ? history[k]! : 0;
  }
}
