/**
 * SASRec (Kang & McAuley 2018) as a functional forward pass, following the reference PyTorch
 * port: scaled item embedding + learned positions, pre-LN attention whose residual is added to the
 * normalised input, post-LN point-wise FFN with its own residual, final layer norm, output scores
 * by the (tied) item embedding. Trained at every position with full softmax over all items, or a
 * sampled loss (item-loss.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { INFERENCE, withWeightMaps, type Backbone, type BatchTensors, type Examples, type ForwardCtx } from './backbone.ts';
import { weightLayers, type LayerFn } from './layers.ts';
import { itemLoss } from './item-loss.ts';
import { dropout, fakeQuantActivations, layerNorm, mm } from './nn.ts';
import { backboneLayers, type BackboneConfig, type LayerSpec } from '../core/backbones.ts';
import { need, type ParamMap, type ParamSpec, type WeightMap } from './params.ts';

export interface SasrecConfig {
  readonly numItems: number;
  readonly numUsers: number;
  readonly maxLen: number;
  readonly hidden: number;
  readonly heads: number;
  readonly blocks: number;
  readonly ffn: number;
  readonly dropout: number;
  readonly lnEps: number;
}

export const SASREC_DEFAULTS = {
  maxLen: 50,
  hidden: 64,
  heads: 2,
  blocks: 2,
  ffn: 256,
  dropout: 0.2,
  lnEps: 1e-8,
} as const;

export function sasrecCoreConfig(c: SasrecConfig): BackboneConfig {
  const { hidden, heads, blocks, ffn, maxLen } = c;
  return { backbone: 'sasrec', dims: { hidden, heads, blocks, ffn, maxLen } };
}

export function sasrecLayers(c: SasrecConfig): LayerSpec[] {
  return backboneLayers(sasrecCoreConfig(c));
}

export function sasrecParamSpecs(c: SasrecConfig): ParamSpec[] {
  const d = c.hidden;
  const specs: ParamSpec[] = [
    { name: 'item_emb', shape: [c.numItems + 1, d], init: { kind: 'xavierNormal' } },
    { name: 'pos_emb', shape: [c.maxLen, d], init: { kind: 'xavierNormal' } },
  ];
  for (const l of sasrecLayers(c)) specs.push({ name: `${l.name}.bias`, shape: [l.shape[0]!], init: { kind: 'zeros' } });
  for (let b = 0; b < c.blocks; b++) {
    for (const ln of ['ln_attn', 'ln_ffn']) {
      specs.push({ name: `block${b}.${ln}.gamma`, shape: [d], init: { kind: 'ones' } });
      specs.push({ name: `block${b}.${ln}.beta`, shape: [d], init: { kind: 'zeros' } });
    }
  }
  specs.push({ name: 'final_ln.gamma', shape: [d], init: { kind: 'ones' } });
  specs.push({ name: 'final_ln.beta', shape: [d], init: { kind: 'zeros' } });
  return specs;
}

/** [B, L, d] -> [B * heads, L, d / heads]. */
function splitHeads(x: tf.Tensor, heads: number): tf.Tensor3D {
  const [b, l, d] = x.shape as [number, number, number];
  return x.reshape([b, l, heads, d / heads]).transpose([0, 2, 1, 3]).reshape([b * heads, l, d / heads]);
}

function mergeHeads(x: tf.Tensor, batch: number, heads: number): tf.Tensor {
  const [, l, dh] = x.shape as [number, number, number];
  return x.reshape([batch, heads, l, dh]).transpose([0, 2, 1, 3]).reshape([batch, l, heads * dh]);
}

/**
 * Additive attention bias [B, 1, L, L] (broadcast over heads): 0 where query i may attend key j
 * (j <= i and key j is an item), a large negative number elsewhere. Finite, not -inf, so a padded
 * query row (no allowed key) stays finite; its output is zeroed by the timeline mask and never
 * scored.
 */
function attentionBias(seq: tf.Tensor2D): tf.Tensor4D {
  const [b, l] = seq.shape;
  const causal = tf.linalg.bandPart(tf.ones([l, l]), -1, 0); // lower triangle incl. diagonal
  const keyOk = tf.cast(tf.notEqual(seq, 0), 'float32').reshape([b, 1, 1, l]);
  const allowed = tf.mul(causal.reshape([1, 1, l, l]), keyOk);
  return tf.mul(tf.sub(1, allowed), -1e9) as tf.Tensor4D;
}

