/**
 * The hypernets H_F, H_E, H_L in tfjs, batched over users: the training form of
 * src/core/hypernet.ts. Parameters carry exactly core's tensor names and shapes (`hyper.trunk.w`
 * [hidden, zDim], `hyper.F.<layer>.w` [C, hidden], `hyper.E.<layer>.u` [C*rank, hidden], ...), and
 * the arithmetic is core's, row for row:
 *
 *   h     = tanh(z · trunk.wᵀ + trunk.b)                        [B, hidden]
 *   α_F   = h · F.wᵀ + F.b                                       [B, C]
 *   α_E   = (h · E.uᵀ + E.ub)[B, C, rank] · (h · E.vᵀ + E.vb)[B, R, rank]ᵀ     [B, C, R]
 *   α_L   = h · L.wᵀ + L.b                                       [B, layers]
 *   score = softmax(α_F) · Σ_k |α_E|                             [B, C]   (core channelScores)
 *
 * With `zNorm`, z is standardized before the trunk: by the batch's own mean and variance in
 * training (gradients flow through them, as in batch normalisation), by running averages of them
 * everywhere else (`hyper.z.mean`, `hyper.z.var`, updated by every training forward). The page's
 * GRU state saturates (most components near ±1), so the users' differences are a small part of
 * z and of the trunk's input; standardizing makes them the whole of it. The export folds the
 * running statistics into the trunk (hypernetTensors), so core, the server and the page see a
 * plain hypernet: (z − μ)·s enters as trunk.w·diag(s) and trunk.b − trunk.w·(μ·s).
 *
 * Only the per-channel L1 mass of α_E is ever needed, so it is computed by core's lowRankL1Mass
 * (forward and gradient in one host loop each): [B, C, R], the size of the layer's weights per
 * user, is never formed as a tensor.
 */
import * as tf from '@tensorflow/tfjs';
import type { HypernetConfig, HypernetLayer } from '../../core/hypernet.ts';
import type { HypernetMethod } from '../../core/methods.ts';
import { lowRankL1Mass, lowRankL1MassGrad, type LowRankShape } from '../../core/low-rank-mass.ts';
import type { LevelTable } from '../../core/strategy.ts';
import type { TensorMap } from '../../core/tensor-file.ts';
import { mm } from '../nn.ts';
import { need, variableFrom, type ParamMap } from '../params.ts';
import { Rng } from '../../core/rng.ts';

export interface HypernetShape {
  readonly method: HypernetMethod;
  readonly zDim: number;
  readonly hidden: number;
  readonly rank: number;
  readonly layers: readonly HypernetLayer[];
  /** Standardize z before the trunk (see the module comment). */
  readonly zNorm?: boolean;
}

/** Variance floor of z standardization. */
export const Z_NORM_EPSILON = 1e-5;
/** Weight of each training batch in the running z statistics (a time constant of 20 steps). */
export const Z_NORM_MOMENTUM = 0.05;
const Z_MEAN = 'hyper.z.mean';
const Z_VAR = 'hyper.z.var';

/** Core's tensor names and shapes for a hypernet (the parity contract). */
export function hypernetTensorShapes(s: HypernetShape): Map<string, number[]> {
  const out = new Map<string, number[]>();
  out.set('hyper.trunk.w', [s.hidden, s.zDim]);
  out.set('hyper.trunk.b', [s.hidden]);
  for (const ly of s.layers) {
    out.set(`hyper.F.${ly.name}.w`, [ly.outChannels, s.hidden]);
    out.set(`hyper.F.${ly.name}.b`, [ly.outChannels]);
    if (s.method !== 'custom') {
      out.set(`hyper.E.${ly.name}.u`, [ly.outChannels * s.rank, s.hidden]);
      out.set(`hyper.E.${ly.name}.ub`, [ly.outChannels * s.rank]);
      out.set(`hyper.E.${ly.name}.v`, [ly.rowLength * s.rank, s.hidden]);
      out.set(`hyper.E.${ly.name}.vb`, [ly.rowLength * s.rank]);
    }
  }
  if (s.method === 'chord') {
    out.set('hyper.L.w', [s.layers.length, s.hidden]);
    out.set('hyper.L.b', [s.layers.length]);
  }
  return out;
}

