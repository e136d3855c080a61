/**
 * Named parameters. Models are functional: a forward pass reads tensors by name from a
 * `ParamMap` (embeddings, norms, biases: always trained) and a `WeightMap` (the quantizable
 * linear/conv weights, keyed by layer name). Base training fills the WeightMap with trainable
 * variables; CHORD fills it with frozen, fake-quantized tensors and trains only the ParamMap.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.ts';

export type ParamMap = Record<string, tf.Variable>;
/**
 * Quantizable weights by layer name: each either shared, with the layer's shape, or one per
 * example of the batch, [B, ...shape] (per-user quantized weights in CHORD).
 */
export type WeightMap = Record<string, tf.Tensor>;

/** How a parameter is initialised. */
export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'normal'; std: number }
  | { kind: 'uniform'; bound: number }
  /** PyTorch xavier_normal_ on a [out, in, ...] tensor: std = sqrt(2 / (fan_in + fan_out)). */
  | { kind: 'xavierNormal' }
  /** PyTorch's nn.Linear/Conv default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
  | { kind: 'fanInUniform' };

export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly init: Init;
}

function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  const out = shape[0] ?? 1;
  const inn = shape.length > 1 ? shape[1]! : 1;
  return { fanIn: inn * receptive, fanOut: out * receptive };
}

export function initTensor(spec: ParamSpec, seed: number): tf.Tensor {
  const shape = [...spec.shape];
  const init = spec.init;
  switch (init.kind) {
    case 'zeros':
      return tf.zeros(shape);
    case 'ones':
      return tf.ones(shape);
    case 'normal':
      return tf.randomNormal(shape, 0, init.std, 'float32', seed);
    case 'uniform':
      return tf.randomUniform(shape, -init.bound, init.bound, 'float32', seed);
    case 'xavierNormal': {
      const { fanIn, fanOut } = fans(shape);
      return tf.randomNormal(shape, 0, Math.sqrt(2 / (fanIn + fanOut)), 'float32', seed);
    }
    case 'fanInUniform': {
      const bound = 1 / Math.sqrt(fans(shape).fanIn);
      return tf.randomUniform(shape, -bound, bound, 'float32', seed);
    }
  }
}

/** A trainable variable holding `values` (row-major) with a unique tfjs name. */
export function variableFrom(name: string, shape: readonly number[], values: Float32Array): tf.Variable {
  const t = tf.tensor(values, [...shape], 'float32');
  const v = tf.variable(t, true, `${name}#${uniqueId++}`);
  t.dispose();
  return v;
}

/** Creates one trainable variable per spec, seeded from `rng` in spec order. */
export function createParams(specs: readonly ParamSpec[], rng: Rng): ParamMap {
  const out: ParamMap = {};
  for (const spec of specs) {
    const t = initTensor(spec, rng.seed());
    // Variable names are global in tfjs; a unique suffix lets several models coexist.
    out[spec.name] = tf.variable(t, true, `${spec.name}#${uniqueId++}`);
    t.dispose();
  }
  return out;
}
let uniqueId = 0;

export function countParams(map: Record<string, tf.Tensor>): number {
  return Object.values(map).reduce((n, t) => n + t.size, 0);
}

/** Looks a tensor up by name; a missing name is a programming error in a forward pass. */
export function need<T extends tf.Tensor>(map: Record<string, T>, name: string): T {
  const t = map[name];
  if (!t) throw new Error(`missing parameter '${name}'`);
  return t;
}
