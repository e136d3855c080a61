/**
 * The tfjs training models and the pure-TS inference forwards of src/core/forward must compute
 * the same scores from the same tensors: that is what lets a trained checkpoint run on the page.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { CaserForward, SasrecForward, scoreCandidates } from '../../src/core/forward/index.ts';
import { initBackend } from '../../src/model/backend.ts';
import { createCaser } from '../../src/model/caser.ts';
import { toTensorMap } from '../../src/model/checkpoint.ts';
import { writeLastWindow } from '../../src/model/batches.ts';
import { createBaseModel } from '../../src/model/model.ts';
import type { ParamMap } from '../../src/model/params.ts';
import { createSasrec } from '../../src/model/sasrec.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

/** Moves every always-trained parameter off its init (gammas 1, biases 0 would hide bugs). */
function perturb(params: ParamMap): void {
  Object.values(params).forEach((v, i) => v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.3, 'float32', 100 + i))));
}

function layerWeights(weights: ParamMap): Map<string, Float32Array> {
  return new Map(Object.entries(weights).map(([n, v]) => [n, Float32Array.from(v.dataSync())]));
}

const allItems = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('tfjs model vs src/core/forward', () => {
  it('SASRec: same scores for full, short and overlong histories', () => {
    const dims = { hidden: 16, heads: 2, blocks: 2, ffn: 32, maxLen: 8 };
    const model = createBaseModel(createSasrec({ numItems: 12, numUsers: 3, ...dims }), 21);
    perturb(model.params);
    const fwd = new SasrecForward(dims, toTensorMap(model.params), layerWeights(model.weights));
    const histories = [[3, 1, 4, 1, 5, 9, 2, 6], [7, 12], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]];
    const seq = new Int32Array(histories.length * 8);
    histories.forEach((h, k) => writeLastWindow(h, 8, seq, k * 8));
    const ours = model.scores(tf.tensor2d(seq, [3, 8], 'int32'), tf.tensor1d([0, 1, 2], 'int32')).arraySync();
    histories.forEach((h, k) => {
      const core = scoreCandidates(fwd.represent(h), fwd.scoring, allItems(12));
      core.forEach((v, j) => expect(ours[k]![j]).toBeCloseTo(v, 3));
    });
    expect(Math.max(...ours[0]!) - Math.min(...ours[0]!)).toBeGreaterThan(0.1);
  });

  it('Caser: same scores for a training user (user embedding row u)', () => {
    const dims = { d: 8, L: 4, nv: 2, nh: 3, maxLen: 4 };
    const model = createBaseModel(createCaser({ numItems: 12, numUsers: 3, hidden: 8, L: 4, nv: 2, nh: 3 }), 22);
    perturb(model.params);
    const tensors = toTensorMap(model.params);
    const histories = [[3, 1, 4, 1], [7], [1, 2, 3, 4, 5, 6]];
    const seq = new Int32Array(histories.length * 4);
    histories.forEach((h, k) => writeLastWindow(h, 4, seq, k * 4));
    const ours = model.scores(tf.tensor2d(seq, [3, 4], 'int32'), tf.tensor1d([0, 1, 2], 'int32')).arraySync();
    histories.forEach((h, u) => {
      const fwd = new CaserForward(dims, tensors, layerWeights(model.weights), { userEmbedding: { index: u } });
      const core = scoreCandidates(fwd.represent(h), fwd.scoring, allItems(12));
      core.forEach((v, j) => expect(ours[u]![j]).toBeCloseTo(v, 3));
    });
    expect(Math.max(...ours[0]!) - Math.min(...ours[0]!)).toBeGreaterThan(0.1);
  });
});
