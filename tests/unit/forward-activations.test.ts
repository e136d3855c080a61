/**
 * Activation fake-quantization (w3a3 and friends), the forward's input validation, and naive
 * full-window references: a literal transcription of the tfjs semantics (every padded position
 * computed, -1e9 attention bias, mask multiply; Caser as a valid 2-D convolution) with
 * activation quantization at the documented matmul inputs. They pin the placement of the
 * quantizers and show that the forward's shortcuts (padding skipped, last block on the last
 * position only) stay exact with per-token quantization on.
 */
import { describe, expect, it } from 'vitest';
import type { CaserDims, LayerSpec, SasrecDims } from '../../src/core/backbones.ts';
import { backboneLayers } from '../../src/core/backbones.ts';
import {
  SASREC_LN_EPS,
  createForward,
  quantizeActivations,
  rerank,
  scoreCandidates,
  topK,
  type LayerWeights,
} from '../../src/core/forward/index.ts';
import { layerNormRows, linearRows } from '../../src/core/forward/ops.ts';
import { generateLayerWeights } from '../../src/core/frozen.ts';
import { fakeQuantize } from '../../src/core/quantize.ts';
import type { TensorMap } from '../../src/core/tensor-file.ts';
import { codeOf } from '../fixtures/forward-error-code.ts';
import { mulberry32 } from '../fixtures/mulberry32.ts';
import { randomTensors } from '../fixtures/random-tensors.ts';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const NUM_ITEMS = 20;

function biasShapes(layers: readonly LayerSpec[]): Record<string, number[]> {
  return Object.fromEntries(layers.map((l) => [`${l.name}.bias`, [l.outChannels]]));
}

function quantizedWeights(layers: readonly LayerSpec[], seed: number, bits = 3): Map<string, Float32Array> {
  return new Map(layers.map((s) => [s.name, fakeQuantize(generateLayerWeights(seed, s), s.shape, bits)]));
}

function window(history: readonly number[], len: number): number[] {
  const tail = history.slice(-len);
  return [...new Array<number>(len - tail.length).fill(0), ...tail];
}

// ---------------------------------------------------------------- SASRec
const SAS: SasrecDims = { hidden: 8, heads: 2, blocks: 2, ffn: 12, maxLen: 6 };
const SAS_CONFIG = { backbone: 'sasrec', dims: SAS } as const;
const SAS_LAYERS = backboneLayers(SAS_CONFIG);

function sasrecTensors(seed: number): TensorMap {
  const d = SAS.hidden;
  const shapes: Record<string, number[]> = {
    item_emb: [NUM_ITEMS + 1, d],
    pos_emb: [SAS.maxLen, d],
    'final_ln.gamma': [d],
    'final_ln.beta': [d],
    ...biasShapes(SAS_LAYERS),
  };
  const offsets: Record<string, number> = { 'final_ln.gamma': 1 };
  for (let b = 0; b < SAS.blocks; b++) {
    for (const ln of ['ln_attn', 'ln_ffn']) {
      shapes[`block${b}.${ln}.gamma`] = [d];
      shapes[`block${b}.${ln}.beta`] = [d];
      offsets[`block${b}.${ln}.gamma`] = 1;
    }
  }
  return randomTensors(shapes, seed, offsets);
}

