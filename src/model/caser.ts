/**
 * Caser (Tang & Wang 2018) as a functional forward pass. The L x d embedding "image" of the last L
 * items goes through nv vertical filters (L x 1, no activation) and nh horizontal filters of each
 * height h = 1..L (h x d, ReLU, max-pooled over time); the concatenation is dropped out and fed to
 * fc1 (ReLU), concatenated with the user embedding and scored by a separate output item embedding
 * and bias, as in the paper. Trained with full softmax on sliding windows (next item).
 *
 * The convolutions are computed as matmuls: a horizontal filter spans the full width d, so it is a
 * linear map on each flattened h x d window, and a vertical filter is a linear map over the L rows.
 * Weights keep the conv shapes [out, in=1, kh, kw], whose row-major rows are exactly those
 * flattened windows, so the quantizer sees the conventional layout.
 */
import * as tf from '@tensorflow/tfjs';
import type { Backbone, BatchTensors, Examples, ForwardCtx } from './backbone.ts';
import { dropout, linear, mm, softmaxCrossEntropy } from './nn.ts';
import { backboneLayers, type BackboneConfig, type LayerSpec } from '../core/backbones.ts';
import { need, type ParamMap, type ParamSpec, type WeightMap } from './params.ts';

export interface CaserConfig {
  readonly numItems: number;
  readonly numUsers: number;
  /** Window length L. */
  readonly L: number;
  readonly hidden: number;
  readonly nv: number;
  readonly nh: number;
  readonly dropout: number;
}

export const CASER_DEFAULTS = { L: 5, hidden: 64, nv: 4, nh: 16, dropout: 0.5 } as const;

export function caserCoreConfig(c: CaserConfig): BackboneConfig {
  return { backbone: 'caser', dims: { d: c.hidden, L: c.L, nv: c.nv, nh: c.nh, maxLen: c.L } };
}

export function caserLayers(c: CaserConfig): LayerSpec[] {
  return backboneLayers(caserCoreConfig(c));
}

export function caserParamSpecs(c: CaserConfig): ParamSpec[] {
  const d = c.hidden;
  const specs: ParamSpec[] = [
    // Inits as in the authors' code: N(0, 1/d) embeddings, N(0, 1/2d) output embedding.
    { name: 'item_emb', shape: [c.numItems + 1, d], init: { kind: 'normal', std: 1 / d } },
    { name: 'user_emb', shape: [c.numUsers, d], init: { kind: 'normal', std: 1 / d } },
    { name: 'out_emb', shape: [c.numItems + 1, 2 * d], init: { kind: 'normal', std: 1 / (2 * d) } },
    { name: 'out_bias', shape: [c.numItems + 1], init: { kind: 'zeros' } },
  ];
  // Conv/linear biases use PyTorch's default init, U(+-1/sqrt(fan_in)) of the matching weight.
  for (const l of caserLayers(c)) {
    const fanIn = l.shape.slice(1).reduce((a, b) => a * b, 1);
    specs.push({ name: `${l.name}.bias`, shape: [l.shape[0]!], init: { kind: 'uniform', bound: 1 / Math.sqrt(fanIn) } });
  }
  return specs;
}

