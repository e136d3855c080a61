/** Turning flat training examples and user histories into the int32 tensors the models eat. */
import * as tf from '@tensorflow/tfjs';
import type { BatchTensors, Examples } from './backbone.ts';

/** The batch of examples `idx` (indices into `ex`). */
export function batchTensors(ex: Examples, idx: ArrayLike<number>): BatchTensors {
  const b = idx.length;
  const L = ex.inputLen;
  const T = ex.targetsPer;
  const seq = new Int32Array(b * L);
  const users = new Int32Array(b);
  const rows: number[] = [];
  const cols: number[] = [];
  for (let k = 0; k < b; k++) {
    const i = idx[k]!;
    seq.set(ex.seq.subarray(i * L, (i + 1) * L), k * L);
    users[k] = ex.users[i]!;
    for (let s = 0; s < T; s++) {
      const item = ex.targets[i * T + s]!;
      if (item === 0) continue;
      rows.push(k * T + s);
      cols.push(item - 1);
    }
  }
  return {
    seq: tf.tensor2d(seq, [b, L], 'int32'),
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