/** SASRec over the whole padded window exactly as src/model/sasrec.ts writes it. */
function naiveSasrec(tensors: TensorMap, weights: LayerWeights, history: number[], bits?: number): Float32Array {
  const { hidden: d, heads, blocks, ffn, maxLen: L } = SAS;
  const seq = window(history, L);
  const T = (n: string) => tensors.get(n)!.data;
  const W = (n: string) => weights.get(n)!;
  const q = (x: Float32Array, width: number) => (bits === undefined ? x : quantizeActivations(x, bits, width));
  const lin = (x: Float32Array, inDim: number, layer: string, outDim: number) => {
    const y = new Float32Array(L * outDim);
    linearRows(q(x, inDim), inDim, 0, L, W(layer), T(`${layer}.bias`), outDim, y);
    return y;
  };
  const ln = (x: Float32Array, name: string) => {
    const y = new Float32Array(L * d);
    layerNormRows(x, d, 0, L, T(`${name}.gamma`), T(`${name}.beta`), SASREC_LN_EPS, y);
    return y;
  };
  let x = new Float32Array(L * d);
  for (let t = 0; t < L; t++) {
    const mask = seq[t] === 0 ? 0 : 1;
    for (let j = 0; j < d; j++) x[t * d + j] = (T('item_emb')[seq[t]! * d + j]! * Math.sqrt(d) + T('pos_emb')[t * d + j]!) * mask;
  }
  const dh = d / heads;
  for (let b = 0; b < blocks; b++) {
    const n = `block${b}`;
    const qn = ln(x, `${n}.ln_attn`);
    const Q = lin(qn, d, `${n}.attn.q`, d);
    const K = lin(x, d, `${n}.attn.k`, d);
    const V = lin(x, d, `${n}.attn.v`, d);
    const merged = new Float32Array(L * d);
    for (let i = 0; i < L; i++) {
      for (let h = 0; h < heads; h++) {
        const s = Array.from({ length: L }, (_, j) => {
          let dot = 0;
          for (let c = 0; c < dh; c++) dot += Q[i * d + h * dh + c]! * K[j * d + h * dh + c]!;
          return dot / Math.sqrt(dh) + (j <= i && seq[j] !== 0 ? 0 : -1e9);
        });
        const m = Math.max(...s);
        const e = s.map((v) => Math.exp(v - m));
        const sum = e.reduce((a, v) => a + v, 0);
        for (let c = 0; c < dh; c++) {
          let acc = 0;
          for (let j = 0; j < L; j++) acc += e[j]! * V[j * d + h * dh + c]!;
          merged[i * d + h * dh + c] = acc / sum;
        }
      }
    }
    const a = lin(merged, d, `${n}.attn.out`, d);
    x = ln(qn.map((v, i) => v + a[i]!), `${n}.ln_ffn`);
    const f = lin(x, d, `${n}.ffn.in`, ffn).map((v) => Math.max(v, 0));
    const y = lin(f, ffn, `${n}.ffn.out`, d);
    x = x.map((v, i) => (v + y[i]!) * (seq[Math.floor(i / d)] === 0 ? 0 : 1));
  }
  return ln(x, 'final_ln').slice((L - 1) * d);
}

// ---------------------------------------------------------------- Caser
const CAS: CaserDims = { d: 6, L: 3, nv: 2, nh: 2, maxLen: 3 };
const CAS_CONFIG = { backbone: 'caser', dims: CAS } as const;
const CAS_LAYERS = backboneLayers(CAS_CONFIG);

function caserTensors(seed: number): TensorMap {
  const d = CAS.d;
  return randomTensors(
    {
      item_emb: [NUM_ITEMS + 1, d],
      user_emb: [4, d],
      out_emb: [NUM_ITEMS + 1, 2 * d],
      out_bias: [NUM_ITEMS + 1],
      ...biasShapes(CAS_LAYERS),
    },
    seed,
  );
}

/** Caser as valid 2-D convolutions over the [L, d] image, with per-tensor activation quantization. */
function naiveCaser(tensors: TensorMap, weights: LayerWeights, history: number[], bits?: number): Float32Array {
  const { d, L, nv, nh } = CAS;
  const T = (n: string) => tensors.get(n)!.data;
  const W = (n: string) => weights.get(n)!;
  const seq = window(history, L);
  let img: Float32Array = new Float32Array(L * d);
  seq.forEach((id, l) => id !== 0 && img.set(T('item_emb').subarray(id * d, id * d + d), l * d));
  if (bits !== undefined) img = quantizeActivations(img, bits);
  const at = (r: number, c: number) => img[r * d + c]!;
  // conv2d(img, kernel [kh, kw]) 'valid', one input channel.
  const conv = (w: Float32Array, o: number, kh: number, kw: number, r: number, c: number) => {
    let s = 0;
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) s += w[((o * 1 + 0) * kh + i) * kw + j]! * at(r + i, c + j);
    return s;
  };
  const feats: number[] = [];
  for (let f = 0; f < nv; f++) for (let c = 0; c < d; c++) feats.push(conv(W('conv.v'), f, L, 1, 0, c) + T('conv.v.bias')[f]!);
  for (let h = 1; h <= L; h++) {
    for (let o = 0; o < nh; o++) {
      let best = 0;
      for (let r = 0; r + h <= L; r++) best = Math.max(best, conv(W(`conv.h${h}`), o, h, d, r, 0) + T(`conv.h${h}.bias`)[o]!);
      feats.push(best);
    }
  }
  let z: Float32Array = Float32Array.from(feats);
  if (bits !== undefined) z = quantizeActivations(z, bits);
  const out = new Float32Array(2 * d);
  linearRows(z, z.length, 0, 1, W('fc1'), T('fc1.bias'), d, out);
  for (let j = 0; j < d; j++) out[j] = Math.max(out[j]!, 0);
  const users = T('user_emb');
  for (let j = 0; j < d; j++) out[d + j] = (users[j]! + users[d + j]! + users[2 * d + j]! + users[3 * d + j]!) / 4;
  return out;
}

