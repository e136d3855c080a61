/**
 * The backbone forwards' layer hook (src/model/layers.ts), through which CHORD plugs in its
 * quantized layers: every quantizable matmul goes through it; and the forwards against core's CPU
 * forward, including where activation quantization (w3a3) sits.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LayerSpec } from '../../src/core/backbones.ts';
import { createForward } from '../../src/core/forward/index.ts';
import type { TensorMap } from '../../src/core/tensor-file.ts';
import { INFERENCE } from '../../src/model/backbone.ts';
import { initBackend } from '../../src/model/backend.ts';
import { caserScores, createCaser } from '../../src/model/caser.ts';
import { weightLayers, type LayerFn } from '../../src/model/layers.ts';
import { createBaseModel } from '../../src/model/model.ts';
import { fakeQuantActivations } from '../../src/model/nn.ts';
import { Rng } from '../../src/core/rng.ts';
import { createSasrec, sasrecScores } from '../../src/model/sasrec.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

function jitter(params: Record<string, tf.Variable>, seed: number, scale = 0.2): void {
  const rng = new Rng(seed);
  for (const v of Object.values(params)) v.assign(tf.tensor(Float32Array.from(v.dataSync(), (x) => x + (rng.next() - 0.5) * scale), v.shape));
}

function host(vars: Record<string, tf.Variable>): TensorMap {
  return new Map(Object.entries(vars).map(([k, v]) => [k, { shape: [...v.shape], data: new Float32Array(v.dataSync()) }]));
}

const seqData = [0, 0, 0, 3, 7, 1, 9, 2, 0, 4, 5, 6, 7, 8, 9, 10, 0, 0, 0, 0, 0, 0, 0, 11];

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * The fp32 hook of `weights`, and a spy around it that records which layers a forward applied and
 * checks they are each layer of `specs` once, on inputs of the layer's row length.
 */
function hookSpy(weights: Record<string, tf.Tensor>, specs: readonly LayerSpec[]) {
  const fp32 = weightLayers(weights, specs);
  const calls: Array<[string, number]> = [];
  const spy: LayerFn = (name, x) => {
    calls.push([name, x.shape[x.rank - 1]!]);
    return fp32(name, x);
  };
  const expectEveryLayerOnce = () => {
    expect(calls.map(([n]) => n).sort()).toEqual(specs.map((l) => l.name).sort());
    for (const [name, inDim] of calls) expect(inDim).toBe(specs.find((l) => l.name === name)!.rowLength);
  };
  return { fp32, spy, expectEveryLayerOnce };
}

describe('SASRec', () => {
  const config = { numItems: 12, numUsers: 3, maxLen: 8, hidden: 8, heads: 2, blocks: 2, ffn: 16, dropout: 0.3 };

  it('applies every quantizable layer through the hook, once per forward, on inputs of its row length', () => {
    const base = createBaseModel(createSasrec(config), 4);
    jitter(base.params, 5);
    const seq = tf.tensor2d(seqData, [3, 8], 'int32');
    const users = tf.tensor1d([0, 1, 2], 'int32');
    const bb = base.backbone;
    const { fp32, spy, expectEveryLayerOnce } = hookSpy(base.weights, bb.layers());
    const scores = bb.scoresWith(base.params, spy, seq, users).dataSync();
    expectEveryLayerOnce();
    expect(Array.from(scores)).toEqual(Array.from(base.scores(seq, users).dataSync()));
    // The hook's output is what the forward uses: zeroing one layer moves the scores.
    const zeroed: LayerFn = (name, x) => (name === 'block1.ffn.out' ? tf.zerosLike(fp32(name, x)) : fp32(name, x));
    expect(maxDiff(bb.scoresWith(base.params, zeroed, seq, users).dataSync(), scores)).toBeGreaterThan(1e-3);
  });

  it('w3a3: activation quantization sits where core SasrecForward puts it', () => {
    const base = createBaseModel(createSasrec({ ...config, dropout: 0 }), 6);
    jitter(base.params, 7, 0.5);
    const c = base.backbone.sasrec;
    const tensors = host(base.params);
    const weights = new Map([...host(base.weights)].map(([k, v]) => [k, v.data]));
    const seq = tf.tensor2d(seqData, [3, 8], 'int32');
    const ours = (bits?: number) => {
      const layer = weightLayers(base.weights, base.backbone.layers());
      return sasrecScores(c, base.params, layer, seq, bits).dataSync();
    };
    const coreScores = (bits?: number) => {
      const fwd = createForward(base.backbone.config, tensors, weights, bits === undefined ? {} : { activationBits: bits });
      const out: number[] = [];
      for (let u = 0; u < 3; u++) {
        const rep = fwd.represent(seqData.slice(u * 8, u * 8 + 8));
        for (let i = 1; i <= 12; i++) {
          let s = 0;
          for (let j = 0; j < 8; j++) s += rep[j]! * tensors.get('item_emb')!.data[i * 8 + j]!;
          out.push(s);
        }
      }
      return out;
    };
    expect(maxDiff(ours(), coreScores())).toBeLessThan(1e-4);
    // 8 bits: the training quantizer's plain step and core's restricted f32 step agree closely.
    const q8 = maxDiff(ours(8), coreScores(8));
    const q3 = maxDiff(ours(3), coreScores(3));
    const off3 = maxDiff(coreScores(3), coreScores());
    expect(q8).toBeLessThan(2e-3);
    expect(off3).toBeGreaterThan(0.05); // 3-bit activations visibly change the scores ...
    expect(q3).toBeLessThan(Math.min(off3 / 50, 1e-3)); // ... and ours follows core's placement
  });
});

