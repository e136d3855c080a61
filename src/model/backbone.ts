/**
 * What the trainer, the evaluator and CHORD need from a backbone. A backbone is a set of pure
 * functions over named tensors; it owns no state, and each has one forward whose quantizable
 * layers go through a LayerFn (layers.ts), so the same code runs the fp32 Base model (weights =
 * trainable variables) and CHORD (frozen weights, fake-quantized per user).
 */
import type * as tf from '@tensorflow/tfjs';
import type { BackboneConfig, BackboneKind, LayerSpec } from '../core/backbones.ts';
import { weightLayers, type LayerFn } from './layers.ts';
import type { SampledNegatives } from './item-loss.ts';
import type { ParamMap, ParamSpec, WeightMap } from './params.ts';

export interface ForwardCtx {
  /** Dropout on iff true. */
  readonly training: boolean;
  /** Source of dropout seeds, so runs are reproducible. */
  readonly seed: () => number;
}

/**
 * Training examples, flat. Example i has input items seq[i*inputLen ..] (left-padded, 0 = pad),
 * user users[i] (0-based) and targets targets[i*targetsPer ..] (0 = no target at that slot).
 * SASRec: targetsPer = inputLen (next item at every position); Caser: targetsPer = 1.
 */
export interface Examples {
  readonly count: number;
  readonly inputLen: number;
  readonly targetsPer: number;
  readonly users: Int32Array;
  readonly seq: Int32Array;
  readonly targets: Int32Array;
}

/** One batch as tensors; built by `batchTensors` and disposed by the caller. */
export interface BatchTensors {
  /** int32 [B, inputLen]. */
  readonly seq: tf.Tensor2D;
  /** int32 [B]. */
  readonly users: tf.Tensor1D;
  /** int32 [M]: row indices into the flattened [B * targetsPer] target slots that hold a target. */
  readonly targetRows: tf.Tensor1D;
  /** int32 [M]: the target item minus one (a column of the score matrix). */
  readonly targetCols: tf.Tensor1D;
  /** The step's shared negatives under a sampled loss (item-loss.ts); none = full softmax. */
  readonly negatives?: SampledNegatives;
}

export interface Backbone {
  readonly kind: BackboneKind;
  readonly numItems: number;
  readonly numUsers: number;
  /** Length of the input window fed to the model (SASRec max length, Caser L). */
  readonly inputLen: number;
  /**
   * True when a window with its left padding cut (any length from 1 to inputLen) gives the same
   * scores as the full window: SASRec masks padding out of attention and positions count from the
   * right. Caser's convolutions need exactly L.
   */
  readonly acceptsShortWindows: boolean;
  /** The core description (kind + dims) from which src/core derives layers and frozen weights. */
  readonly config: BackboneConfig;
  /** Quantizable layers in manifest order (src/core backboneLayers): [out, in(, kh, kw)]. */
  layers(): LayerSpec[];
  /** Parameters that are always trained: embeddings, norms, biases. */
  paramSpecs(): ParamSpec[];
  /**
   * Mean loss over all target slots of the batch (full softmax, or the batch's sampled negatives), with the layer weights of
   * `weights` in fp32: each of the layer's shape, or per example [B, ...shape].
   */
  loss(params: ParamMap, weights: WeightMap, batch: BatchTensors, ctx: ForwardCtx): tf.Scalar;
  /**
   * Scores of every item for the next step after `seq` (int32 [B, inputLen]); [B, numItems],
   * column j is item j + 1. Inference mode (no dropout).
   */
  scores(params: ParamMap, weights: WeightMap, seq: tf.Tensor2D, users: tf.Tensor1D): tf.Tensor2D;
  /**
   * `loss` with every quantizable layer applied by `layer`, and with `activationBits` the
   * activations fake-quantized at the layers' inputs where src/core/forward does it.
   */
  lossWith(params: ParamMap, layer: LayerFn, batch: BatchTensors, ctx: ForwardCtx, activationBits?: number): tf.Scalar;
  /** `scores` with the layers applied by `layer` (and activation quantization), as lossWith. */
  scoresWith(params: ParamMap, layer: LayerFn, seq: tf.Tensor2D, users: tf.Tensor1D, activationBits?: number): tf.Tensor2D;
  /**
   * All training examples of an epoch from the users' training sequences (index = user). `shift`
   * (0..inputLen-1, drawn per epoch) may move window boundaries; Caser ignores it.
   */
  examples(train: readonly Int32Array[], shift: number): Examples;
}

export const INFERENCE: ForwardCtx = { training: false, seed: () => 0 };

/**
 * Completes a backbone from its hook-based forward: `loss` and `scores` are `lossWith` and
 * `scoresWith` with the fp32 layer weights of a weight map, so each backbone has one forward.
 */
export function withWeightMaps<B extends Omit<Backbone, 'loss' | 'scores'>>(b: B): NoInfer<B> & Pick<Backbone, 'loss' | 'scores'> {
  const specs = b.layers();
  return {
    ...b,
    loss: (params, weights, batch, ctx) => b.lossWith(params, weightLayers(weights, specs), batch, ctx),
    scores: (params, weights, seq, users) => b.scoresWith(params, weightLayers(weights, specs), seq, users),
  };
}
