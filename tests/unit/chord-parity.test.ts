/**
 * The tfjs training forms of the hypernets and the profiler GRU against the inference forms in
 * src/core that the strategy server and the page run: same tensor names, same shapes, same
 * numbers; and the hard strategies chosen during training equal core's Hypernet.strategy.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { channelScores } from '../../src/core/allocation.ts';
import { generateFrozenWeights } from '../../src/core/frozen.ts';
import { GruProfiler, gruWeightsFromTensors, itemEmbeddingsFromTensors, profileClicks } from '../../src/core/gru.ts';
import { Hypernet, parseHypernetConfig } from '../../src/core/hypernet.ts';
import type { HypernetMethod } from '../../src/core/methods.ts';
import type { TensorMap } from '../../src/core/tensor-file.ts';
import { initBackend } from '../../src/model/backend.ts';
import { createGruParams, gruBatchForward, gruTensors } from '../../src/model/chord/gru.ts';
import {
  createHypernetParams,
  hypernetConfig,
  hypernetForward,
  hypernetTensors,
  type HypernetShape,
} from '../../src/model/chord/hypernet.ts';
import { CHORD_DEFAULTS, createChordModel } from '../../src/model/chord/model.ts';
import { Rng } from '../../src/core/rng.ts';
import { createSasrec } from '../../src/model/sasrec.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const layers = [
  { name: 'block0.attn.q', outChannels: 8, rowLength: 8 },
  { name: 'block0.ffn.in', outChannels: 16, rowLength: 8 },
  { name: 'block0.ffn.out', outChannels: 8, rowLength: 16 },
];

function randomZ(batch: number, zDim: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: batch * zDim }, () => rng.next() * 2 - 1);
}

/** Perturbs every variable so the check does not rest on the special initial biases. */
function jitter(params: Record<string, tf.Variable>, seed: number): void {
  const rng = new Rng(seed);
  for (const v of Object.values(params)) {
    const d = Float32Array.from(v.dataSync(), (x) => x + (rng.next() - 0.5) * 0.6);
    v.assign(tf.tensor(d, v.shape));
  }
}

describe('hypernet parity with core', () => {
  for (const method of ['custom', 'weighted', 'chord'] as HypernetMethod[]) {
    it(`${method}: core tensor names/shapes and the same α_F/α_E/α_L and channel scores`, () => {
      const shape: HypernetShape = { method, zDim: 6, hidden: 5, rank: 2, layers };
      const params = createHypernetParams(shape, 3);
      jitter(params, 4);
      const config = hypernetConfig(shape, { levelTable: [2, 4, 6, 8], beta: 0.125, lambda: { up: 1, down: 1 } });
      expect(parseHypernetConfig(JSON.parse(JSON.stringify(config)))).toEqual(config);
      const tensors = hypernetTensors(shape, params);
      const core = new Hypernet(config, tensors); // throws on any missing name or wrong shape
      const names = [...tensors.keys()].sort();
      expect(names).toContain('hyper.trunk.w');
      expect(names.some((n) => n.startsWith('hyper.E.'))).toBe(method !== 'custom');
      expect(names.includes('hyper.L.w')).toBe(method === 'chord');
      expect(tensors.get('hyper.F.block0.ffn.in.w')!.shape).toEqual([16, 5]);

      const batch = 3;
      const z = randomZ(batch, 6, 7);
      const out = hypernetForward(shape, params, tf.tensor2d(z, [batch, 6]));
      const scores = out.scores.map((s) => s.dataSync());
      const alphaL = out.alphaL.dataSync();
      for (let b = 0; b < batch; b++) {
        const s = core.sensitivities(z.subarray(b * 6, (b + 1) * 6));
        layers.forEach((ly, l) => {
          const want = channelScores(s.alphaF[l]!, s.alphaE[l]!, ly.outChannels, ly.rowLength);
          const got = scores[l]!.subarray(b * ly.outChannels, (b + 1) * ly.outChannels);
          for (let c = 0; c < ly.outChannels; c++) expect(got[c]).toBeCloseTo(want[c]!, 5);
        });
        for (let l = 0; l < layers.length; l++) expect(alphaL[b * layers.length + l]).toBeCloseTo(s.alphaL[l]!, 5);
      }
    });
  }
});

