import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { backboneLayers } from '../../src/core/backbones.ts';
import { INFERENCE } from '../../src/model/backbone.ts';
import { initBackend } from '../../src/model/backend.ts';
import { LayerWeightsError, weightLayers } from '../../src/model/layers.ts';
import { createBaseModel } from '../../src/model/model.ts';
import { createSasrec, sasrecExamples, sasrecForward } from '../../src/model/sasrec.ts';
import { fullBatchLosses, perExampleScores } from '../fixtures/base-model.ts';
import { cyclicSequences } from '../fixtures/tiny-training.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const tiny = { numItems: 10, numUsers: 30, maxLen: 8, hidden: 16, heads: 2, blocks: 2, ffn: 32, dropout: 0.2 };

describe('SASRec layers and parameters', () => {
  it('uses the core layer list with [out, in] shapes', () => {
    const bb = createSasrec({ numItems: 1152, numUsers: 943 });
    const core = backboneLayers({ backbone: 'sasrec', dims: { hidden: 64, heads: 2, blocks: 2, ffn: 256, maxLen: 50 } });
    expect(bb.layers().map((l) => [l.name, l.shape])).toEqual(core.map((l) => [l.name, l.shape]));
    const byName = Object.fromEntries(bb.layers().map((l) => [l.name, l.shape]));
    expect(byName['block1.attn.out']).toEqual([64, 64]);
    expect(byName['block0.ffn.in']).toEqual([256, 64]);
    expect(byName['block0.ffn.out']).toEqual([64, 256]);
    expect(bb.layers()).toHaveLength(12);
  });

  it('lists every parameter by name, layer weights separate from the always-trained ones', () => {
    const model = createBaseModel(createSasrec(tiny), 3);
    expect(Object.keys(model.weights).sort()).toEqual(model.backbone.layers().map((l) => l.name).sort());
    expect(model.params['item_emb']!.shape).toEqual([11, 16]);
    expect(model.params['pos_emb']!.shape).toEqual([8, 16]);
    expect(model.params['block1.ffn.in.bias']!.shape).toEqual([32]);
    expect(model.params['final_ln.gamma']!.shape).toEqual([16]);
    expect(Object.keys(model.variables)).toHaveLength(Object.keys(model.params).length + 12);
  });
});