function uniform(rng: Rng, n: number, bound: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng.next() * 2 - 1) * bound;
  return a;
}

/**
 * Trainable hypernet variables. Weights are PyTorch-Linear-like U(±1/sqrt(fan_in)); the E biases
 * start at +1/sqrt(rank)-ish so α_E is not centred on zero (|·| is then smooth around the start
 * and every channel has some L1 mass), the other biases at zero.
 */
export function createHypernetParams(s: HypernetShape, seed: number): ParamMap {
  const rng = new Rng(seed ^ 0x4e7);
  const out: ParamMap = {};
  for (const [name, shape] of hypernetTensorShapes(s)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let values: Float32Array;
    if (shape.length === 2) values = uniform(rng, n, 1 / Math.sqrt(shape[1]!));
    else if (name.endsWith('.ub') || name.endsWith('.vb')) values = new Float32Array(n).fill(1 / Math.sqrt(s.rank));
    else values = new Float32Array(n);
    out[name] = variableFrom(name, shape, values);
  }
  if (s.zNorm) {
    out[Z_MEAN] = variableFrom(Z_MEAN, [s.zDim], new Float32Array(s.zDim));
    out[Z_VAR] = variableFrom(Z_VAR, [s.zDim], new Float32Array(s.zDim).fill(1));
  }
  return out;
}

/**
 * z standardized (see the module comment): by the batch's statistics, which also move the running
 * ones, when `training`; by the running ones otherwise.
 */
function standardize(params: ParamMap, z: tf.Tensor2D, training: boolean): tf.Tensor2D {
  const mean = need(params, Z_MEAN);
  const variance = need(params, Z_VAR);
  if (!training) return tf.div(tf.sub(z, mean), tf.sqrt(tf.add(variance, Z_NORM_EPSILON))) as tf.Tensor2D;
  const m = tf.moments(z, 0);
  const m1 = m.mean.dataSync() as Float32Array;
  const v1 = m.variance.dataSync() as Float32Array;
  const run = (v: tf.Variable, batch: Float32Array) => {
    const old = v.dataSync() as Float32Array;
    v.assign(tf.tensor1d(Float32Array.from(old, (x, i) => x + Z_NORM_MOMENTUM * (batch[i]! - x))));
  };
  tf.tidy(() => {
    run(mean, m1);
    run(variance, v1);
  });
  return tf.div(tf.sub(z, m.mean), tf.sqrt(tf.add(m.variance, Z_NORM_EPSILON))) as tf.Tensor2D;
}

/**
 * Σ_k |(U · Vᵀ)[b, c, k]| for U [B, C, rank], V [B, R, rank] -> [B, C], differentiable in U and V
 * (core/low-rank-mass.ts).
 */
export function l1Mass(u: tf.Tensor3D, v: tf.Tensor3D): tf.Tensor2D {
  const [batch, channels, rank] = u.shape;
  const shape: LowRankShape = { batch, channels, rowLength: v.shape[1], rank };
  const op = tf.customGrad((uIn, vIn) => {
    // The backward reads the same host copies: no tensors to save and download again.
    const uData = (uIn as tf.Tensor).dataSync() as Float32Array;
    const vData = (vIn as tf.Tensor).dataSync() as Float32Array;
    return {
      value: tf.tensor2d(lowRankL1Mass(shape, uData, vData), [batch, channels]),
      gradFunc: (dy) => {
        const { du, dv } = lowRankL1MassGrad(shape, uData, vData, (dy as tf.Tensor).dataSync() as Float32Array);
        return [tf.tensor3d(du, u.shape), tf.tensor3d(dv, v.shape)];
      },
    };
  }) as (u: tf.Tensor, v: tf.Tensor) => tf.Tensor2D;
  return op(u, v);
}

