/**
 * The pure-TypeScript forward (src/core/forward) equals the tfjs models of src/model in inference
 * mode, on tiny configs with every trained tensor randomised and random per-channel
 * fake-quantized weights, for full, left-padded, gapped, empty and over-long histories.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LayerSpec } from '../../src/core/backbones.ts';
import { generateLayerWeights } from '../../src/core/frozen.ts';
import {
  CaserForward,
  SASREC_LN_EPS,
  SasrecForward,
  createForward,
  dequantizeLayers,
  scoreCandidates,
} from '../../src/core/forward/index.ts';
import { packWeights } from '../../src/core/packing.ts';
import { fakeQuantize } from '../../src/core/quantize.ts';
import type { TensorMap } from '../../src/core/tensor-file.ts';
import { INFERENCE } from '../../src/model/backbone.ts';
import { caserForward, createCaser } from '../../src/model/caser.ts';
import { toTensorMap } from '../../src/model/checkpoint.ts';
import { createParams, type ParamMap, type WeightMap } from '../../src/model/params.ts';
import { Rng } from '../../src/core/rng.ts';
import { SASREC_DEFAULTS, createSasrec, sasrecForward } from '../../src/model/sasrec.ts';

const TOL = 1e-4;

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

/** The model's params from its own initialisers, then every value perturbed (norms, biases too). */
function randomParams(specs: Parameters<typeof createParams>[0], seed: number): ParamMap {
  const params = createParams(specs, new Rng(seed));
  let s = seed;
  for (const v of Object.values(params)) {
    v.assign(tf.tidy(() => tf.add(v, tf.randomNormal(v.shape, 0, 0.3, 'float32', ++s))));
  }
  return params;
}

/** Frozen weights of `seed`, fake-quantized with a random width from {2, 4, 6, 8} per channel. */
function quantizedWeights(layers: readonly LayerSpec[], seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  for (const spec of layers) {
    const bits = Uint8Array.from({ length: spec.outChannels }, () => [2, 4, 6, 8][rng.int(4)]!);
    out.set(spec.name, fakeQuantize(generateLayerWeights(seed, spec), spec.shape, bits));
  }
  return out;
}

function tfWeights(layers: readonly LayerSpec[], weights: Map<string, Float32Array>): WeightMap {
  const out: WeightMap = {};
  for (const spec of layers) out[spec.name] = tf.tensor(weights.get(spec.name)!, [...spec.shape]);
  return out;
}

