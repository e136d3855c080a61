/**
 * SASRec and Caser forwards with a pluggable linear layer (and optional activation fake
 * quantization): the same arithmetic as src/model/sasrec.ts and caser.ts (a parity test pins
 * them together), but every quantizable matmul goes through `layer(name, x)`.
 *
 * Why not the backbone's own forward with a per-user WeightMap: that path materialises every
 * user's weights and runs per-example batched matmuls, ~10x slower per FLOP in tfjs-wasm than
 * one shared matmul (measured: 307 ms vs 28 ms for [128x50x64]·[64x256]); CHORD's layer instead
 * multiplies by the four shared quantized copies at once and selects each user's level per
 * channel (weights.ts). A `linear` hook in the backbone forwards would let this file go.
 *
 * Activation quantization (w3a3) sits where src/core/forward puts it: SASRec per token at the
 * input of every quantizable matmul (LN_attn output into Wq, x into Wk and Wv, merged heads into
 * Wo, LN_ffn output into Win, the ReLU output into Wout); Caser per example ("per tensor" of
 * one history) on the embedding image (conv.v and every conv.h) and on fc1's input.
 */
import * as tf from '@tensorflow/tfjs';
import type { BatchTensors, ForwardCtx } from '../backbone.ts';
import type { CaserConfig } from '../caser.ts';
import { dropout, layerNorm, mm, softmaxCrossEntropy } from '../nn.ts';
import { need, type ParamMap } from '../params.ts';
import type { SasrecConfig } from '../sasrec.ts';

/** x [..., in] -> x · W_nameᵀ [..., out] for the current batch (no bias). */
export type LayerFn = (name: string, x: tf.Tensor) => tf.Tensor;

/**
 * Min–max fake quantization with one range per group of the last `groupDims` dims (1: per token;
 * rank - 1: per example), straight-through: the gradient passes unchanged to x. Plain f32 step
 * (max - min) / (2^bits - 1) and round half to even; core's restricted-step quantizer differs
 * from it by at most one code at rare rounding boundaries.
 */
export function fakeQuantActivations(x: tf.Tensor, bits: number, groupDims: number): tf.Tensor {
  const op = tf.customGrad((input) => {
    const t = input as tf.Tensor;
    const axes = Array.from({ length: groupDims }, (_, i) => t.rank - groupDims + i);
    const value = tf.tidy(() => {
      const lo = tf.min(t, axes, true);
      const hi = tf.max(t, axes, true);
      const n = 2 ** bits - 1;
      const step = tf.div(tf.sub(hi, lo), n);
      const safe = tf.where(tf.greater(step, 0), step, tf.onesLike(step));
      const q = tf.clipByValue(tf.round(tf.div(tf.sub(t, lo), safe)), 0, n);
      return tf.add(lo, tf.mul(q, tf.mul(safe, tf.cast(tf.greater(step, 0), 'float32'))));
    });
    return { value, gradFunc: (dy) => dy as tf.Tensor };
  }) as (x: tf.Tensor) => tf.Tensor;
  return op(x);
}

function splitHeads(x: tf.Tensor, heads: number): tf.Tensor3D {
  const [b, l, d] = x.shape as [number, number, number];
  return x.reshape([b, l, heads, d / heads]).transpose([0, 2, 1, 3]).reshape([b * heads, l, d / heads]);
}

function mergeHeads(x: tf.Tensor, batch: number, heads: number): tf.Tensor {
  const [, l, dh] = x.shape as [number, number, number];
  return x.reshape([batch, heads, l, dh]).transpose([0, 2, 1, 3]).reshape([batch, l, heads * dh]);
}

function attentionBias(seq: tf.Tensor2D): tf.Tensor4D {
  const [b, l] = seq.shape;
  const causal = tf.linalg.bandPart(tf.ones([l, l]), -1, 0);
  const keyOk = tf.cast(tf.notEqual(seq, 0), 'float32').reshape([b, 1, 1, l]);
  const allowed = tf.mul(causal.reshape([1, 1, l, l]), keyOk);
  return tf.mul(tf.sub(1, allowed), -1e9) as tf.Tensor4D;
}

/** Final hidden states [B, L, d] (as sasrecForward), quantizable matmuls through `layer`. */
export function sasrecHidden(
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
  const linear = (name: string, x: tf.Tensor) => tf.add(layer(name, aq(x)), p(`${name}.bias`));
  const mask = tf.cast(tf.notEqual(seq, 0), 'float32').expandDims(2);
  const pos = p('pos_emb').slice([c.maxLen - len, 0], [len, c.hidden]);
  let x: tf.Tensor = tf.add(tf.mul(tf.gather(p('item_emb'), seq), Math.sqrt(c.hidden)), pos);
  x = tf.mul(dropout(x, c.dropout, ctx.training, ctx.seed), mask);
  const bias = attentionBias(seq);
  const scale = 1 / Math.sqrt(c.hidden / c.heads);
  for (let b = 0; b < c.blocks; b++) {
    const n = `block${b}`;
    const q = layerNorm(x, p(`${n}.ln_attn.gamma`), p(`${n}.ln_attn.beta`), c.lnEps);
    const kvIn = aq(x); // quantized once for Wk and Wv, as the core forward does
    const proj = (which: string, input: tf.Tensor, quantized: boolean) =>
      splitHeads(
        tf.add(quantized ? layer(`${n}.attn.${which}`, input) : layer(`${n}.attn.${which}`, aq(input)), p(`${n}.attn.${which}.bias`)),
        c.heads,
      );
    const Q = proj('q', q, false);
    const K = proj('k', kvIn, true);
    const V = proj('v', kvIn, true);
    const logits = tf.mul(mm(Q, K, false, true), scale).reshape([batch, c.heads, len, len]);
    let att: tf.Tensor = tf.softmax(tf.add(logits, bias)).reshape([batch * c.heads, len, len]);
    att = dropout(att, c.dropout, ctx.training, ctx.seed);
    const heads = mergeHeads(mm(att, V), batch, c.heads);
    x = tf.add(q, linear(`${n}.attn.out`, heads));
    x = layerNorm(x, p(`${n}.ln_ffn.gamma`), p(`${n}.ln_ffn.beta`), c.lnEps);
    let f = tf.relu(linear(`${n}.ffn.in`, x));
    f = dropout(f, c.dropout, ctx.training, ctx.seed);
    f = dropout(linear(`${n}.ffn.out`, f), c.dropout, ctx.training, ctx.seed);
    x = tf.mul(tf.add(x, f), mask);
  }
  return layerNorm(x, p('final_ln.gamma'), p('final_ln.beta'), c.lnEps) as tf.Tensor3D;
}