/** Context vector [B, 2d] = [fc1 output ; user embedding] for windows seq (int32 [B, L]). */
export function caserForward(
  c: CaserConfig,
  params: ParamMap,
  weights: WeightMap,
  seq: tf.Tensor2D,
  users: tf.Tensor1D,
  ctx: ForwardCtx,
): tf.Tensor2D {
  const [batch, len] = seq.shape;
  if (len !== c.L) throw new RangeError(`Caser window must have length ${c.L}, got ${len}`);
  const d = c.hidden;
  const p = (n: string) => need(params, n);
  const w = (n: string) => need(weights, n);
  const mask = tf.cast(tf.notEqual(seq, 0), 'float32').expandDims(2);
  const emb = tf.mul(tf.gather(p('item_emb'), seq), mask); // [B, L, d], padding rows zero
  // Layer weights are shared (conv shape) or per example ([B, ...conv shape]).
  const perExample = w('conv.v').rank === 5;
  const lead = perExample ? [batch] : [];
  // Vertical: out_v[b, f, j] = sum_l Wv[f, l] * emb[b, l, j] + bias[f]; flattened f-major.
  const vBias = p('conv.v.bias').reshape([c.nv, 1]);
  let outV: tf.Tensor;
  if (perExample) {
    outV = tf.add(mm(w('conv.v').reshape([batch, c.nv, c.L]), emb), vBias); // [B, nv, d]
  } else {
    const cols = emb.transpose([1, 0, 2]).reshape([c.L, batch * d]);
    const v = tf.add(mm(w('conv.v').reshape([c.nv, c.L]), cols), vBias); // [nv, B*d]
    outV = v.reshape([c.nv, batch, d]).transpose([1, 0, 2]);
  }
  outV = outV.reshape([batch, c.nv * d]);
  const pooled: tf.Tensor[] = [];
  for (let h = 1; h <= c.L; h++) {
    const nWin = c.L - h + 1;
    const windows: tf.Tensor[] = [];
    for (let i = 0; i < nWin; i++) windows.push(emb.slice([0, i, 0], [batch, h, d]).reshape([batch, h * d]));
    const stacked = tf.stack(windows, 1); // [B, nWin, h*d]: each row one flattened h x d window
    const wh = w(`conv.h${h}`).reshape([...lead, c.nh, h * d]);
    const conv = tf.relu(linear(stacked, wh, p(`conv.h${h}.bias`))); // [B, nWin, nh]
    pooled.push(tf.max(conv, 1));
  }
  let z: tf.Tensor = tf.concat([outV, ...pooled], 1);
  z = dropout(z, c.dropout, ctx.training, ctx.seed);
  z = tf.relu(linear(z, w('fc1'), p('fc1.bias')));
  return tf.concat([z, tf.gather(p('user_emb'), users)], 1) as tf.Tensor2D;
}

function outputTables(c: CaserConfig, params: ParamMap): { emb: tf.Tensor2D; bias: tf.Tensor1D } {
  return {
    emb: need(params, 'out_emb').slice([1, 0], [c.numItems, 2 * c.hidden]) as tf.Tensor2D,
    bias: need(params, 'out_bias').slice([1], [c.numItems]) as tf.Tensor1D,
  };
}

function caserLogits(c: CaserConfig, params: ParamMap, x: tf.Tensor2D): tf.Tensor2D {
  const { emb, bias } = outputTables(c, params);
  return tf.add(mm(x, emb, false, true), bias);
}

export function caserLoss(
  c: CaserConfig,
  params: ParamMap,
  weights: WeightMap,
  batch: BatchTensors,
  ctx: ForwardCtx,
): tf.Scalar {
  const x = caserForward(c, params, weights, batch.seq, batch.users, ctx);
  // One target slot per example, so targetRows indexes examples directly.
  const rows = tf.gather(x, batch.targetRows) as tf.Tensor2D;
  return softmaxCrossEntropy(caserLogits(c, params, rows), batch.targetCols);
}

/** Every next-item step p >= 1 of every user's training sequence, with its previous L items. */
export function caserExamples(c: CaserConfig, train: readonly Int32Array[]): Examples {
  let count = 0;
  for (const t of train) count += Math.max(0, t.length - 1);
  const L = c.L;
  const users = new Int32Array(count);
  const seq = new Int32Array(count * L);
  const targets = new Int32Array(count);
  let i = 0;
  train.forEach((t, u) => {
    for (let pIdx = 1; pIdx < t.length; pIdx++, i++) {
      users[i] = u;
      targets[i] = t[pIdx]!;
      for (let j = 0; j < L; j++) {
        const k = pIdx - L + j;
        if (k >= 0) seq[i * L + j] = t[k]!;
      }
    }
  });
  return { count, inputLen: L, targetsPer: 1, users, seq, targets };
}

export function createCaser(config: Partial<CaserConfig> & Pick<CaserConfig, 'numItems' | 'numUsers'>): Backbone & {
  readonly caser: CaserConfig;
} {
  const c: CaserConfig = { ...CASER_DEFAULTS, ...config };
  return {
    kind: 'caser',
    caser: c,
    config: caserCoreConfig(c),
    numItems: c.numItems,
    numUsers: c.numUsers,
    inputLen: c.L,
    layers: () => caserLayers(c),
    paramSpecs: () => caserParamSpecs(c),
    loss: (params, weights, batch, ctx) => caserLoss(c, params, weights, batch, ctx),
    scores: (params, weights, seq, users) =>
      caserLogits(c, params, caserForward(c, params, weights, seq, users, { training: false, seed: () => 0 })),
    examples: (train) => caserExamples(c, train),
  };
}