/** The history's last `len` items, left-padded with 0: what the tfjs model is fed. */
function window(history: readonly number[], len: number): number[] {
  const tail = history.slice(-len);
  return [...new Array<number>(len - tail.length).fill(0), ...tail];
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function rows(t: tf.Tensor, width: number): Float32Array[] {
  const data = t.dataSync() as Float32Array;
  return Array.from({ length: data.length / width }, (_, i) => data.slice(i * width, (i + 1) * width));
}

const NUM_ITEMS = 30;
const ALL_IDS = Array.from({ length: NUM_ITEMS }, (_, i) => i + 1);

describe('SASRec forward = tfjs sasrecForward (inference)', () => {
  const backbone = createSasrec({ numItems: NUM_ITEMS, numUsers: 4, hidden: 16, heads: 2, blocks: 2, ffn: 24, maxLen: 8 });
  const c = backbone.sasrec;
  const histories: Record<string, number[]> = {
    full: [3, 17, 5, 30, 1, 9, 22, 14],
    padded: [12, 7, 25],
    single: [4],
    gap: [0, 6, 0, 0, 19, 2, 0, 11], // 0 inside: masked like padding
    longer: [8, 9, 10, 11, 3, 17, 5, 30, 1, 9, 22, 14],
    empty: [],
    lastPadded: [5, 6, 0],
  };

  it('uses the same layer-norm epsilon as the tfjs model', () => {
    expect(SASREC_LN_EPS).toBe(SASREC_DEFAULTS.lnEps);
  });

  it('matches representation and all-item scores, then again after setWeights', () => {
    const params = randomParams(backbone.paramSpecs(), 11);
    const tensors: TensorMap = toTensorMap(params);
    const layers = backbone.layers();
    const names = Object.keys(histories);
    const seq = tf.tensor2d(names.flatMap((n) => window(histories[n]!, c.maxLen)), [names.length, c.maxLen], 'int32');
    const users = tf.zeros([names.length], 'int32') as tf.Tensor1D;

    const wA = quantizedWeights(layers, 101);
    const fwd = createForward(backbone.config, tensors, wA);
    expect(fwd).toBeInstanceOf(SasrecForward);
    expect(fwd.repDim).toBe(16);
    expect(fwd.numItems).toBe(NUM_ITEMS);

    for (const wMap of [wA, quantizedWeights(layers, 202)]) {
      fwd.setWeights(wMap);
      const weights = tfWeights(layers, wMap);
      const hidden = sasrecForward(c, params, weights, seq, INFERENCE);
      const last = rows(hidden.slice([0, c.maxLen - 1, 0], [names.length, 1, c.hidden]), c.hidden);
      const scores = rows(backbone.scores(params, weights, seq, users), NUM_ITEMS);
      names.forEach((name, b) => {
        const rep = fwd.represent(histories[name]!);
        expect(maxAbsDiff(rep, last[b]!), name).toBeLessThan(TOL);
        expect(maxAbsDiff(scoreCandidates(rep, fwd.scoring, ALL_IDS), scores[b]!), name).toBeLessThan(TOL);
      });
      // A non-trivial check: different histories give different representations.
      expect(maxAbsDiff(last[0]!, last[1]!)).toBeGreaterThan(0.05);
    }
  });

  it('empty history and a padded last slot give final_ln.beta, as LN(0) does', () => {
    const params = randomParams(backbone.paramSpecs(), 12);
    const tensors = toTensorMap(params);
    const fwd = createForward(backbone.config, tensors, quantizedWeights(backbone.layers(), 5));
    const beta = tensors.get('final_ln.beta')!.data;
    expect(Array.from(fwd.represent([]))).toEqual(Array.from(beta));
    expect(Array.from(fwd.represent([1, 2, 0]))).toEqual(Array.from(beta));
  });

  it('packed layers, dequantized once, are the same weights the quantizer produced', () => {
    const layers = backbone.layers();
    const rng = new Rng(3);
    const packed = new Map(
      layers.map((spec) => {
        const bits = Uint8Array.from({ length: spec.outChannels }, () => [2, 4, 6, 8][rng.int(4)]!);
        const frozen = generateLayerWeights(9, spec);
        return [spec.name, { packed: packWeights(frozen, spec.shape, bits), fq: fakeQuantize(frozen, spec.shape, bits) }];
      }),
    );
    const deq = dequantizeLayers(new Map([...packed].map(([n, v]) => [n, v.packed])));
    for (const [name, v] of packed) expect(deq.get(name)).toEqual(v.fq);
  });
});

describe('Caser forward = tfjs caserForward (inference)', () => {
  const backbone = createCaser({ numItems: NUM_ITEMS, numUsers: 5, L: 4, hidden: 16, nv: 2, nh: 3 });
  const c = backbone.caser;
  const cases: Array<{ name: string; history: number[]; user: number }> = [
    { name: 'full', history: [3, 17, 5, 30], user: 0 },
    { name: 'padded', history: [12, 7], user: 3 },
    { name: 'single', history: [4], user: 1 },
    { name: 'gap', history: [6, 0, 19, 2], user: 2 },
    { name: 'longer', history: [8, 9, 10, 11, 3, 17, 5], user: 4 },
    { name: 'empty', history: [], user: 0 },
  ];

  it('matches [fc1 ; user_emb] and all-item scores for training users', () => {
    const params = randomParams(backbone.paramSpecs(), 21);
    const tensors = toTensorMap(params);
    const layers = backbone.layers();
    const wMap = quantizedWeights(layers, 303);
    const weights = tfWeights(layers, wMap);
    const seq = tf.tensor2d(cases.flatMap((k) => window(k.history, c.L)), [cases.length, c.L], 'int32');
    const users = tf.tensor1d(cases.map((k) => k.user), 'int32');
    const ctx = rows(caserForward(c, params, weights, seq, users, INFERENCE), 2 * c.hidden);
    const scores = rows(backbone.scores(params, weights, seq, users), NUM_ITEMS);
    cases.forEach((k, b) => {
      const fwd = createForward(backbone.config, tensors, wMap, { userEmbedding: { index: k.user } });
      expect(fwd).toBeInstanceOf(CaserForward);
      const rep = fwd.represent(k.history);
      expect(maxAbsDiff(rep, ctx[b]!), k.name).toBeLessThan(TOL);
      expect(maxAbsDiff(scoreCandidates(rep, fwd.scoring, ALL_IDS), scores[b]!), k.name).toBeLessThan(TOL);
    });
    // The convolutions see the items: the fc1 halves of different windows differ.
    expect(maxAbsDiff(ctx[0]!.subarray(0, 16), ctx[1]!.subarray(0, 16))).toBeGreaterThan(0.01);
  });

  it('anonymous shopper: mean user embedding by default, user_emb_mean when shipped, or zero', () => {
    const params = randomParams(backbone.paramSpecs(), 22);
    const tensors = toTensorMap(params);
    const wMap = quantizedWeights(backbone.layers(), 304);
    const history = [3, 17, 5, 30];
    const d = c.hidden;
    const mean = Array.from(tf.mean(params['user_emb']!, 0).dataSync());
    const byUser = createForward(backbone.config, tensors, wMap, { userEmbedding: { index: 0 } }).represent(history);

    const repMean = createForward(backbone.config, tensors, wMap).represent(history);
    expect(maxAbsDiff(repMean.subarray(0, d), byUser.subarray(0, d))).toBe(0);
    expect(maxAbsDiff(repMean.subarray(d), mean)).toBeLessThan(1e-6);

    const shipped = new Float32Array(d).fill(0.25);
    const withShipped: TensorMap = new Map(tensors);
    withShipped.set('user_emb_mean', { shape: [d], data: shipped });
    withShipped.delete('user_emb'); // the page need not download the per-user table
    expect(Array.from(createForward(backbone.config, withShipped, wMap).represent(history).subarray(d))).toEqual(
      Array.from(shipped),
    );

    const repZero = createForward(backbone.config, tensors, wMap, { userEmbedding: 'zero' }).represent(history);
    expect(Array.from(repZero.subarray(d))).toEqual(new Array(d).fill(0));
    expect(maxAbsDiff(repZero.subarray(0, d), byUser.subarray(0, d))).toBe(0);
  });
});
