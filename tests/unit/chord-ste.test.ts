/**
 * The quantized layer's forward against core's quantizer, and the straight-through estimator:
 * gradients reach the soft level probabilities (and through them the channel scores and α_L),
 * and equal finite differences of the soft path W = Σ_l q_l · Q_l(W).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateFrozenWeights } from '../../src/core/frozen.ts';
import { fakeQuantize } from '../../src/core/quantize.ts';
import { initBackend } from '../../src/model/backend.ts';
import { allocateBatch, softLevels, type AllocationSettings } from '../../src/model/chord/levels.ts';
import { CHORD_DEFAULTS, createChordModel } from '../../src/model/chord/model.ts';
import { levelStack, quantLinear } from '../../src/model/chord/weights.ts';
import { Rng } from '../../src/core/rng.ts';
import { createSasrec } from '../../src/model/sasrec.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const B = 3;
const T = 4;
const C = 8;
const K = 6;
const BITS = [2, 4, 6, 8];
const spec = { name: 'block0.attn.q', shape: [C, K], outChannels: C, rowLength: K, init: { kind: 'uniform', bound: 1 } } as const;

function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.next());
}

const frozen = uniform(C * K, 1, -0.5, 0.5);
const xData = uniform(B * T * K, 2);
const levels = Uint8Array.from({ length: B * C }, (_, i) => (i * 5 + (i >> 3)) % 4);

describe('quantLinear forward', () => {
  it('equals x · Wᵀ with each user\'s weights dequantized by core fakeQuantize at its channel widths', () => {
    const stack = levelStack(spec, frozen, BITS);
    const y = quantLinear(stack, levels, tf.tensor3d(xData, [B, T, K])).dataSync();
    for (let b = 0; b < B; b++) {
      const bits = Uint8Array.from(levels.subarray(b * C, (b + 1) * C), (l) => BITS[l]!);
      const w = fakeQuantize(frozen, spec.shape, bits);
      for (let t = 0; t < T; t++) {
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += xData[(b * T + t) * K + k]! * w[c * K + k]!;
          expect(y[(b * T + t) * C + c]).toBeCloseTo(s, 5);
        }
      }
    }
    // The levels matter: 2-bit and 8-bit copies of the frozen weights differ.
    const w2 = fakeQuantize(frozen, spec.shape, 2);
    const w8 = fakeQuantize(frozen, spec.shape, 8);
    expect(w2.some((v, i) => Math.abs(v - w8[i]!) > 1e-3)).toBe(true);
  });
});

/** Soft-path reference: y = Σ_l q_l(b,c) · (x · Q_lᵀ)(b,t,c), plain tfjs ops, no custom gradient. */
function softForward(x: tf.Tensor3D, q: tf.Tensor3D): tf.Tensor {
  const parts = BITS.map((bits, l) => {
    const Ql = tf.tensor2d(fakeQuantize(frozen, spec.shape, bits), [C, K]);
    const y = tf.matMul(x.reshape([B * T, K]), Ql, false, true).reshape([B, T, C]);
    return tf.mul(y, q.slice([0, 0, l], [B, C, 1]).reshape([B, 1, C]));
  });
  return tf.addN(parts);
}

function oneHot(): Float32Array {
  const q = new Float32Array(B * C * 4);
  for (let i = 0; i < B * C; i++) q[i * 4 + levels[i]!] = 1;
  return q;
}

