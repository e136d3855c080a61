/**
 * A trainable model = a backbone plus the tensors it reads. The trainer and evaluator only see
 * this interface, so CHORD can supply its own (frozen fake-quantized weights, hypernets, per-user
 * strategies) while reusing the training loop, checkpoints and evaluation.
 */
import type * as tf from '@tensorflow/tfjs';
import { generateLayerWeights } from '../core/frozen.ts';
import type { Backbone, BatchTensors, ForwardCtx } from './backbone.ts';
import { createParams, variableFrom, type ParamMap } from './params.ts';
import { Rng } from '../core/rng.ts';

export interface TrainableModel {
  /** Every trainable variable by stable name: what the optimizer updates and checkpoints store. */
  readonly variables: ParamMap;
  loss(batch: BatchTensors, ctx: ForwardCtx): tf.Scalar;
  /** Inference scores [B, numItems] (column j = item j + 1) for windows seq [B, inputLen]. */
  scores(seq: tf.Tensor2D, users: tf.Tensor1D): tf.Tensor2D;
}

export interface BaseModel<B extends Backbone = Backbone> extends TrainableModel {
  readonly backbone: B;
  /** Embeddings, norms, biases. */
  readonly params: ParamMap;
  /** The quantizable layer weights, trained too in Base. Keyed by layer name. */
  readonly weights: ParamMap;
}

/**
 * The fp32 Base model: everything trainable. The layer weights start from the frozen random
 * weights of src/core for the same seed, so Base and CHORD share their starting point; the other
 * parameters are drawn from a PRNG seeded with `seed`.
 */
export function createBaseModel<B extends Backbone>(backbone: B, seed: number): BaseModel<B> {
  const params = createParams(backbone.paramSpecs(), new Rng(seed ^ 0x5eed));
  const weights: ParamMap = {};
  for (const spec of backbone.layers()) {
    weights[spec.name] = variableFrom(spec.name, spec.shape, generateLayerWeights(seed, spec));
  }
  for (const name of Object.keys(weights)) {
    if (name in params) throw new Error(`parameter name '${name}' used twice`);
  }
  return {
    backbone,
    params,
    weights,
    variables: { ...params, ...weights },
    loss: (batch, ctx) => backbone.loss(params, weights, batch, ctx),
    scores: (seq, users) => backbone.scores(params, weights, seq, users),
  };
}