const HISTORIES = [[1, 2, 3, 4, 5, 6], [7, 19], [20, 0, 3, 0, 9, 11], [5], [3, 4, 5, 6, 7, 8, 9, 10, 11]];

describe('quantizeActivations', () => {
  it('maps onto 2^bits levels between the exact min and max', () => {
    expect(Array.from(quantizeActivations(Float32Array.from([0, 1, 2, 3]), 2))).toEqual([0, 1, 2, 3]);
    expect(Array.from(quantizeActivations(Float32Array.from([-1, 0.2, 0.5, 1]), 1))).toEqual([-1, 1, 1, 1]);
    expect(Array.from(quantizeActivations(Float32Array.from([-1, -0.3, 0.5, 1]), 1))).toEqual([-1, -1, 1, 1]);
    expect(Array.from(quantizeActivations(Float32Array.from([2.5, 2.5]), 3))).toEqual([2.5, 2.5]);
  });

  it('per token: every row gets its own range', () => {
    const x = Float32Array.from([0, 1, 11, 20]);
    expect(Array.from(quantizeActivations(x, 1, 2))).toEqual([0, 1, 11, 20]);
    expect(Array.from(quantizeActivations(x, 1))).toEqual([0, 0, 20, 20]);
  });

  it('error is at most half a step, and at most 2^bits distinct values', () => {
    const rand = mulberry32(1);
    const x = Float32Array.from({ length: 257 }, () => (rand() - 0.3) * 7);
    for (const bits of [2, 3, 4, 8]) {
      const y = quantizeActivations(x, bits);
      const lo = Math.min(...x);
      const hi = Math.max(...x);
      expect(new Set(y).size).toBeLessThanOrEqual(2 ** bits);
      expect(Math.min(...y)).toBe(lo);
      expect(Math.max(...y)).toBe(hi);
      expect(maxAbsDiff(x, y)).toBeLessThanOrEqual(((hi - lo) / (2 ** bits - 1)) * 0.5 * (1 + 2 ** -12));
    }
  });

  it('rejects bad bits, a bad row length and non-finite activations', () => {
    expect(() => quantizeActivations(new Float32Array(4), 0)).toThrow(/bit width/);
    expect(codeOf(() => quantizeActivations(new Float32Array(4), 2, 3))).toBe('FORWARD_BAD_OPTION');
    expect(codeOf(() => quantizeActivations(Float32Array.from([1, NaN]), 2))).toBe('FORWARD_NON_FINITE');
    expect(codeOf(() => quantizeActivations(Float32Array.from([1, Infinity]), 2))).toBe('FORWARD_NON_FINITE');
  });
});

describe('SASRec: activation quantization and shortcuts against a full-window reference', () => {
  const tensors = sasrecTensors(3);
  const weights = quantizedWeights(SAS_LAYERS, 4);

  it.each([undefined, 8, 3, 2])('activationBits = %s', (bits) => {
    const fwd = createForward(SAS_CONFIG, tensors, weights, { activationBits: bits });
    for (const h of HISTORIES) expect(maxAbsDiff(fwd.represent(h), naiveSasrec(tensors, weights, h, bits))).toBeLessThan(1e-6);
  });

  it('a8 stays close to full precision, a2 does not; both differ from it', () => {
    const fp = createForward(SAS_CONFIG, tensors, weights).represent(HISTORIES[0]!);
    const a8 = createForward(SAS_CONFIG, tensors, weights, { activationBits: 8 }).represent(HISTORIES[0]!);
    const a2 = createForward(SAS_CONFIG, tensors, weights, { activationBits: 2 }).represent(HISTORIES[0]!);
    expect(maxAbsDiff(fp, a8)).toBeGreaterThan(0);
    expect(maxAbsDiff(fp, a8)).toBeLessThan(0.05);
    expect(maxAbsDiff(fp, a2)).toBeGreaterThan(10 * maxAbsDiff(fp, a8));
  });
});

