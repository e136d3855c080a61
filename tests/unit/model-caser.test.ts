import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { backboneLayers } from '../../src/core/backbones.ts';
import { initBackend } from '../../src/model/backend.ts';
import { caserExamples, createCaser } from '../../src/model/caser.ts';
import { createBaseModel } from '../../src/model/model.ts';
import type { ParamMap } from '../../src/model/params.ts';
import { fullBatchLosses, perExampleScores } from '../fixtures/base-model.ts';
import { cyclicSequences } from '../fixtures/tiny-training.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const tiny = { numItems: 10, numUsers: 30, L: 3, hidden: 8, nv: 2, nh: 4, dropout: 0.3 };

/**
 * Caser written the textbook way with tf.conv2d (NHWC image [B, L, d, 1]), to check the matmul
 * formulation of the convolutions in src/model/caser.ts.
 */
function referenceScores(p: ParamMap, w: ParamMap, seq: tf.Tensor2D, users: tf.Tensor1D, c: typeof tiny): tf.Tensor {
  const [b] = seq.shape;
  const mask = tf.cast(tf.notEqual(seq, 0), 'float32').expandDims(2);
  const img = tf.mul(tf.gather(p['item_emb']!, seq), mask).expandDims(3) as tf.Tensor4D; // [B, L, d, 1]
  // [out, in, kh, kw] -> tf's [kh, kw, in, out]
  const filt = (t: tf.Tensor) => t.transpose([2, 3, 1, 0]) as tf.Tensor4D;
  const v = tf.add(tf.conv2d(img, filt(w['conv.v']!), 1, 'valid'), p['conv.v.bias']!); // [B, 1, d, nv]
  const outV = v.reshape([b, c.hidden, c.nv]).transpose([0, 2, 1]).reshape([b, c.nv * c.hidden]);
  const hs: tf.Tensor[] = [];
  for (let h = 1; h <= c.L; h++) {
    const conv = tf.relu(tf.add(tf.conv2d(img, filt(w[`conv.h${h}`]!), 1, 'valid'), p[`conv.h${h}.bias`]!));
    hs.push(tf.max(conv.reshape([b, c.L - h + 1, c.nh]), 1));
  }
  const z = tf.relu(tf.add(tf.matMul(tf.concat([outV, ...hs], 1), w['fc1']!, false, true), p['fc1.bias']!));
  const x = tf.concat([z, tf.gather(p['user_emb']!, users)], 1);
  const emb = p['out_emb']!.slice([1, 0], [c.numItems, 2 * c.hidden]);
  return tf.add(tf.matMul(x, emb, false, true), p['out_bias']!.slice([1], [c.numItems]));
}

describe('Caser', () => {
  it('uses the core layer list with conv [out, in, kh, kw] and linear [out, in] shapes', () => {
    const bb = createCaser({ numItems: 1152, numUsers: 943 });
    const core = backboneLayers({ backbone: 'caser', dims: { d: 64, L: 5, nv: 4, nh: 16, maxLen: 5 } });
    expect(bb.layers().map((l) => [l.name, l.shape])).toEqual(core.map((l) => [l.name, l.shape]));
    const byName = Object.fromEntries(bb.layers().map((l) => [l.name, l.shape]));
    expect(byName['conv.v']).toEqual([4, 1, 5, 1]);
    expect(byName['conv.h3']).toEqual([16, 1, 3, 64]);
    expect(byName['fc1']).toEqual([64, 4 * 64 + 16 * 5]);
  });

  it('matches a conv2d reference implementation, padding included', () => {
    const model = createBaseModel(createCaser(tiny), 7);
    // Perturb biases (a wrong broadcast would show) and enlarge the embeddings so scores are O(1).
    for (const [name, v] of Object.entries(model.params)) {
      if (name.endsWith('.bias')) v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', 11));
      if (name.endsWith('_emb')) v.assign(tf.randomNormal(v.shape, 0, 1, 'float32', 12));
    }
    const seq = tf.tensor2d([[1, 2, 3], [0, 4, 5], [0, 0, 9], [10, 10, 1]], [4, 3], 'int32');
    const users = tf.tensor1d([0, 5, 29, 3], 'int32');
    const ours = model.scores(seq, users);
    expect(ours.shape).toEqual([4, 10]);
    const ref = Array.from(referenceScores(model.params, model.weights, seq, users, tiny).dataSync());
    expect(ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0)).toBeGreaterThan(0.5);
    ours.dataSync().forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 4));
  });

  it('accepts per-example weights [B, ...shape]: example k scores as with shared weights k', () => {
    const a = createBaseModel(createCaser(tiny), 1);
    const b = createBaseModel(createCaser(tiny), 2);
    const seq = tf.tensor2d([[1, 2, 3], [0, 4, 5]], [2, 3], 'int32');
    const users = tf.tensor1d([0, 1], 'int32');
    const { mixed, withA, withB } = perExampleScores(a, b, seq, users);
    mixed[0]!.forEach((v, j) => expect(v).toBeCloseTo(withA[0]![j]!, 5));
    mixed[1]!.forEach((v, j) => expect(v).toBeCloseTo(withB[1]![j]!, 5));
    expect(withA[1]!.some((v, j) => Math.abs(v - withB[1]![j]!) > 1e-5)).toBe(true);
  });

  it("userEmbedding 'shared': one learned row, so a user's index does not change the scores", () => {
    const shared = createBaseModel(createCaser({ ...tiny, userEmbedding: 'shared' }), 7);
    expect(shared.params['user_emb']!.shape).toEqual([1, tiny.hidden]);
    shared.params['user_emb']!.assign(tf.randomNormal([1, tiny.hidden], 0, 1, 'float32', 13));
    const seq = tf.tensor2d([[1, 2, 3], [1, 2, 3]], [2, 3], 'int32');
    const rows = shared.scores(seq, tf.tensor1d([0, 29], 'int32')).arraySync() as number[][];
    expect(rows[1]).toEqual(rows[0]);
    // The per-user table (the paper's Caser) does depend on the user, with the same init seed.
    const table = createBaseModel(createCaser(tiny), 7);
    expect(table.params['user_emb']!.shape).toEqual([tiny.numUsers, tiny.hidden]);
    table.params['user_emb']!.assign(tf.randomNormal([tiny.numUsers, tiny.hidden], 0, 1, 'float32', 13));
    const t = table.scores(seq, tf.tensor1d([0, 29], 'int32')).arraySync() as number[][];
    expect(t[1]!.some((v, j) => Math.abs(v - t[0]![j]!) > 1e-4)).toBe(true);
  });

  it('builds one sliding-window example per next-item step', () => {
    const c = createCaser(tiny).caser;
    const ex = caserExamples(c, [Int32Array.from([4, 5, 6, 7]), Int32Array.from([1])]);
    expect(ex.count).toBe(3);
    expect(Array.from(ex.seq)).toEqual([0, 0, 4, 0, 4, 5, 4, 5, 6]);
    expect(Array.from(ex.targets)).toEqual([5, 6, 7]);
    expect(Array.from(ex.users)).toEqual([0, 0, 0]);
  });

  it('lowers the full-softmax loss on a tiny predictable dataset', () => {
    const model = createBaseModel(createCaser(tiny), 8);
    const losses = fullBatchLosses(model, cyclicSequences(30, 10), 2e-2, 40);
    expect(losses[0]).toBeGreaterThan(Math.log(10) - 0.3);
    expect(losses[39]!).toBeLessThan(losses[0]! * 0.5);
  });
});