/**
 * Final hidden states [B, L, d] for item sequences seq (int32 [B, L], left-padded with 0), every
 * quantizable matmul through `layer`. With `activationBits`, activations are fake-quantized per
 * token where src/core/forward puts it: at the input of every quantizable matmul (LN_attn output
 * into Wq, x into Wk and Wv, merged heads into Wo, LN_ffn output into Win, the ReLU output into
 * Wout).
 */
export function sasrecForwardWith(
  c: SasrecConfig,
  params: ParamMap,
  layer: LayerFn,
  seq: tf.Tensor2D,
  ctx: ForwardCtx,
  activationBits?: number,
): tf.Tensor3D {
  const [batch, len] = seq.shape;
  if (len > c.maxLen) throw new RangeError(`sequence length ${len} > maxLen ${c.maxLen}`);
  const p = (n: string) => need(params, n);
  const aq = (x: tf.Tensor) => (activationBits === undefined ? x : fakeQuantActivations(x, activationBits, 1));
  /** Layer `name` with its bias on an input that is already (activation-)quantized. */
  const linear = (name: string, x: tf.Tensor) => tf.add(layer(name, x), p(`${name}.bias`));
  const mask = tf.cast(tf.notEqual(seq, 0), 'float32').expandDims(2); // [B, L, 1]
  const pos = p('pos_emb').slice([c.maxLen - len, 0], [len, c.hidden]);
  let x: tf.Tensor = tf.add(tf.mul(tf.gather(p('item_emb'), seq), Math.sqrt(c.hidden)), pos);
  x = tf.mul(dropout(x, c.dropout, ctx.training, ctx.seed), mask);
  const bias = attentionBias(seq);
  const scale = 1 / Math.sqrt(c.hidden / c.heads);
  for (let b = 0; b < c.blocks; b++) {
    const n = `block${b}`;
    const q = layerNorm(x, p(`${n}.ln_attn.gamma`), p(`${n}.ln_attn.beta`), c.lnEps);
    const kvIn = aq(x); // quantized once for Wk and Wv, as the core forward does
    const proj = (which: string, input: tf.Tensor) => splitHeads(linear(`${n}.attn.${which}`, input), c.heads);
    const Q = proj('q', aq(q));
    const K = proj('k', kvIn);
    const V = proj('v', kvIn);
    const logits = tf.mul(mm(Q, K, false, true), scale).reshape([batch, c.heads, len, len]);
    let att: tf.Tensor = tf.softmax(tf.add(logits, bias)).reshape([batch * c.heads, len, len]);
    att = dropout(att, c.dropout, ctx.training, ctx.seed);
    const heads = mergeHeads(mm(att, V), batch, c.heads);
    x = tf.add(q, linear(`${n}.attn.out`, aq(heads)));
    x = layerNorm(x, p(`${n}.ln_ffn.gamma`), p(`${n}.ln_ffn.beta`), c.lnEps);
    let f = tf.relu(linear(`${n}.ffn.in`, aq(x)));
    f = dropout(f, c.dropout, ctx.training, ctx.seed);
    f = dropout(linear(`${n}.ffn.out`, aq(f)), c.dropout, ctx.training, ctx.seed);
    x = tf.mul(tf.add(x, f), mask);
  }
  return layerNorm(x, p('final_ln.gamma'), p('final_ln.beta'), c.lnEps) as tf.Tensor3D;
}

/** sasrecForwardWith on the fp32 layer weights of `weights` (shared or per example). */
export function sasrecForward(
  c: SasrecConfig,
  params: ParamMap,
  weights: WeightMap,
  seq: tf.Tensor2D,
  ctx: ForwardCtx,
): tf.Tensor3D {
  return sasrecForwardWith(c, params, weightLayers(weights, sasrecLayers(c)), seq, ctx);
}

/** Output embedding of the real items (row j = item j + 1): padding item 0 is never scored. */
function itemTable(c: SasrecConfig, params: ParamMap): tf.Tensor2D {
  return need(params, 'item_emb').slice([1, 0], [c.numItems, c.hidden]) as tf.Tensor2D;
}