describe('Caser: activation quantization against a 2-D convolution reference', () => {
  const tensors = caserTensors(5);
  const weights = quantizedWeights(CAS_LAYERS, 6);

  it.each([undefined, 8, 3])('activationBits = %s', (bits) => {
    const fwd = createForward(CAS_CONFIG, tensors, weights, { activationBits: bits });
    for (const h of HISTORIES) expect(maxAbsDiff(fwd.represent(h), naiveCaser(tensors, weights, h, bits))).toBeLessThan(1e-6);
  });
});

describe('forward input validation and buffers', () => {
  const tensors = sasrecTensors(7);
  const weights = quantizedWeights(SAS_LAYERS, 8);

  it('names a missing or misshapen tensor or layer', () => {
    const missing: TensorMap = new Map(tensors);
    missing.delete('block1.ln_ffn.beta');
    expect(codeOf(() => createForward(SAS_CONFIG, missing, weights))).toBe('FORWARD_MISSING_TENSOR');
    const bad: TensorMap = new Map(tensors);
    bad.set('pos_emb', { shape: [SAS.maxLen + 1, SAS.hidden], data: new Float32Array((SAS.maxLen + 1) * SAS.hidden) });
    expect(codeOf(() => createForward(SAS_CONFIG, bad, weights))).toBe('FORWARD_BAD_SHAPE');
    const fwd = createForward(SAS_CONFIG, tensors, weights);
    const noQ = new Map(weights);
    noQ.delete('block0.attn.q');
    expect(codeOf(() => fwd.setWeights(noQ))).toBe('FORWARD_MISSING_TENSOR');
    const shortQ = new Map(weights);
    shortQ.set('block0.attn.q', new Float32Array(3));
    expect(codeOf(() => fwd.setWeights(shortQ))).toBe('FORWARD_BAD_SHAPE');
    const caser = caserTensors(1);
    caser.delete('user_emb');
    expect(codeOf(() => createForward(CAS_CONFIG, caser, quantizedWeights(CAS_LAYERS, 1)))).toBe('FORWARD_MISSING_TENSOR');
  });

  it('rejects bad item ids, options and output buffers', () => {
    const fwd = createForward(SAS_CONFIG, tensors, weights);
    expect(codeOf(() => fwd.represent([1, NUM_ITEMS + 1]))).toBe('FORWARD_BAD_ITEM');
    expect(codeOf(() => fwd.represent([-1, 2]))).toBe('FORWARD_BAD_ITEM');
    expect(codeOf(() => fwd.represent([1.5]))).toBe('FORWARD_BAD_ITEM');
    expect(codeOf(() => fwd.represent([1], new Float32Array(3)))).toBe('FORWARD_BAD_OPTION');
    expect(codeOf(() => createForward(SAS_CONFIG, tensors, weights, { activationBits: 9 }))).toBe('FORWARD_BAD_OPTION');
    expect(codeOf(() => createForward(SAS_CONFIG, tensors, weights, { lnEps: 0 }))).toBe('FORWARD_BAD_OPTION');
    const caser = caserTensors(1);
    const cw = quantizedWeights(CAS_LAYERS, 1);
    expect(codeOf(() => createForward(CAS_CONFIG, caser, cw, { userEmbedding: { index: 4 } }))).toBe('FORWARD_BAD_OPTION');
    expect(codeOf(() => createForward(CAS_CONFIG, caser, cw, { userEmbedding: new Float32Array(5) }))).toBe(
      'FORWARD_BAD_OPTION',
    );
  });

  it('reuses the output buffer, and repeated calls do not leak state', () => {
    const fwd = createForward(SAS_CONFIG, tensors, weights);
    const out = new Float32Array(SAS.hidden);
    const first = Array.from(fwd.represent(HISTORIES[1]!));
    fwd.represent(HISTORIES[0]!, out);
    expect(fwd.represent(HISTORIES[1]!, out)).toBe(out);
    expect(Array.from(out)).toEqual(first);
  });

  it('rerank = represent + scoreCandidates + topK', () => {
    const fwd = createForward(SAS_CONFIG, tensors, weights);
    const ids = [4, 9, 1, 17, 12];
    const { scores, order } = rerank(fwd, HISTORIES[2]!, ids, 3);
    const expected = scoreCandidates(fwd.represent(HISTORIES[2]!), fwd.scoring, ids);
    expect(Array.from(scores)).toEqual(Array.from(expected));
    expect(Array.from(order)).toEqual(Array.from(topK(expected, 3)));
  });
});
