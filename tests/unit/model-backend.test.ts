import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/model/backend.ts';
import { unsortedSegmentSumArrays } from '../../src/model/wasm-segment-sum.ts';
import { mm } from '../../src/model/nn.ts';

function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = s / 2147483648 - 0.5;
  }
  return out;
}

/** Runs f on the given backend and returns plain arrays, so results can be compared across backends. */
async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await initBackend(backend);
  return tf.tidy(() => {
    const r = f();
    return (Array.isArray(r) ? r : [r]).map((t) => Float32Array.from(t.dataSync()));
  });
}

describe('unsortedSegmentSumArrays', () => {
  it('sums rows into segments and drops out-of-range ids', () => {
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]); // 4 rows of 2
    const out = new Float32Array(6);
    unsortedSegmentSumArrays(x, Int32Array.from([2, 0, 2, 5]), 3, out);
    expect(Array.from(out)).toEqual([3, 4, 0, 0, 1 + 5, 2 + 6]);
  });
});

describe('wasm backend', () => {
  it('initialises the wasm backend from node_modules', async () => {
    await initBackend('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('registered UnsortedSegmentSum matches the cpu backend', async () => {
    const x = values(7 * 3 * 5, 1);
    const ids = Int32Array.from([4, 0, 4, 2, 9, -1, 0]); // 9 and -1 are dropped
    const run = () => tf.unsortedSegmentSum(tf.tensor3d(x, [7, 3, 5]), tf.tensor1d(ids, 'int32'), 6);
    const [cpu] = await on('cpu', run);
    const [wasm] = await on('wasm', run);
    expect(wasm!.length).toBe(6 * 3 * 5);
    expect(Array.from(wasm!)).toEqual(Array.from(cpu!));
    expect(wasm!.some((v) => v !== 0)).toBe(true);
  });

  it('the gradient of an embedding gather matches the cpu backend', async () => {
    const table = values(10 * 4, 2);
    const up = values(6 * 4, 3);
    const run = () =>
      tf.grad((e: tf.Tensor) =>
        tf.sum(tf.mul(tf.gather(e, tf.tensor1d([3, 1, 3, 9, 0, 3], 'int32')), tf.tensor2d(up, [6, 4]))),
      )(tf.tensor2d(table, [10, 4]));
    const [cpu] = await on('cpu', run);
    const [wasm] = await on('wasm', run);
    for (let i = 0; i < cpu!.length; i++) expect(wasm![i]).toBeCloseTo(cpu![i]!, 6);
    // Row 3 is gathered three times: its gradient is the sum of three rows of `up`.
    expect(wasm![3 * 4]).toBeCloseTo(up[0]! + up[2 * 4]! + up[5 * 4]!, 6);
  });

  it('mm (explicit transposes) has the values and gradients of tf.matMul', async () => {
    await initBackend('wasm');
    const a = tf.tensor3d(values(2 * 3 * 4, 4), [2, 3, 4]);
    const b = tf.tensor3d(values(2 * 5 * 4, 5), [2, 5, 4]);
    const up = tf.tensor3d(values(2 * 3 * 5, 6), [2, 3, 5]);
    const ours = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(mm(x, y, false, true), up)))([a, b]);
    const ref = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, false, true), up)))([a, b]);
    const fwd = mm(a, b, false, true).dataSync();
    const fwdRef = tf.matMul(a, b, false, true).dataSync();
    fwd.forEach((v, i) => expect(v).toBeCloseTo(fwdRef[i]!, 5));
    for (let k = 0; k < 2; k++) {
      const o = ours[k]!.dataSync();
      const r = ref[k]!.dataSync();
      expect(ours[k]!.shape).toEqual(ref[k]!.shape);
      o.forEach((v, i) => expect(v).toBeCloseTo(r[i]!, 5));
    }
    const a2 = tf.tensor2d(values(12, 7), [4, 3]);
    const b2 = tf.tensor2d(values(15, 8), [3, 5]);
    // transposeA must be honoured: a2^T^T [4,3] x b2 [3,5].
    const t = mm(a2.transpose(), b2, true, false);
    expect(t.shape).toEqual([4, 5]);
    const r = tf.matMul(a2, b2).dataSync();
    t.dataSync().forEach((v, i) => expect(v).toBeCloseTo(r[i]!, 5));
  });

  it('mm runs large batched products per batch element on wasm, with the values and gradients of tf.matMul', async () => {
    await initBackend('wasm');
    // 50 x 32 x 40 = 64,000 multiply-adds per batch element: above the threshold for one 2D product each.
    const a = tf.tensor3d(values(3 * 50 * 32, 9), [3, 50, 32]);
    const b = tf.tensor3d(values(3 * 40 * 32, 10), [3, 40, 32]);
    const up = tf.tensor3d(values(3 * 50 * 40, 11), [3, 50, 40]);
    const prof = await tf.profile(() => mm(a, b, false, true));
    const products = prof.kernels.filter((k) => k.name === 'BatchMatMul');
    expect(products).toHaveLength(3);
    expect(products.every((k) => k.inputShapes[0]!.length === 2)).toBe(true);
    const fwd = mm(a, b, false, true).dataSync();
    const fwdRef = tf.matMul(a, b, false, true).dataSync();
    fwd.forEach((v, i) => expect(v).toBeCloseTo(fwdRef[i]!, 4));
    const ours = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(mm(x, y, false, true), up)))([a, b]);
    const ref = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, false, true), up)))([a, b]);
    for (let k = 0; k < 2; k++) {
      expect(ours[k]!.shape).toEqual(ref[k]!.shape);
      const r = ref[k]!.dataSync();
      ours[k]!.dataSync().forEach((v, i) => expect(v).toBeCloseTo(r[i]!, 4));
    }
    // A small batched product stays one batched kernel.
    const small = await tf.profile(() => mm(tf.ones([4, 10, 8]), tf.ones([4, 8, 10])));
    expect(small.kernels.filter((k) => k.name === 'BatchMatMul').map((k) => k.inputShapes[0])).toEqual([[4, 10, 8]]);
  });
});
