import { describe, expect, it } from 'vitest';
import {
  GruError,
  GruProfiler,
  gruForward,
  gruStep,
  gruWeightsFromTensors,
  itemEmbeddingsFromTensors,
  profileClicks,
} from '../../src/core/gru.ts';
import type { GruWeights, ItemEmbeddings } from '../../src/core/gru.ts';
import type { TensorMap } from '../../src/core/tensor-file.ts';
import { decodeTensorFile, encodeTensorFile } from '../../src/core/tensor-file.ts';

const LN3 = Math.log(3);
const f32 = (...v: number[]): Float32Array => Float32Array.from(v);

/** D = 1, H = 1: weight rows are [r, z, n]. */
function tiny(p: { ih?: number[]; hh?: number[]; bih?: number[]; bhh?: number[] }): GruWeights {
  return {
    inputDim: 1,
    hiddenDim: 1,
    weightIh: f32(...(p.ih ?? [0, 0, 0])),
    weightHh: f32(...(p.hh ?? [0, 0, 0])),
    biasIh: f32(...(p.bih ?? [0, 0, 0])),
    biasHh: f32(...(p.bhh ?? [0, 0, 0])),
  };
}

describe('gruStep (hand-computed, PyTorch equations)', () => {
  it('candidate only: h1 = tanh(1)/2, h2 = tanh(1)/2 + h1/2', () => {
    const w = tiny({ ih: [0, 0, 1] });
    // r = u = sigmoid(0) = 1/2, n = tanh(1 * x) with x = 1, h' = (1 - u) n + u h
    const h1 = gruStep(w, f32(0), f32(1));
    expect(h1[0]).toBeCloseTo(0.3807970779778824, 7);
    const h2 = gruStep(w, h1, f32(1));
    expect(h2[0]).toBeCloseTo(0.5711956169668236, 7);
    expect(gruForward(w, [f32(1), f32(1)])[0]).toBeCloseTo(0.5711956169668236, 7);
  });

  it('gate order r, z, n and r multiplies only the hidden part (W_hn h + b_hn)', () => {
    // r = sigmoid(ln 3) = 3/4, u = sigmoid(-ln 3) = 1/4, n = tanh(r * b_hn) = tanh(1.5)
    const w = tiny({ ih: [LN3, -LN3, 0], bhh: [0, 0, 2] });
    expect(gruStep(w, f32(0), f32(1))[0]).toBeCloseTo(0.75 * Math.tanh(1.5), 7);
    // The same 2 as b_in instead is not gated by r: n = tanh(2).
    const w2 = tiny({ ih: [LN3, -LN3, 0], bih: [0, 0, 2] });
    expect(gruStep(w2, f32(0), f32(1))[0]).toBeCloseTo(0.75 * Math.tanh(2), 7);
  });

  it('weight_hh rows are row-major [3H, H] (H = 2)', () => {
    // Rows: r0 r1 z0 z1 n0 n1, each [h0 h1]. r0 = sigmoid(ln3 * h1) = 0.9 at h = (1, 2),
    // u1 = sigmoid(ln3 * h0) = 0.75, n0 = tanh(r0 * h0) = tanh(0.9), n1 = 0.
    const w: GruWeights = {
      inputDim: 1,
      hiddenDim: 2,
      weightIh: new Float32Array(6),
      weightHh: f32(0, LN3, 0, 0, 0, 0, LN3, 0, 1, 0, 0, 0),
      biasIh: new Float32Array(6),
      biasHh: new Float32Array(6),
    };
    const h = gruStep(w, f32(1, 2), f32(0));
    expect(h[0]).toBeCloseTo(0.5 * Math.tanh(0.9) + 0.5 * 1, 6);
    expect(h[0]).toBeCloseTo(0.8581489350995122, 6);
    expect(h[1]).toBeCloseTo(0.75 * 2, 6);
  });

  it('rejects a wrong input width', () => {
    expect(() => gruStep(tiny({}), f32(0), f32(1, 2))).toThrow(GruError);
  });
});

/** Deterministic pseudo-random weights (no Math.random), D=4, H=3, 6 items. */
function smallModel(): { weights: GruWeights; embeddings: ItemEmbeddings } {
  let s = 12345;
  const rnd = (n: number): Float32Array =>
    Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 1.2);
  const D = 4;
  const H = 3;
  const emb = rnd(7 * D);
  emb.fill(0.25, 0, D); // padding row distinct from zero, so padShort matters
  return {
    weights: { inputDim: D, hiddenDim: H, weightIh: rnd(3 * H * D), weightHh: rnd(3 * H * H), biasIh: rnd(3 * H), biasHh: rnd(3 * H) },
    embeddings: { numItems: 6, dim: D, data: emb },
  };
}

