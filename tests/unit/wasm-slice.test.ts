/**
 * The wasm Slice/Unpack/SplitV replacements (src/model/wasm-slice.ts): copySlice against an
 * index-by-index reference on every box of small tensors, and the tfjs ops on the wasm backend
 * against the cpu backend's, for float32, int32 and bool, on every axis.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/model/backend.ts';
import { copySlice } from '../../src/model/wasm-slice.ts';

function reference(x: Float32Array, shape: number[], begin: number[], size: number[]): number[] {
  const out: number[] = [];
  const idx = new Array<number>(shape.length).fill(0);
  const total = size.reduce((a, b) => a * b, 1);
  for (let n = 0; n < total; n++) {
    let rem = n;
    for (let i = shape.length - 1; i >= 0; i--) {
      idx[i] = rem % size[i]!;
      rem = Math.floor(rem / size[i]!);
    }
    let off = 0;
    for (let i = 0; i < shape.length; i++) off = off * shape[i]! + begin[i]! + idx[i]!;
    out.push(x[off]!);
  }
  return out;
}

/** Every (begin, size) box of `shape`. */
function* boxes(shape: number[], axis = 0): Generator<[number[], number[]]> {
  if (axis === shape.length) {
    yield [[], []];
    return;
  }
  for (let b = 0; b < shape[axis]!; b++) {
    for (let s = 1; b + s <= shape[axis]!; s++) {
      for (const [bs, ss] of boxes(shape, axis + 1)) yield [[b, ...bs], [s, ...ss]];
    }
  }
}

describe('copySlice', () => {
  it.each([[[5]], [[3, 4]], [[2, 3, 4]], [[2, 2, 3, 2]]])('copies every box of shape %j', (shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: n }, (_, i) => i + 0.5);
    let count = 0;
    for (const [begin, size] of boxes(shape)) {
      const out = new Float32Array(size.reduce((a, b) => a * b, 1));
      copySlice(x, shape, begin, size, out);
      expect(Array.from(out), `begin ${begin} size ${size}`).toEqual(reference(x, shape, begin, size));
      count++;
    }
    expect(count).toBeGreaterThan(shape.length);
  });
});

describe('wasm Slice / Unpack / SplitV', () => {
  const shape = [3, 4, 5];
  const run = (dtype: 'float32' | 'int32' | 'bool') => {
    const n = 60;
    const data = dtype === 'bool' ? Array.from({ length: n }, (_, i) => (i * 7) % 3 === 0) : Array.from({ length: n }, (_, i) => i * 3 - 50);
    return tf.tidy(() => {
      const x = tf.tensor(data as number[], shape, dtype);
      const outs: tf.Tensor[] = [x.slice([1, 0, 2], [2, -1, 2]), x.slice([0, 1, 0], [3, 2, 5]), x.slice([2, 3, 4], [1, 1, 1])];
      for (let axis = 0; axis < 3; axis++) {
        outs.push(...tf.unstack(x, axis));
        outs.push(...tf.split(x, [1, shape[axis]! - 1], axis));
      }
      return outs.map((t) => ({ shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync()) }));
    });
  };

  it.each(['float32', 'int32', 'bool'] as const)('equal the cpu backend for %s', async (dtype) => {
    await initBackend('cpu');
    const want = run(dtype);
    await initBackend('wasm');
    expect(tf.getKernel(tf.Slice, 'wasm')).toBeDefined();
    expect(run(dtype)).toEqual(want);
  });

  it('keep the gradient of unstack and slice (stack and pad) right', async () => {
    await initBackend('wasm');
    const g = tf.tidy(() => {
      const x = tf.tensor3d(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
      const f = (t: tf.Tensor) => tf.sum(tf.mul(tf.unstack(t, 1)[2]!, 2)).add(tf.sum(t.slice([1, 0, 1], [1, 2, 2])));
      return Array.from(tf.grad(f)(x).dataSync());
    });
    const want = new Array<number>(24).fill(0);
    for (let a = 0; a < 2; a++) for (let c = 0; c < 4; c++) want[a * 12 + 2 * 4 + c]! += 2;
    for (let b = 0; b < 2; b++) for (let c = 1; c < 3; c++) want[12 + b * 4 + c]! += 1;
    expect(g).toEqual(want);
  });
});