describe('z standardization (--z-norm)', () => {
  const shape: HypernetShape = { method: 'chord', zDim: 6, hidden: 5, rank: 2, layers, zNorm: true };
  const config = hypernetConfig(shape, { levelTable: [2, 4, 6, 8], beta: 0.125, lambda: { up: 1, down: 1 } });
  const scoresOf = (out: ReturnType<typeof hypernetForward>) => out.scores.map((t) => Array.from(t.dataSync()));

  it('the export folds the running statistics into the trunk: core scores what the training model scores after training', () => {
    const params = createHypernetParams(shape, 3);
    jitter(params, 5); // running mean ≈ ±0.3, variance 0.7..1.3
    const tensors = hypernetTensors(shape, params);
    // Core's names and nothing else: the statistics live in the trunk.
    expect([...tensors.keys()].some((n) => n.startsWith('hyper.z.'))).toBe(false);
    const core = new Hypernet(config, tensors);
    const batch = 3;
    const z = randomZ(batch, 6, 8);
    const out = hypernetForward(shape, params, tf.tensor2d(z, [batch, 6]));
    const scores = scoresOf(out);
    for (let b = 0; b < batch; b++) {
      const s = core.sensitivities(z.subarray(b * 6, (b + 1) * 6));
      layers.forEach((ly, l) => {
        const want = channelScores(s.alphaF[l]!, s.alphaE[l]!, ly.outChannels, ly.rowLength);
        for (let c = 0; c < ly.outChannels; c++) expect(scores[l]![b * ly.outChannels + c]).toBeCloseTo(want[c]!, 5);
      });
    }
  });

  it('a training forward standardizes by the batch and moves the running statistics toward it', () => {
    const params = createHypernetParams(shape, 3);
    const batch = 4;
    // z saturated as the page GRU's is: every user near the same corner, small differences.
    const rng = new Rng(9);
    const z = Float32Array.from({ length: batch * 6 }, (_, i) => (i % 2 ? 0.95 : -0.95) + (rng.next() - 0.5) * 0.04);
    const training = scoresOf(hypernetForward(shape, params, tf.tensor2d(z, [batch, 6]), true));
    const mean = params['hyper.z.mean']!.dataSync();
    const variance = params['hyper.z.var']!.dataSync();
    const batchMean = Array.from({ length: 6 }, (_, c) => Array.from({ length: batch }, (_, b) => z[b * 6 + c]!).reduce((a, x) => a + x, 0) / batch);
    const batchVar = batchMean.map((m, c) => Array.from({ length: batch }, (_, b) => (z[b * 6 + c]! - m) ** 2).reduce((a, x) => a + x, 0) / batch);
    for (let c = 0; c < 6; c++) {
      expect(mean[c]).toBeCloseTo(0.05 * batchMean[c]!, 6);
      expect(variance[c]).toBeCloseTo(1 + 0.05 * (batchVar[c]! - 1), 6);
    }
    // With the running statistics set to the batch's, the evaluation forward scores alike.
    params['hyper.z.mean']!.assign(tf.tensor1d(batchMean));
    params['hyper.z.var']!.assign(tf.tensor1d(batchVar));
    const evaluation = scoresOf(hypernetForward(shape, params, tf.tensor2d(z, [batch, 6])));
    training.forEach((layer, l) => layer.forEach((v, i) => expect(v).toBeCloseTo(evaluation[l]![i]!, 4)));
    // Standardized, the users' small differences reach the scores: without it they barely do.
    // The largest difference between two users' scores of a channel of the first layer.
    const channels = layers[0]!.outChannels;
    const spread = (sc: number[][]) =>
      Math.max(...Array.from({ length: channels }, (_, c) => {
        const users = Array.from({ length: batch }, (_, b) => sc[0]![b * channels + c]!);
        return Math.max(...users) - Math.min(...users);
      }));
    const plain = scoresOf(hypernetForward({ ...shape, zNorm: false }, params, tf.tensor2d(z, [batch, 6])));
    expect(spread(training)).toBeGreaterThan(spread(plain));
  });
});