describe('SASRec forward', () => {
  it('produces [B, L, d] hidden states and [B, numItems] scores', () => {
    const model = createBaseModel(createSasrec(tiny), 1);
    const seq = tf.tensor2d([[0, 0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0, 9, 10]], [2, 8], 'int32');
    const h = sasrecForward(model.backbone.sasrec, model.params, model.weights, seq, INFERENCE);
    expect(h.shape).toEqual([2, 8, 16]);
    const s = model.scores(seq, tf.tensor1d([0, 1], 'int32'));
    expect(s.shape).toEqual([2, 10]);
    expect(Array.from(s.dataSync()).every(Number.isFinite)).toBe(true);
  });

  it('is causal: changing a later item leaves earlier positions unchanged', () => {
    const model = createBaseModel(createSasrec(tiny), 2);
    const c = model.backbone.sasrec;
    const a = tf.tensor2d([[0, 1, 2, 3, 4, 5, 6, 7]], [1, 8], 'int32');
    const b = tf.tensor2d([[0, 1, 2, 3, 4, 9, 6, 7]], [1, 8], 'int32'); // position 5 differs
    const ha = sasrecForward(c, model.params, model.weights, a, INFERENCE).arraySync()[0]!;
    const hb = sasrecForward(c, model.params, model.weights, b, INFERENCE).arraySync()[0]!;
    for (let p = 0; p < 5; p++) ha[p]!.forEach((v, j) => expect(hb[p]![j]).toBeCloseTo(v, 6));
    const diff = (p: number) => ha[p]!.reduce((m, v, j) => Math.max(m, Math.abs(v - hb[p]![j]!)), 0);
    expect(diff(5)).toBeGreaterThan(1e-3);
    expect(diff(7)).toBeGreaterThan(1e-3);
  });

  it('scores a window with its left padding cut as the full window (acceptsShortWindows)', () => {
    const model = createBaseModel(createSasrec(tiny), 4);
    expect(model.backbone.acceptsShortWindows).toBe(true);
    const users = tf.tensor1d([0, 1], 'int32');
    const full = model.scores(tf.tensor2d([[0, 0, 0, 0, 0, 3, 1, 4], [0, 0, 0, 0, 0, 0, 2, 7]], [2, 8], 'int32'), users).arraySync();
    const cut = model.scores(tf.tensor2d([[3, 1, 4], [0, 2, 7]], [2, 3], 'int32'), users).arraySync();
    full.forEach((row, b) => row.forEach((v, j) => expect(cut[b]![j]).toBeCloseTo(v, 5)));
    // Positions count from the right: the same items one slot further left score differently.
    const shifted = model.scores(tf.tensor2d([[3, 1, 4, 0]], [1, 4], 'int32'), tf.tensor1d([0], 'int32')).arraySync()[0]!;
    expect(Math.max(...shifted.map((v, j) => Math.abs(v - full[0]![j]!)))).toBeGreaterThan(1e-3);
  });

  it('reads the quantizable weights from the weights map, so CHORD can substitute them', () => {
    const model = createBaseModel(createSasrec(tiny), 4);
    const seq = tf.tensor2d([[0, 0, 1, 2, 3, 4, 5, 6]], [1, 8], 'int32');
    const users = tf.tensor1d([0], 'int32');
    const before = Array.from(model.scores(seq, users).dataSync());
    const replaced = { ...model.weights, 'block1.ffn.out': tf.zeros([16, 32]) };
    const after = model.backbone.scores(model.params, replaced, seq, users).dataSync();
    const maxDiff = before.reduce((m, v, i) => Math.max(m, Math.abs(v - after[i]!)), 0);
    expect(maxDiff).toBeGreaterThan(1e-4);
    expect(() => model.backbone.scores(model.params, {}, seq, users)).toThrow(/block0.attn.q/);
  });

  it('accepts per-example weights [B, out, in]: example k scores as with shared weights k', () => {
    const a = createBaseModel(createSasrec(tiny), 6);
    const b = createBaseModel(createSasrec(tiny), 7);
    const seq = tf.tensor2d([[0, 0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 7, 8, 9]], [2, 8], 'int32');
    const users = tf.tensor1d([0, 1], 'int32');
    // Example 0 uses a's weights, example 1 uses b's; the other parameters are a's.
    const { mixed, withA, withB } = perExampleScores(a, b, seq, users);
    mixed[0]!.forEach((v, j) => expect(v).toBeCloseTo(withA[0]![j]!, 4));
    mixed[1]!.forEach((v, j) => expect(v).toBeCloseTo(withB[1]![j]!, 4));
    expect(Math.abs(withA[1]![0]! - withB[1]![0]!)).toBeGreaterThan(1e-3);
  });

  it('refuses a layer tensor of neither the layer\'s shape nor [B, ...shape], and unknown layers', () => {
    const model = createBaseModel(createSasrec(tiny), 4);
    const seq = tf.tensor2d([[0, 0, 1, 2, 3, 4, 5, 6]], [1, 8], 'int32');
    const users = tf.tensor1d([0], 'int32');
    const flat = { ...model.weights, 'block0.ffn.in': tf.zeros([32 * 16]) };
    const err = (() => {
      try {
        model.backbone.scores(model.params, flat, seq, users);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(LayerWeightsError);
    expect((err as LayerWeightsError).code).toBe('MODEL_BAD_WEIGHTS');
    expect((err as Error).message).toMatch(/block0\.ffn\.in/);
    const layer = weightLayers(model.weights, model.backbone.layers());
    expect(() => layer('block9.attn.q', tf.zeros([1, 16]))).toThrow(LayerWeightsError);
  });
});

describe('SASRec training', () => {
  it('cuts training sequences into windows with next-item targets at every position', () => {
    const c = createSasrec({ ...tiny, maxLen: 4 }).sasrec;
    const ex = sasrecExamples(c, [Int32Array.from([1, 2, 3, 4, 5, 6, 7])], 0);
    // Targets 2..7 (6 of them) in windows of 4 ending at the last item: [4..7] and [2..3].
    expect(ex.count).toBe(2);
    expect(Array.from(ex.seq.subarray(0, 4))).toEqual([3, 4, 5, 6]);
    expect(Array.from(ex.targets.subarray(0, 4))).toEqual([4, 5, 6, 7]);
    expect(Array.from(ex.seq.subarray(4, 8))).toEqual([0, 0, 1, 2]);
    expect(Array.from(ex.targets.subarray(4, 8))).toEqual([0, 0, 2, 3]);
    const shifted = sasrecExamples(c, [Int32Array.from([1, 2, 3, 4, 5, 6, 7])], 1);
    expect(Array.from(shifted.targets.subarray(4, 8))).toEqual([0, 2, 3, 4]);
  });

  it('lowers the full-softmax loss on a tiny predictable dataset', () => {
    const model = createBaseModel(createSasrec(tiny), 5);
    const losses = fullBatchLosses(model, cyclicSequences(30, 10), 1e-2, 30);
    expect(losses[0]).toBeGreaterThan(Math.log(10) - 0.5);
    expect(losses[29]!).toBeLessThan(losses[0]! * 0.5);
  });
});
