/**
 * Caser (Tang & Wang 2018) as a functional forward pass. The L x d embedding "image" of the last L
 * items goes through nv vertical filters (L x 1, no activation) and nh horizontal filters of each
 * height h = 1..L (h x d, ReLU, max-pooled over time); the concatenation is dropped out and fed to
 * fc1 (ReLU), concatenated with the user embedding and scored by a separate output item embedding
 * and bias, as in the paper. Trained on sliding windows (next item) with full softmax or a sampled
 * loss (item-loss.ts).
 *
 * The convolutions are computed as matmuls: a horizontal filter spans the full width d, so it is a
 * linear map on each flattened h x d window, and a vertical filter is a linear map over the L rows.
 * Weights keep the conv shapes [out, in=1, kh, kw], whose row-major rows are exactly those
 * flattened windows, so the quantizer sees the conventional layout.
 */
import * as tf from '@tensorflow/tfjs';
import { INFERENCE, withWeightMaps, type Backbone, type BatchTensors, type Examples, type ForwardCtx } from './backbone.ts';
import { weightLayers, type LayerFn } from './layers.ts';
import { itemLoss } from './item-loss.ts';
import { dropout, fakeQuantActivations, mm } from './nn.ts';
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
  /**
   * 'table' (the paper's Caser): one trained user_emb row per training user. 'shared': a single
   * learned row for everyone, which is what the page has for a shopper (it has no row of its own;
   * the artifact ships user_emb_mean), so training then scores exactly as the deployment does.
   */
  readonly userEmbedding: 'table' | 'shared';
}

export const CASER_DEFAULTS = { L: 5, hidden: 64, nv: 4, nh: 16, dropout: 0.5, userEmbedding: 'table' } as const;

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
    { name: 'user_emb', shape: [c.userEmbedding === 'shared' ? 1 : c.numUsers, d], init: { kind: 'normal', std: 1 / d } },
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

/**
 * Context vector [B, 2d] = [fc1 output ; user embedding] for windows seq (int32 [B, L]), every
 * quantizable matmul through `layer`. With `activationBits`, activations are fake-quantized per
 * example ("per tensor" of one history), as src/core/forward does: the embedding image (input of
 * conv.v and every conv.h) and fc1's input.
 */
export function caserForwardWith(
  c: CaserConfig,
  params: ParamMap,
  layer: LayerFn,
  seq: tf.Tensor2D,
  users: tf.Tensor1D,
  ctx: ForwardCtx,
  activationBits?: number,
): tf.Tensor2D {
  const [batch, len] = seq.shape;
  if (len !== c.L) throw new RangeError(`Caser window must have length ${c.L}, got ${len}`);
  const d = c.hidden;
  const p = (n: string) => need(params, n);
  const aq = (x: tf.Tensor) => (activationBits === undefined ? x : fakeQuantActivations(x, activationBits, x.rank - 1));
  const mask = tf.cast(tf.notEqual(seq, 0), 'float32').expandDims(2);
  const emb = aq(tf.mul(tf.gather(p('item_emb'), seq), mask)); // [B, L, d], padding rows zero
  // Vertical: out_v[b, f, j] = sum_l Wv[f, l] * emb[b, l, j] + bias[f], a linear map over the L
  // rows, so it is applied to embᵀ [B, d, L]; flattened f-major.
  const v = layer('conv.v', emb.transpose([0, 2, 1])); // [B, d, nv]
  const outV = tf.add(v.transpose([0, 2, 1]), p('conv.v.bias').reshape([c.nv, 1])).reshape([batch, c.nv * d]);
  const pooled: tf.Tensor[] = [];
  for (let h = 1; h <= c.L; h++) {
    const windows: tf.Tensor[] = [];
    for (let i = 0; i + h <= c.L; i++) windows.push(emb.slice([0, i, 0], [batch, h, d]).reshape([batch, h * d]));
    // [B, nWin, h*d]: each row one flattened h x d window, i.e. one row of conv.h's weights.
    const stacked = tf.stack(windows, 1);
    const conv = tf.relu(tf.add(layer(`conv.h${h}`, stacked), p(`conv.h${h}.bias`))); // [B, nWin, nh]
    pooled.push(tf.max(conv, 1));
  }
  let z: tf.Tensor = tf.concat([outV, ...pooled], 1);
  z = dropout(z, c.dropout, ctx.training, ctx.seed);
  z = tf.relu(tf.add(layer('fc1', aq(z)), p('fc1.bias')));
  const u = c.userEmbedding === 'shared' ? tf.zerosLike(users) : users;
  return tf.concat([z, tf.gather(p('user_emb'), u)], 1) as tf.Tensor2D;
}

/** caserForwardWith on the fp32 layer weights of `weights` (shared or per example). */
export function caserForward(
  c: CaserConfig,
  params: ParamMap,
  weights: WeightMap,
  seq: tf.Tensor2D,
  users: tf.Tensor1D,
  ctx: ForwardCtx,
): tf.Tensor2D {
  return caserForwardWith(c, params, weightLayers(weights, caserLayers(c)), seq, users, ctx);
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
  layer: LayerFn,
  batch: BatchTensors,
  ctx: ForwardCtx,
  activationBits?: number,
): tf.Scalar {
  const x = caserForwardWith(c, params, layer, batch.seq, batch.users, ctx, activationBits);
  // One target slot per example, so targetRows indexes examples directly.
  const rows = tf.gather(x, batch.targetRows) as tf.Tensor2D;
  const { emb, bias } = outputTables(c, params);
  return itemLoss(rows, emb, bias, batch.targetCols, batch.negatives);
}

/** Inference scores [B, numItems]. */
export function caserScores(
  c: CaserConfig,
  params: ParamMap,
  layer: LayerFn,
  seq: tf.Tensor2D,
  users: tf.Tensor1D,
  activationBits?: number,
): tf.Tensor2D {
  return caserLogits(c, params, caserForwardWith(c, params, layer, seq, users, INFERENCE, activationBits));
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
  return withWeightMaps({
    kind: 'caser',
    caser: c,
    config: caserCoreConfig(c),
    numItems: c.numItems,
    numUsers: c.numUsers,
    inputLen: c.L,
    acceptsShortWindows: false,
    layers: () => caserLayers(c),
    paramSpecs: () => caserParamSpecs(c),
    lossWith: (params, layer, batch, ctx, activationBits) => caserLoss(c, params, layer, batch, ctx, activationBits),
    scoresWith: (params, layer, seq, users, activationBits) => caserScores(c, params, layer, seq, users, activationBits),
    examples: (train) => caserExamples(c, train),
  });
}