describe('GruProfiler', () => {
  const { weights, embeddings } = smallModel();
  const clicks = [1, 2, 3, 4, 5, 6, 1, 1, 2, 6, 3, 5];

  it('window mode: every click equals the GRU from zero over the last N items', () => {
    const p = new GruProfiler(weights, embeddings, { window: 4 });
    clicks.forEach((item, t) => {
      const z = p.click(item);
      const expected = profileClicks(weights, embeddings, clicks.slice(0, t + 1), { window: 4 });
      for (let j = 0; j < 3; j++) expect(z[j]).toBeCloseTo(expected[j]!, 6);
    });
    expect(p.history()).toEqual([2, 6, 3, 5]);
    expect(p.clicks).toBe(clicks.length);
    // The reference really drops old clicks: z over the last 4 differs from z over all 12.
    const all = gruForward(weights, clicks.map((i) => embeddings.data.subarray(i * 4, i * 4 + 4)));
    expect(Math.abs(all[0]! - p.z[0]!) + Math.abs(all[1]! - p.z[1]!)).toBeGreaterThan(1e-4);
  });

  it('window mode with padShort: left-pads short histories with item 0', () => {
    const p = new GruProfiler(weights, embeddings, { window: 4, padShort: true });
    const padOnly = gruForward(weights, Array.from({ length: 4 }, () => embeddings.data.subarray(0, 4)));
    expect(Array.from(p.z)).toEqual(Array.from(padOnly));
    clicks.slice(0, 6).forEach((item, t) => {
      const z = p.click(item);
      const expected = profileClicks(weights, embeddings, clicks.slice(0, t + 1), { window: 4, padShort: true });
      for (let j = 0; j < 3; j++) expect(z[j]).toBeCloseTo(expected[j]!, 6);
    });
  });

  it('stream mode: one step per click over the whole history', () => {
    const p = new GruProfiler(weights, embeddings, { window: 4, mode: 'stream' });
    for (const c of clicks) p.click(c);
    const expected = gruForward(weights, clicks.map((i) => embeddings.data.subarray(i * 4, i * 4 + 4)));
    for (let j = 0; j < 3; j++) expect(p.z[j]).toBeCloseTo(expected[j]!, 6);
  });

  it('reset and setHistory', () => {
    const p = new GruProfiler(weights, embeddings, { window: 4 });
    const z = p.setHistory([3, 1, 2]);
    p.reset();
    expect(Array.from(p.z)).toEqual([0, 0, 0]);
    expect(p.history()).toEqual([]);
    expect(Array.from(p.setHistory([3, 1, 2]))).toEqual(Array.from(z));
  });

  it('rejects padding and out-of-range items', () => {
    const p = new GruProfiler(weights, embeddings);
    expect(() => p.click(0)).toThrow(GruError);
    expect(() => p.click(7)).toThrow(/outside 1..6/);
    expect(() => p.click(1.5)).toThrow(GruError);
  });

  it('loads from tensor artifacts (gru.* + item_emb) through the tensor file format', () => {
    const gru: TensorMap = new Map([
      ['gru.weight_ih', { shape: [9, 4], data: weights.weightIh }],
      ['gru.weight_hh', { shape: [9, 3], data: weights.weightHh }],
      ['gru.bias_ih', { shape: [9], data: weights.biasIh }],
      ['gru.bias_hh', { shape: [9], data: weights.biasHh }],
    ]);
    const backbone: TensorMap = new Map([['item_emb', { shape: [7, 4], data: embeddings.data }]]);
    const roundTrip = (m: TensorMap): TensorMap => {
      const { index, bin } = encodeTensorFile(m);
      return decodeTensorFile(JSON.parse(JSON.stringify(index)), bin);
    };
    const p = GruProfiler.fromTensors(roundTrip(gru), roundTrip(backbone), { window: 4 });
    const direct = new GruProfiler(weights, embeddings, { window: 4 });
    for (const c of clicks) expect(Array.from(p.click(c))).toEqual(Array.from(direct.click(c)));
    expect(itemEmbeddingsFromTensors(backbone).numItems).toBe(6);
  });

  it('rejects inconsistent GRU tensors with the tensor name', () => {
    const bad: TensorMap = new Map([
      ['gru.weight_ih', { shape: [9, 4], data: new Float32Array(36) }],
      ['gru.weight_hh', { shape: [9, 4], data: new Float32Array(36) }],
      ['gru.bias_ih', { shape: [9], data: new Float32Array(9) }],
      ['gru.bias_hh', { shape: [9], data: new Float32Array(9) }],
    ]);
    expect(() => gruWeightsFromTensors(bad)).toThrow(/gru\.weight_hh.*\[9,4\].*\[9,3\]/);
    bad.delete('gru.bias_hh');
    expect(() => gruWeightsFromTensors(bad)).toThrow(/gru\.bias_hh" is missing/);
    expect(() => new GruProfiler(weights, { numItems: 6, dim: 5, data: new Float32Array(35) })).toThrow(/D=5/);
  });
});