export interface HypernetOutputs {
  /** Per layer: softmax(α_F) · Σ|α_E|, [B, C] (core's channel score). */
  readonly scores: tf.Tensor2D[];
  /** [B, layers]; zeros without an L head. */
  readonly alphaL: tf.Tensor2D;
}

/**
 * α's of every user in the batch (z [B, zDim]). Differentiable in the variables and in z.
 * `training` (default false) standardizes z by the batch's statistics and updates the running ones
 * (only with zNorm).
 */
export function hypernetForward(s: HypernetShape, params: ParamMap, z: tf.Tensor2D, training = false): HypernetOutputs {
  const p = (n: string) => need(params, n);
  const dense = (x: tf.Tensor2D, w: string, b: string) => tf.add(mm(x, p(w), false, true), p(b)) as tf.Tensor2D;
  const batch = z.shape[0];
  const zIn = s.zNorm ? standardize(params, z, training) : z;
  const h = tf.tanh(dense(zIn, 'hyper.trunk.w', 'hyper.trunk.b')) as tf.Tensor2D;
  const scores = s.layers.map((ly) => {
    const soft = tf.softmax(dense(h, `hyper.F.${ly.name}.w`, `hyper.F.${ly.name}.b`)) as tf.Tensor2D;
    if (s.method === 'custom') return tf.mul(soft, ly.rowLength) as tf.Tensor2D;
    const u = dense(h, `hyper.E.${ly.name}.u`, `hyper.E.${ly.name}.ub`).reshape([batch, ly.outChannels, s.rank]);
    const v = dense(h, `hyper.E.${ly.name}.v`, `hyper.E.${ly.name}.vb`).reshape([batch, ly.rowLength, s.rank]);
    const mass = l1Mass(u as tf.Tensor3D, v as tf.Tensor3D);
    return tf.mul(soft, mass) as tf.Tensor2D;
  });
  const alphaL =
    s.method === 'chord' ? dense(h, 'hyper.L.w', 'hyper.L.b') : (tf.zeros([batch, s.layers.length]) as tf.Tensor2D);
  return { scores, alphaL };
}

/** The core HypernetConfig for a trained hypernet (what hypernet.json holds). */
export function hypernetConfig(
  s: HypernetShape,
  opts: { levelTable: LevelTable; beta: number; lambda: { up: number; down: number } },
): HypernetConfig {
  return {
    format: 'chord-hypernet',
    version: 1,
    method: s.method,
    zDim: s.zDim,
    hidden: s.hidden,
    rank: s.rank,
    levelTable: [...opts.levelTable],
    beta: opts.beta,
    lambda: s.method === 'chord' ? { ...opts.lambda } : { up: 0, down: 0 },
    layers: s.layers.map((l) => ({ name: l.name, outChannels: l.outChannels, rowLength: l.rowLength })),
  };
}

/** The hypernet variables as a host TensorMap in core's naming (hyper.json/.bin). */
export function hypernetTensors(s: HypernetShape, params: ParamMap): TensorMap {
  const out: TensorMap = new Map();
  for (const [name, shape] of hypernetTensorShapes(s)) {
    out.set(name, { shape, data: new Float32Array(need(params, name).dataSync()) });
  }
  if (s.zNorm) {
    // Fold (z − μ)·scale into the trunk: w' = w·diag(scale), b' = b − w'·μ.
    const mean = need(params, Z_MEAN).dataSync() as Float32Array;
    const variance = need(params, Z_VAR).dataSync() as Float32Array;
    const w = out.get('hyper.trunk.w')!.data;
    const b = out.get('hyper.trunk.b')!.data;
    for (let r = 0; r < s.hidden; r++) {
      let shift = 0;
      for (let c = 0; c < s.zDim; c++) {
        const folded = w[r * s.zDim + c]! / Math.sqrt(variance[c]! + Z_NORM_EPSILON);
        w[r * s.zDim + c] = folded;
        shift += folded * mean[c]!;
      }
      b[r] = b[r]! - shift;
    }
  }
  return out;
}