describe('GRU parity with core GruProfiler', () => {
  it('matches the page profiler (window mode) on short, exact and long histories', () => {
    const numItems = 12;
    const D = 6;
    const rng = new Rng(11);
    const emb = Float32Array.from({ length: (numItems + 1) * D }, () => rng.next() - 0.5);
    emb.fill(0, 0, D); // padding row
    const params = createGruParams(D, 4, 5);
    jitter(params, 6);
    const gruMap = gruTensors(params);
    expect([...gruMap.keys()]).toEqual(['gru.weight_ih', 'gru.weight_hh', 'gru.bias_ih', 'gru.bias_hh']);
    expect(gruMap.get('gru.weight_ih')!.shape).toEqual([12, 6]);
    const backbone: TensorMap = new Map([['item_emb', { shape: [numItems + 1, D], data: emb }]]);
    const window = 5;
    const histories = [[3], [1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 7, 8, 9, 12], [9, 9, 10]];
    const windows = new Int32Array(histories.length * window);
    histories.forEach((h, i) => {
      const last = h.slice(-window);
      windows.set(last, i * window + window - last.length);
    });
    const z = gruBatchForward(params, tf.tensor2d(emb, [numItems + 1, D]), tf.tensor2d(windows, [histories.length, window], 'int32')).dataSync();
    const profiler = GruProfiler.fromTensors(gruMap, backbone, { window });
    histories.forEach((h, i) => {
      const want = profiler.setHistory(h);
      const ref = profileClicks(gruWeightsFromTensors(gruMap), itemEmbeddingsFromTensors(backbone), h, { window });
      for (let j = 0; j < 4; j++) {
        expect(z[i * 4 + j]).toBeCloseTo(want[j]!, 5);
        expect(ref[j]).toBeCloseTo(want[j]!, 6);
      }
    });
  });
});

describe('training strategies equal the deployment strategies', () => {
  it('model.allocate (tfjs GRU + hypernet + core Γ/Λ) = core GRU -> Hypernet.strategy', () => {
    const bb = createSasrec({ numItems: 30, numUsers: 5, maxLen: 8, hidden: 8, heads: 2, blocks: 1, ffn: 16, dropout: 0 });
    const frozen = new Map(generateFrozenWeights({ seed: 2, layers: bb.layers() }).map((l) => [l.spec.name, l.weights]));
    const model = createChordModel(bb, frozen, { ...CHORD_DEFAULTS, method: 'chord', zDim: 6, hyperHidden: 8, gruWindow: 4, seed: 9 });
    jitter(model.hyper, 1);
    const windows = Int32Array.from([0, 0, 3, 4, 1, 2, 3, 4, 9, 30, 12, 7, 0, 0, 0, 5]);
    const alloc = model.allocate(tf.tensor2d(windows, [4, 4], 'int32'))!;
    const shape = model.hypernetShape!;
    const core = new Hypernet(
      hypernetConfig(shape, { levelTable: [2, 4, 6, 8], beta: 0.125, lambda: { up: 1, down: 1 } }),
      hypernetTensors(shape, model.hyper),
    );
    const backbone: TensorMap = new Map([['item_emb', { shape: [31, 8], data: new Float32Array(model.params['item_emb']!.dataSync()) }]]);
    const gru = gruWeightsFromTensors(gruTensors(model.gru));
    const distinct = new Set<string>();
    for (let b = 0; b < 4; b++) {
      const items = Array.from(windows.subarray(b * 4, (b + 1) * 4)).filter((i) => i > 0);
      const strategy = core.strategy(profileClicks(gru, itemEmbeddingsFromTensors(backbone), items, { window: 4 }));
      strategy.layers.forEach((ly, l) => {
        const C = ly.levels.length;
        expect(Array.from(alloc.levels[l]!.subarray(b * C, (b + 1) * C))).toEqual(Array.from(ly.levels));
      });
      distinct.add(strategy.layers.map((l) => l.levels.join('')).join('|'));
    }
    // Different histories give different strategies: the check is not comparing constants.
    expect(distinct.size).toBeGreaterThan(1);
    model.dispose();
  });
});
