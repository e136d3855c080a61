/**
 * The L1 mass of a factorised α_E (core/low-rank-mass.ts) and its tfjs op (hypernet.ts l1Mass)
 * against the same quantity written as tensor ops, Σ_k |(U · Vᵀ)[b, c, k]|, and tf's gradient of
 * it: ranks 1, 2 (the default, written out) and 3 (the general loop).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { lowRankL1Mass, lowRankL1MassGrad, type LowRankShape } from '../../src/core/low-rank-mass.ts';
import { initBackend } from '../../src/model/backend.ts';
import { l1Mass } from '../../src/model/chord/hypernet.ts';
import { Rng } from '../../src/core/rng.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

function uniform(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

/** The reference as tensor ops. */
const referenceMass = (u: tf.Tensor3D, v: tf.Tensor3D) => tf.sum(tf.abs(tf.matMul(u, v, false, true)), 2) as tf.Tensor2D;

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number): void {
  expect(actual.length).toBe(expected.length);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i]! - expected[i]!) > rel * scale) {
      throw new Error(`index ${i}: ${actual[i]} vs ${expected[i]} (tolerance ${rel * scale})`);
    }
  }
}

describe.each([1, 2, 3])('lowRankL1Mass at rank %i', (rank) => {
  const shape: LowRankShape = { batch: 3, channels: 5, rowLength: 7, rank };
  const u = uniform(3 * 5 * rank, 10 + rank);
  const v = uniform(3 * 7 * rank, 20 + rank);
  const g = uniform(3 * 5, 30 + rank);
  const uT = () => tf.tensor3d(u, [3, 5, rank]);
  const vT = () => tf.tensor3d(v, [3, 7, rank]);

  it('equals Σ_k |U·Vᵀ| per user and channel', () => {
    const expected = tf.tidy(() => referenceMass(uT(), vT()).dataSync());
    expectClose(lowRankL1Mass(shape, u, v), expected, 1e-6);
  });

  it("has tf's gradient of Σ_k |U·Vᵀ| for an upstream gradient", () => {
    const [du, dv] = tf.tidy(() => {
      const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(referenceMass(a as tf.Tensor3D, b as tf.Tensor3D), tf.tensor2d(g, [3, 5])));
      return tf.grads(f)([uT(), vT()]).map((t) => t.dataSync());
    });
    const got = lowRankL1MassGrad(shape, u, v, g);
    expectClose(got.du, du!, 1e-5);
    expectClose(got.dv, dv!, 1e-5);
  });

  it('as a tfjs op, gives the same values and gradients', () => {
    const mass = tf.tidy(() => l1Mass(uT(), vT()).dataSync());
    expectClose(mass, lowRankL1Mass(shape, u, v), 0);
    const [du, dv] = tf.tidy(() => {
      const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(l1Mass(a as tf.Tensor3D, b as tf.Tensor3D), tf.tensor2d(g, [3, 5])));
      return tf.grads(f)([uT(), vT()]).map((t) => t.dataSync());
    });
    const want = lowRankL1MassGrad(shape, u, v, g);
    expectClose(du!, want.du, 0);
    expectClose(dv!, want.dv, 0);
  });
});

describe('lowRankL1Mass edge cases', () => {
  it('gives a zero element no gradient, as d|x|/dx = sign(x) = 0 at 0', () => {
    // U row (1, 0) against V rows (0, 5) and (2, 0): the first element is exactly 0.
    const shape: LowRankShape = { batch: 1, channels: 1, rowLength: 2, rank: 2 };
    const u = Float32Array.of(1, 0);
    const v = Float32Array.of(0, 5, 2, 0);
    expect(Array.from(lowRankL1Mass(shape, u, v))).toEqual([2]);
    const { du, dv } = lowRankL1MassGrad(shape, u, v, Float32Array.of(1));
    expect(Array.from(du)).toEqual([2, 0]);
    expect(Array.from(dv)).toEqual([0, 0, 1, 0]);
  });

  it('rounds each element to float32 before |·|, as core stores α_E', () => {
    // Elements 1 + 3·2^-25 (float32: 1 + 2^-23) and 5·2^-26 (exact). Rounded first, the mass is
    // 1 + 1.625·2^-23 -> 1 + 2^-22 in float32; unrounded it would be 1 + 1.375·2^-23 -> 1 + 2^-23.
    const shape: LowRankShape = { batch: 1, channels: 1, rowLength: 2, rank: 2 };
    const u = Float32Array.of(1, 2 ** -25);
    const v = Float32Array.of(1, 3, 5 * 2 ** -26, 0);
    expect(lowRankL1Mass(shape, u, v)[0]).toBe(1 + 2 ** -22);
  });

  it('refuses inputs whose sizes do not match the shape', () => {
    const shape: LowRankShape = { batch: 2, channels: 3, rowLength: 4, rank: 2 };
    expect(() => lowRankL1Mass(shape, new Float32Array(11), new Float32Array(16))).toThrow(/U has 11 values, expected 12/);
    expect(() => lowRankL1Mass(shape, new Float32Array(12), new Float32Array(15))).toThrow(/V has 15 values, expected 16/);
    expect(() => lowRankL1MassGrad(shape, new Float32Array(12), new Float32Array(16), new Float32Array(5))).toThrow(/gradient has 5 values/);
    expect(() => lowRankL1Mass({ ...shape, rank: 0 }, new Float32Array(0), new Float32Array(0))).toThrow(/rank 0/);
  });
});