describe('straight-through estimator', () => {
  const R = () => tf.tensor3d(uniform(B * T * C, 3), [B, T, C]);
  // A non-linear loss of the layer output, so the check is not trivially linear.
  const loss = (y: tf.Tensor) => tf.sum(tf.mul(tf.tanh(y), R())) as tf.Scalar;

  it('dL/dq at the hard point equals the finite difference of the soft path', () => {
    const stack = levelStack(spec, frozen, BITS);
    const x = tf.tensor3d(xData, [B, T, K]);
    const q0 = oneHot();
    const ste = tf.grad((q: tf.Tensor) => loss(quantLinear(stack, levels, x, q as tf.Tensor3D)))(tf.tensor3d(q0, [B, C, 4])).dataSync();
    expect(Math.max(...Array.from(ste, Math.abs))).toBeGreaterThan(1e-3);
    const f = (q: Float32Array) => loss(softForward(x, tf.tensor3d(q, [B, C, 4]))).dataSync()[0]!;
    const eps = 1e-2;
    for (const i of [0, 5, 17, 30, 47, 63, 70, 95]) {
      const plus = q0.slice();
      const minus = q0.slice();
      plus[i]! += eps;
      minus[i]! -= eps;
      expect(ste[i]).toBeCloseTo((f(plus) - f(minus)) / (2 * eps), 2);
    }
  });

  it('dL/dx is the gradient of the hard forward (the weights actually used)', () => {
    const stack = levelStack(spec, frozen, BITS);
    const x0 = tf.tensor3d(xData, [B, T, K]);
    const q = tf.tensor3d(oneHot(), [B, C, 4]);
    const ste = tf.grad((x: tf.Tensor) => loss(quantLinear(stack, levels, x, q)))(x0).dataSync();
    const ref = tf.grad((x: tf.Tensor) => loss(softForward(x as tf.Tensor3D, q)))(x0).dataSync();
    for (let i = 0; i < ste.length; i++) expect(ste[i]).toBeCloseTo(ref[i]!, 4);
  });

  it('carries non-zero gradients through Γ/Λ soft levels to channel scores and α_L, matching finite differences', () => {
    const settings: AllocationSettings = {
      layers: [{ name: spec.name, outChannels: C, rowLength: K }, { name: 'other', outChannels: 4, rowLength: 2 }],
      beta: 0.25,
      levelTable: [2, 4, 6, 8],
      lambda: { up: 1, down: 0 },
      temperature: 0.5,
    };
    const scores0 = uniform(B * C, 4, 0.1, 2);
    const alphaL0 = uniform(B * 2, 5);
    const alloc = allocateBatch(settings, B, [scores0, uniform(B * 4, 6, 0.1, 1)], alphaL0);
    const hard = alloc.levels[0]!;
    // Γ with β = 0.25 of 8 channels: two 8-bit (tier base level 3) and two 4-bit (level 1) per user, before Λ.
    const stack = levelStack(spec, frozen, BITS);
    const x = tf.tensor3d(xData, [B, T, K]);
    const [gs, gL] = tf.grads((s: tf.Tensor, aL: tf.Tensor) => {
      const q = softLevels(s as tf.Tensor2D, alloc.tiers[0]!, (aL as tf.Tensor2D).slice([0, 0], [B, 1]), alloc.shift);
      return loss(quantLinear(stack, hard, x, q));
    })([tf.tensor2d(scores0, [B, C]), tf.tensor2d(alphaL0, [B, 2])]);
    const gScores = gs!.dataSync();
    const gAlphaL = gL!.dataSync();
    expect(Math.max(...Array.from(gScores, Math.abs))).toBeGreaterThan(1e-4);
    expect(Math.max(...Array.from(gAlphaL, Math.abs))).toBeGreaterThan(1e-4);
    // The STE gradient is the soft path's gradient with dL/dW taken at the hard weights; for a
    // loss linear in the layer output the two are the same function, so finite differences of the
    // soft path (scores -> soft levels -> Σ q_l Q_l) must reproduce it.
    const linear = (y: tf.Tensor) => tf.sum(tf.mul(y, R())) as tf.Scalar;
    const lin = (s: Float32Array, aL: Float32Array, ste: boolean) => {
      const q = softLevels(tf.tensor2d(s, [B, C]), alloc.tiers[0]!, tf.tensor2d(aL, [B, 2]).slice([0, 0], [B, 1]), alloc.shift);
      return linear(ste ? quantLinear(stack, hard, x, q) : softForward(x, q));
    };
    const [ls, lL] = tf.grads((s: tf.Tensor, aL: tf.Tensor) => {
      const q = softLevels(s as tf.Tensor2D, alloc.tiers[0]!, (aL as tf.Tensor2D).slice([0, 0], [B, 1]), alloc.shift);
      return linear(quantLinear(stack, hard, x, q));
    })([tf.tensor2d(scores0, [B, C]), tf.tensor2d(alphaL0, [B, 2])]);
    const fd = (which: 's' | 'a', i: number) => {
      const eps = which === 's' ? 5e-3 * scores0[i]! : 5e-3;
      const s1 = scores0.slice();
      const s2 = scores0.slice();
      const a1 = alphaL0.slice();
      const a2 = alphaL0.slice();
      if (which === 's') {
        s1[i]! += eps;
        s2[i]! -= eps;
      } else {
        a1[i]! += eps;
        a2[i]! -= eps;
      }
      return (lin(s1, a1, false).dataSync()[0]! - lin(s2, a2, false).dataSync()[0]!) / (2 * eps);
    };
    const gS = ls!.dataSync();
    const gA = lL!.dataSync();
    const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThan(0.03 * Math.abs(b) + 1e-3);
    for (const i of [0, 3, 9, 14, 20]) close(gS[i]!, fd('s', i));
    for (const i of [0, 2, 4]) close(gA[i]!, fd('a', i));
    expect(gA[1]).toBe(0); // α_L of the other layer does not touch this layer
  });

  it('soft levels are a distribution whose mode is the hard level as the temperature falls', () => {
    const settings: AllocationSettings = {
      layers: [{ name: 'a', outChannels: C, rowLength: K }, { name: 'b', outChannels: C, rowLength: K }, { name: 'c', outChannels: C, rowLength: K }],
      beta: 0.25,
      levelTable: [2, 4, 6, 8],
      lambda: { up: 1, down: 1 },
      temperature: 0.01,
    };
    const scores = [0, 1, 2].map((l) => uniform(B * C, 10 + l, 0.1, 2));
    const alphaL = uniform(B * 3, 20);
    const alloc = allocateBatch(settings, B, scores, alphaL);
    for (let l = 0; l < 3; l++) {
      const q = softLevels(tf.tensor2d(scores[l]!, [B, C]), alloc.tiers[l]!, tf.tensor2d(alphaL, [B, 3]).slice([0, l], [B, 1]), alloc.shift).dataSync();
      for (let i = 0; i < B * C; i++) {
        const row = Array.from(q.subarray(i * 4, i * 4 + 4));
        expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        expect(row.indexOf(Math.max(...row))).toBe(alloc.levels[l]![i]);
      }
    }
    // Λ moved one layer up and one down per user: all four levels occur.
    const used = new Set(alloc.levels.flatMap((lv) => Array.from(lv)));
    expect([...used].sort()).toEqual([0, 1, 2, 3]);
  });
});