export function sasrecLoss(
  c: SasrecConfig,
  params: ParamMap,
  layer: LayerFn,
  batch: BatchTensors,
  ctx: ForwardCtx,
  activationBits?: number,
): tf.Scalar {
  const h = sasrecForwardWith(c, params, layer, batch.seq, ctx, activationBits).reshape([-1, c.hidden]) as tf.Tensor2D;
  const rows = tf.gather(h, batch.targetRows) as tf.Tensor2D;
  return itemLoss(rows, itemTable(c, params), undefined, batch.targetCols, batch.negatives);
}

/** Inference scores [B, numItems] from the last position's hidden state. */
export function sasrecScores(
  c: SasrecConfig,
  params: ParamMap,
  layer: LayerFn,
  seq: tf.Tensor2D,
  activationBits?: number,
): tf.Tensor2D {
  const h = sasrecForwardWith(c, params, layer, seq, INFERENCE, activationBits);
  const [b, l] = seq.shape;
  const last = h.slice([0, l - 1, 0], [b, 1, c.hidden]).reshape([b, c.hidden]) as tf.Tensor2D;
  return mm(last, itemTable(c, params), false, true) as tf.Tensor2D;
}

/**
 * Where training windows end: per user, [user, index of the window's last target], the first at
 * the most recent item and then every `stride` items back; `shift` (0..stride-1) moves the
 * boundaries of the older windows so that, across epochs, targets are seen with different
 * amounts of context.
 */
export function sasrecWindowEnds(train: readonly Int32Array[], stride: number, shift: number): Array<[number, number]> {
  if (!Number.isInteger(stride) || stride < 1) throw new RangeError(`window stride ${stride} must be a positive integer`);
  const s = ((shift % stride) + stride) % stride;
  const ends: Array<[number, number]> = [];
  train.forEach((t, u) => {
    const n = t.length;
    if (n < 2) return;
    ends.push([u, n - 1]);
    for (let e = n - 1 - stride + s; e >= 1; e -= stride) ends.push([u, e]);
  });
  return ends;
}

/**
 * Windows of `L` inputs ending right before each end's last target, the next item at every
 * position as its target (left-padded with 0).
 */
export function sasrecWindows(L: number, train: readonly Int32Array[], ends: ReadonlyArray<readonly [number, number]>): Examples {
  const count = ends.length;
  const users = new Int32Array(count);
  const seq = new Int32Array(count * L);
  const targets = new Int32Array(count * L);
  ends.forEach(([u, e], i) => {
    const t = train[u]!;
    users[i] = u;
    for (let j = 0; j < L; j++) {
      const k = e - L + j; // input index at slot j; its target is k + 1
      if (k < 0) continue;
      seq[i * L + j] = t[k]!;
      targets[i * L + j] = t[k + 1]!;
    }
  });
  return { count, inputLen: L, targetsPer: L, users, seq, targets };
}

/**
 * Training windows: every user's training sequence is cut into windows of maxLen next-item
 * targets (sasrecWindowEnds with stride maxLen), so each target is seen once an epoch.
 */
export function sasrecExamples(c: SasrecConfig, train: readonly Int32Array[], shift: number): Examples {
  return sasrecWindows(c.maxLen, train, sasrecWindowEnds(train, c.maxLen, shift));
}

export function createSasrec(config: Partial<SasrecConfig> & Pick<SasrecConfig, 'numItems' | 'numUsers'>): Backbone & {
  readonly sasrec: SasrecConfig;
} {
  const c: SasrecConfig = { ...SASREC_DEFAULTS, ...config };
  if (c.hidden % c.heads !== 0) throw new RangeError('hidden must be divisible by heads');
  return withWeightMaps({
    kind: 'sasrec',
    sasrec: c,
    config: sasrecCoreConfig(c),
    numItems: c.numItems,
    numUsers: c.numUsers,
    inputLen: c.maxLen,
    acceptsShortWindows: true,
    layers: () => sasrecLayers(c),
    paramSpecs: () => sasrecParamSpecs(c),
    lossWith: (params, layer, batch, ctx, activationBits) => sasrecLoss(c, params, layer, batch, ctx, activationBits),
    scoresWith: (params, layer, seq, _users, activationBits) => sasrecScores(c, params, layer, seq, activationBits),
    examples: (train, shift) => sasrecExamples(c, train, shift),
  });
}
