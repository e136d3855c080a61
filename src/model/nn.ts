/** Functional building blocks shared by the backbones and CHORD. */
import * as tf from '@tensorflow/tfjs';

function swapLast(t: tf.Tensor): tf.Tensor {
  return t.rank === 2 ? tf.transpose(t) : tf.transpose(t, [0, 2, 1]);
}

/**
 * Multiply-adds per batch element from which a batched product runs faster as one 2D product per
 * element. tfjs-wasm hands a BatchMatMul with batch > 1 to a plain blocked loop and only a 2D one
 * to XNNPACK. Measured on the 2-core machine: SASRec's attention scores at batch 128 with 2 heads,
 * [256,50,32]x[256,32,50], take 29-42 ms batched and 14-17 ms as 256 XNNPACK products with the
 * unstack and stack; [256,40,40]x[256,40,32] 24 against 11 ms. Below about 30x32x30 the calls'
 * own cost wins ([256,30,32]x[256,32,30] 8.5 against 8.2 ms, [256,20,32]x[256,32,20] 7.2 against
 * 9.9, [256,10,10]x[256,10,32] 2.8 against 6.4), so short windows keep the batched kernel.
 */
const PER_ELEMENT_PRODUCT_MIN_MACS = 40_000;

/** a x b for untransposed rank-2 or rank-3 operands (rank 3: the same batch size on both sides). */
function product(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.rank === 3 && b.rank === 3 && a.shape[0]! > 1 && a.shape[0] === b.shape[0] && tf.getBackend() === 'wasm') {
    const [, m, k] = a.shape as [number, number, number];
    if (m * k * b.shape[2]! >= PER_ELEMENT_PRODUCT_MIN_MACS) {
      return tf.tidy(() => {
        const bs = tf.unstack(b);
        return tf.stack(tf.unstack(a).map((ai, i) => tf.matMul(ai, bs[i]!)));
      });
    }
  }
  return tf.matMul(a, b);
}

const plainMatMul = tf.customGrad((a, b, save) => {
  const A = a as tf.Tensor;
  const B = b as tf.Tensor;
  (save as tf.GradSaveFunc)([A, B]);
  return {
    value: product(A, B),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor, tf.Tensor];
      return [product(dy, swapLast(sb)), product(swapLast(sa), dy)];
    },
  };
}) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/**
 * tf.matMul for rank-2 or rank-3 operands, but every product (forward and both gradients) is run
 * with untransposed operands, transposing explicitly first. The wasm backend's BatchMatMul is
 * 10-20x slower with a transpose flag than without one (e.g. [6400,64]x[64,64]^T: 34 ms vs
 * 1.8 ms), and tfjs's own gradient uses those flags; the explicit transposes cost ~1%. Large
 * batched products run per batch element (PER_ELEMENT_PRODUCT_MIN_MACS).
 */
export function mm(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  return plainMatMul(transposeA ? swapLast(a) : a, transposeB ? swapLast(b) : b);
}

/** Layer norm over the last axis. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

export function dropout(x: tf.Tensor, rate: number, training: boolean, seed: () => number): tf.Tensor {
  if (!training || rate <= 0) return x;
  return tf.dropout(x, rate, undefined, seed());
}

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