describe('Caser', () => {
  const config = { numItems: 12, numUsers: 3, L: 4, hidden: 8, nv: 2, nh: 3, dropout: 0.4 };
  const caserSeq = [0, 3, 7, 1, 4, 5, 6, 7, 0, 0, 0, 11];

  it('applies every quantizable layer through the hook, once per forward, on inputs of its row length', () => {
    const base = createBaseModel(createCaser(config), 4);
    jitter(base.params, 8);
    const seq = tf.tensor2d(caserSeq, [3, 4], 'int32');
    const users = tf.tensor1d([2, 0, 1], 'int32');
    const bb = base.backbone;
    const { fp32, spy, expectEveryLayerOnce } = hookSpy(base.weights, bb.layers());
    const batch = { seq, users, targetRows: tf.tensor1d([0, 1, 2], 'int32'), targetCols: tf.tensor1d([4, 5, 6], 'int32') };
    const loss = bb.lossWith(base.params, spy, batch, INFERENCE).dataSync()[0];
    expectEveryLayerOnce();
    expect(loss).toBe(base.loss(batch, INFERENCE).dataSync()[0]);
    const zeroed: LayerFn = (name, x) => (name === 'conv.v' ? tf.zerosLike(fp32(name, x)) : fp32(name, x));
    expect(maxDiff(bb.scoresWith(base.params, zeroed, seq, users).dataSync(), base.scores(seq, users).dataSync())).toBeGreaterThan(1e-4);
  });

  it('w3a3: per-example quantization of the embedding image and of fc1\'s input, as core CaserForward', () => {
    const base = createBaseModel(createCaser({ ...config, dropout: 0 }), 9);
    jitter(base.params, 10, 0.5);
    const c = base.backbone.caser;
    const tensors = host(base.params);
    const weights = new Map([...host(base.weights)].map(([k, v]) => [k, v.data]));
    const seq = tf.tensor2d(caserSeq, [3, 4], 'int32');
    const users = tf.tensor1d([0, 1, 2], 'int32');
    const ours = (bits?: number) => caserScores(c, base.params, weightLayers(base.weights, base.backbone.layers()), seq, users, bits).dataSync();
    const coreScores = (bits?: number) => {
      const out: number[] = [];
      for (let u = 0; u < 3; u++) {
        const fwd = createForward(base.backbone.config, tensors, weights, { userEmbedding: { index: u }, ...(bits === undefined ? {} : { activationBits: bits }) });
        const rep = fwd.represent(caserSeq.slice(u * 4, u * 4 + 4));
        const { embeddings, bias } = fwd.scoring;
        for (let i = 1; i <= 12; i++) {
          let s = bias![i]!;
          for (let j = 0; j < 16; j++) s += rep[j]! * embeddings[i * 16 + j]!;
          out.push(s);
        }
      }
      return out;
    };
    expect(maxDiff(ours(), coreScores())).toBeLessThan(1e-4);
    const off3 = maxDiff(coreScores(3), coreScores());
    expect(off3).toBeGreaterThan(1e-3);
    expect(maxDiff(ours(3), coreScores(3))).toBeLessThan(off3 / 5);
  });
});

describe('fakeQuantActivations', () => {
  it('quantizes each group to 2^bits levels between its min and max and passes gradients straight through', () => {
    const x = tf.tensor2d([0, 1, 2, 3, 4, 5, 6, 7, -1, -1, -1, -1, -1, -1, -1, -1], [2, 8]);
    const y = fakeQuantActivations(x, 2, 1).dataSync();
    // Row 0: range [0, 7], step 7/3: codes round(x / (7/3)).
    expect(Array.from(y.subarray(0, 8)).map((v) => +v.toFixed(4))).toEqual([0, 0, 2.3333, 2.3333, 4.6667, 4.6667, 7, 7]);
    expect(Array.from(y.subarray(8))).toEqual(new Array(8).fill(-1)); // constant row unchanged
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(fakeQuantActivations(t, 2, 1), tf.range(0, 16).reshape([2, 8]))))(x).dataSync();
    expect(Array.from(g)).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });
});