describe('gradients reach every hypernet and GRU parameter through the full model', () => {
  for (const method of ['custom', 'weighted', 'chord'] as const) {
    it(method, () => {
      const bb = createSasrec({ numItems: 20, numUsers: 4, maxLen: 6, hidden: 8, heads: 2, blocks: 1, ffn: 16, dropout: 0 });
      const frozen = new Map(generateFrozenWeights({ seed: 3, layers: bb.layers() }).map((l) => [l.spec.name, l.weights]));
      const model = createChordModel(bb, frozen, { ...CHORD_DEFAULTS, method, zDim: 4, hyperHidden: 6, gruWindow: 4, seed: 2 });
      const seq = tf.tensor2d([0, 1, 2, 3, 4, 5, 0, 0, 9, 8, 7, 6, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0, 3, 19], [4, 6], 'int32');
      const batch = {
        seq,
        users: tf.tensor1d([0, 1, 2, 3], 'int32'),
        targetRows: tf.tensor1d([1, 2, 3, 4, 9, 10, 14, 15, 20, 23], 'int32'),
        targetCols: tf.tensor1d([2, 3, 4, 5, 7, 6, 13, 14, 18, 1], 'int32'),
        gru: seq.slice([0, 2], [4, 4]) as tf.Tensor2D,
      };
      const names = Object.keys(model.variables).filter((n) => n.startsWith('hyper.') || n.startsWith('gru.')).sort();
      expect(names.some((n) => n.startsWith('hyper.E.'))).toBe(method !== 'custom');
      expect(names.includes('hyper.L.w')).toBe(method === 'chord');
      const { grads } = tf.variableGrads(() => model.loss(batch, { training: false, seed: () => 0 }), names.map((n) => model.variables[n]!));
      for (const n of names) {
        const g = grads[model.variables[n]!.name];
        expect(g, n).toBeDefined();
        expect(tf.norm(g!).dataSync()[0], n).toBeGreaterThan(0);
      }
      model.dispose();
    });
  }
});