function sasrecItems(c: SasrecConfig, params: ParamMap): tf.Tensor2D {
  return need(params, 'item_emb').slice([1, 0], [c.numItems, c.hidden]) as tf.Tensor2D;
}

export function sasrecLossWith(
  c: SasrecConfig,
  params: ParamMap,
  layer: LayerFn,
  batch: BatchTensors,
  ctx: ForwardCtx,
  activationBits?: number,
): tf.Scalar {
  const h = sasrecHidden(c, params, layer, batch.seq, ctx, activationBits).reshape([-1, c.hidden]) as tf.Tensor2D;
  const rows = tf.gather(h, batch.targetRows) as tf.Tensor2D;
  return softmaxCrossEntropy(mm(rows, sasrecItems(c, params), false, true) as tf.Tensor2D, batch.targetCols);
}

export function sasrecScoresWith(
  c: SasrecConfig,
  params: ParamMap,
  layer: LayerFn,
  seq: tf.Tensor2D,
  activationBits?: number,
): tf.Tensor2D {
  const h = sasrecHidden(c, params, layer, seq, { training: false, seed: () => 0 }, activationBits);
  const [b, l] = seq.shape;
  const last = h.slice([0, l - 1, 0], [b, 1, c.hidden]).reshape([b, c.hidden]) as tf.Tensor2D;
  return mm(last, sasrecItems(c, params), false, true) as tf.Tensor2D;
}

/** Context vector [B, 2d] (as caserForward), quantizable matmuls through `layer`. */
export function caserContext(
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
  const emb = aq(tf.mul(tf.gather(p('item_emb'), seq), mask)); // [B, L, d]
  // Vertical filters are a linear map over the L rows: apply it to embᵀ [B, d, L].
  const v = layer('conv.v', emb.transpose([0, 2, 1])); // [B, d, nv]
  const outV = tf.add(v.transpose([0, 2, 1]), p('conv.v.bias').reshape([c.nv, 1])).reshape([batch, c.nv * d]);
  const pooled: tf.Tensor[] = [];
  for (let h = 1; h <= c.L; h++) {
    const windows: tf.Tensor[] = [];
    for (let i = 0; i + h <= c.L; i++) windows.push(emb.slice([0, i, 0], [batch, h, d]).reshape([batch, h * d]));
    const conv = tf.relu(tf.add(layer(`conv.h${h}`, tf.stack(windows, 1)), p(`conv.h${h}.bias`))); // [B, nWin, nh]
    pooled.push(tf.max(conv, 1));
  }
  let z: tf.Tensor = tf.concat([outV, ...pooled], 1);
  z = dropout(z, c.dropout, ctx.training, ctx.seed);
  z = tf.relu(tf.add(layer('fc1', aq(z)), p('fc1.bias')));
  return tf.concat([z, tf.gather(p('user_emb'), users)], 1) as tf.Tensor2D;
}

function caserLogits(c: CaserConfig, params: ParamMap, x: tf.Tensor2D): tf.Tensor2D {
  const emb = need(params, 'out_emb').slice([1, 0], [c.numItems, 2 * c.hidden]);
  const bias = need(params, 'out_bias').slice([1], [c.numItems]);
  return tf.add(mm(x, emb, false, true), bias);
}

export function caserLossWith(
  c: CaserConfig,
  params: ParamMap,
  layer: LayerFn,
  batch: BatchTensors,
  ctx: ForwardCtx,
  activationBits?: number,
): tf.Scalar {
  const x = caserContext(c, params, layer, batch.seq, batch.users, ctx, activationBits);
  const rows = tf.gather(x, batch.targetRows) as tf.Tensor2D;
  return softmaxCrossEntropy(caserLogits(c, params, rows), batch.targetCols);
}

export function caserScoresWith(
  c: CaserConfig,
  params: ParamMap,
  layer: LayerFn,
  seq: tf.Tensor2D,
  users: tf.Tensor1D,
  activationBits?: number,
): tf.Tensor2D {
  return caserLogits(c, params, caserContext(c, params, layer, seq, users, { training: false, seed: () => 0 }, activationBits));
}

/** A LayerFn over shared weights ([out, ...] each, reshaped to [out, in]). */
export function sharedLayers(weights: Readonly<Record<string, tf.Tensor>>): LayerFn {
  return (name, x) => {
    const w = need(weights, name);
    const out = w.shape[0]!;
    const inDim = w.size / out;
    const lead = x.shape.slice(0, -1);
    return mm(x.reshape([-1, inDim]), w.reshape([out, inDim]), false, true).reshape([...lead, out]);
  };
}
