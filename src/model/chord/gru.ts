/**
 * The on-device profiler GRU in tfjs (training form of src/core/gru.ts): PyTorch nn.GRU equations
 * and gate order (r, z, n), tensors `gru.weight_ih` [3H, D], `gru.weight_hh` [3H, H],
 * `gru.bias_ih` [3H], `gru.bias_hh` [3H]. Its input is the raw item embedding (`item_emb` rows)
 * of the last N clicks, exactly what the page's GruProfiler feeds it.
 *
 * Windows are left-padded with item 0; a padding step leaves h unchanged, so a short history is
 * the GRU run from h = 0 over the real clicks only (GruProfiler's default, padShort = false).
 */
import * as tf from '@tensorflow/tfjs';
import { GRU_TENSORS } from '../../core/gru.ts';
import type { TensorMap } from '../../core/tensor-file.ts';
import { mm } from '../nn.ts';
import { need, variableFrom, type ParamMap } from '../params.ts';
import { Rng } from '../../core/rng.ts';

export const GRU_PARAM_NAMES = [GRU_TENSORS.weightIh, GRU_TENSORS.weightHh, GRU_TENSORS.biasIh, GRU_TENSORS.biasHh] as const;

/**
 * PyTorch's init, U(±1/sqrt(H)), except weight_ih, whose bound is divided by `inputRms`·sqrt(D):
 * item embeddings are small (xavier on a tall table: rms ~0.04), and with the default bound every
 * user would get nearly the same z at the start, i.e. the same strategy and no signal to learn
 * personalisation from.
 */
export function createGruParams(inputDim: number, hiddenDim: number, seed: number, inputRms = 1): ParamMap {
  const rng = new Rng(seed ^ 0x67a);
  const k = 1 / Math.sqrt(hiddenDim);
  const u = (n: number, bound: number) => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * bound);
  const ihBound = inputRms === 1 ? k : Math.sqrt(3) / (Math.sqrt(inputDim) * inputRms);
  const H3 = 3 * hiddenDim;
  return {
    [GRU_TENSORS.weightIh]: variableFrom(GRU_TENSORS.weightIh, [H3, inputDim], u(H3 * inputDim, ihBound)),
    [GRU_TENSORS.weightHh]: variableFrom(GRU_TENSORS.weightHh, [H3, hiddenDim], u(H3 * hiddenDim, k)),
    [GRU_TENSORS.biasIh]: variableFrom(GRU_TENSORS.biasIh, [H3], u(H3, k)),
    [GRU_TENSORS.biasHh]: variableFrom(GRU_TENSORS.biasHh, [H3], u(H3, k)),
  };
}

/**
 * z [B, H] for windows [B, N] (int32 item ids, left-padded with 0), reading item embeddings
 * from `itemEmb` [numItems + 1, D]. Differentiable in the GRU variables and in itemEmb.
 */
export function gruBatchForward(params: ParamMap, itemEmb: tf.Tensor2D, windows: tf.Tensor2D): tf.Tensor2D {
  const wih = need(params, GRU_TENSORS.weightIh);
  const whh = need(params, GRU_TENSORS.weightHh);
  const bih = need(params, GRU_TENSORS.biasIh);
  const bhh = need(params, GRU_TENSORS.biasHh);
  const [batch, steps] = windows.shape;
  const H = whh.shape[1]!;
  // Per gate k (r, z, n): slicing the small weights, not the [B, 3H] activations, saves six
  // strided copies per step and their gradients.
  const rows = (w: tf.Tensor, k: number) => w.slice([k * H, 0], [H, w.shape[1]!]);
  const part = (b: tf.Tensor, k: number) => b.slice([k * H], [H]);
  // Time-major, so each step's rows are one contiguous block and splitting into steps is cheap.
  const x = tf.gather(itemEmb, windows.transpose().reshape([-1])) as tf.Tensor2D; // [N*B, D]
  // Input projections of all steps at once; r's and z's recurrent biases fold in here (n's
  // cannot: r multiplies it).
  const inputGate = (k: number, bias: tf.Tensor) =>
    tf.unstack(tf.add(mm(x, rows(wih, k), false, true), bias).reshape([steps, batch, H]));
  const ir = inputGate(0, tf.add(part(bih, 0), part(bhh, 0)));
  const iz = inputGate(1, tf.add(part(bih, 1), part(bhh, 1)));
  const iN = inputGate(2, part(bih, 2));
  const [hr, hz, hn] = [0, 1, 2].map((k) => tf.transpose(rows(whh, k))); // [H, H] each
  const bhn = part(bhh, 2);
  const keep = tf.unstack(tf.cast(tf.notEqual(windows.transpose(), 0), 'float32').reshape([steps, batch, 1])); // N x [B, 1]
  let h: tf.Tensor2D = tf.zeros([batch, H]);
  for (let t = 0; t < steps; t++) {
    const r = tf.sigmoid(tf.add(ir[t]!, mm(h, hr!)));
    const u = tf.sigmoid(tf.add(iz[t]!, mm(h, hz!)));
    const n = tf.tanh(tf.add(iN[t]!, tf.mul(r, tf.add(mm(h, hn!), bhn))));
    const next = tf.add(tf.mul(tf.sub(1, u), n), tf.mul(u, h));
    const m = keep[t]!;
    h = tf.add(tf.mul(m, next), tf.mul(tf.sub(1, m), h)) as tf.Tensor2D;
  }
  return h;
}

/** The GRU variables as a host TensorMap (gru.json/.bin). */
export function gruTensors(params: ParamMap): TensorMap {
  const out: TensorMap = new Map();
  for (const name of GRU_PARAM_NAMES) {
    const v = need(params, name);
    out.set(name, { shape: [...v.shape], data: new Float32Array(v.dataSync()) });
  }
  return out;
}
