/**
 * Quantizable layers with per-user, per-channel bit widths and a straight-through estimator.
 *
 * The frozen weights never change, so each layer's per-channel min–max fake-quantized copies at
 * the level widths, Q_l = core fakeQuantize(W, bits_l), are computed once with the deployment
 * quantizer itself (bit-identical to what the page dequantizes).
 *
 * Forward (hard): user b's output channel c uses row c of Q_{level(b,c)}. Computed as one shared
 * matmul against all levels, Y = x · [Q_0; Q_1; ...]ᵀ ([.., levels, C]), then a per-user,
 * per-channel selection; no per-user weight copy is ever formed.
 * Backward (soft): the layer acts as if user b's weights were Σ_l q_l(b,c) · Q_l[c], with q the
 * soft level probabilities (levels.ts), evaluated at the hard point:
 *   dL/dq_l(b,c) = Σ_t dL/dy(b,t,c) · Y(b,t,l,c)       (= Σ_k dL/dW_b[c,k] · Q_l[c,k])
 *   dL/dx        = dL/dy · W_hard                        (the weights the forward used)
 */
import * as tf from '@tensorflow/tfjs';
import type { LayerSpec } from '../../core/backbones.ts';
import { fakeQuantize } from '../../core/quantize.ts';
import { mm } from '../nn.ts';

export interface LevelStack {
  readonly spec: LayerSpec;
  readonly bits: readonly number[];
  /** [levels * C, K]: Q_l's rows, level-major (row l*C + c). */
  readonly flat: tf.Tensor2D;
  /** [K, levels * C]: the transpose, so neither product needs a transpose flag. */
  readonly flatT: tf.Tensor2D;
}

/** Q_l for every width of `bits` (core's quantizer). */
export function levelStack(spec: LayerSpec, frozen: Float32Array, bits: readonly number[]): LevelStack {
  const C = spec.outChannels;
  const K = spec.rowLength;
  const flat = new Float32Array(bits.length * C * K);
  bits.forEach((b, l) => flat.set(fakeQuantize(frozen, { outChannels: C, rowLength: K }, b), l * C * K));
  const flatT = tf.tensor2d(flat, [bits.length * C, K]);
  return { spec, bits, flat: flatT, flatT: tf.tidy(() => tf.transpose(flatT) as tf.Tensor2D) };
}

export function disposeLevelStack(s: LevelStack): void {
  tf.dispose([s.flat, s.flatT]);
}

/** One-hot [B, 1, levels, C] of hard levels [B * C] (user-major). */
export function levelOneHot(levels: Uint8Array, outChannels: number, numLevels: number): tf.Tensor4D {
  const batch = levels.length / outChannels;
  const data = new Float32Array(batch * numLevels * outChannels);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < outChannels; c++) {
      data[(b * numLevels + levels[b * outChannels + c]!) * outChannels + c] = 1;
    }
  }
  return tf.tensor4d(data, [batch, 1, numLevels, outChannels]);
}

/** Hard forward: x [B, ..., K] -> [B, ..., C] at each user's levels. */
function selectLevels(stack: LevelStack, x: tf.Tensor, onehot: tf.Tensor4D): { y: tf.Tensor; all: tf.Tensor } {
  const C = stack.spec.outChannels;
  const K = stack.spec.rowLength;
  const numLevels = stack.bits.length;
  const batch = onehot.shape[0];
  const all = mm(x.reshape([-1, K]), stack.flatT).reshape([batch, -1, numLevels, C]);
  const y = tf.sum(tf.mul(all, onehot), 2).reshape([...x.shape.slice(0, -1), C]);
  return { y, all };
}

/**
 * x [B, ..., K] · W_bᵀ for every user b at hard `levels` ([B * C]). With `q` ([B, C, levels],
 * soft level probabilities) gradients reach q by the rule in the module comment; `q`'s values do
 * not enter the forward.
 */
export function quantLinear(stack: LevelStack, levels: Uint8Array, x: tf.Tensor, q?: tf.Tensor3D): tf.Tensor {
  const C = stack.spec.outChannels;
  const numLevels = stack.bits.length;
  const onehot = levelOneHot(levels, C, numLevels);
  if (!q) {
    const { y } = selectLevels(stack, x, onehot);
    onehot.dispose();
    return y;
  }
  const op = tf.customGrad((xIn, _qIn, save) => {
    const xShape = (xIn as tf.Tensor).shape;
    const { y, all } = selectLevels(stack, xIn as tf.Tensor, onehot);
    // Everything the backward reads must be saved: the forward's scope is disposed before it runs.
    (save as tf.GradSaveFunc)([all, onehot]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [Y, hot] = saved as [tf.Tensor, tf.Tensor4D];
        const batch = hot.shape[0];
        const dyE = (dy as tf.Tensor).reshape([batch, -1, 1, C]);
        const dx = mm(tf.mul(dyE, hot).reshape([-1, numLevels * C]), stack.flat).reshape(xShape);
        const dq = tf.sum(tf.mul(dyE, Y), 1).transpose([0, 2, 1]); // [B, C, levels]
        return [dx, dq];
      },
    };
  }) as (x: tf.Tensor, q: tf.Tensor) => tf.Tensor;
  const y = op(x, q);
  onehot.dispose();
  return y;
}
