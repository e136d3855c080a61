/**
 * Strategies during training: the hard levels every forward uses come from core's own Γ and Λ
 * (gammaAllocate, lambdaAdjust) run on the channel scores the tfjs hypernet produced, so training
 * quantizes exactly as the strategy server will; the soft levels that carry gradients back to the
 * hypernets are a relaxation around that hard point.
 *
 * Soft tiers (per user and layer, on log scores ℓ = log(score), which are scale-free): with θ1
 * halfway between the k-th and (k+1)-th largest ℓ and θ2 between the 2k-th and (2k+1)-th
 * (k = tierSize(C, β)), and temperature τ = τ0 · std(ℓ),
 *   p(8 bit) = σ((ℓ - θ1)/τ),  p(4 bit) = σ((ℓ - θ2)/τ) - σ((ℓ - θ1)/τ),  p(2 bit) = 1 - σ((ℓ - θ2)/τ).
 * The hard tier of a channel is the one its soft tier puts most weight on when τ → 0.
 * Soft Λ (per user): over the layers' α_L, θu between the up-th and (up+1)-th largest, θd between
 * the down-th and (down+1)-th smallest, τL = τ0 · std(α_L):
 *   (p_up, p_stay, p_down) = softmax((α_L - θu)/τL, 0, (θd - α_L)/τL).
 * Level probabilities combine the two with Λ's mapping (tiers -> levels {0, 1, 3}, shifted ±1 and
 * clamped), e.g. p(level 0) = p_stay·p(2 bit) + p_down·(p(2 bit) + p(4 bit)).
 */
import * as tf from '@tensorflow/tfjs';
import { gammaAllocate, lambdaAdjust, tierSize } from '../../core/allocation.ts';
import type { HypernetLayer } from '../../core/hypernet.ts';
import type { LevelTable } from '../../core/strategy.ts';

/** Stand-in for ±infinity in thresholds: far outside any log score, finite so gradients stay 0. */
const FAR = 1e4;
const MIN_TAU = 1e-6;

export interface AllocationSettings {
  readonly layers: readonly HypernetLayer[];
  readonly beta: number;
  readonly levelTable: LevelTable;
  /** Λ layer counts; {0, 0} without an L head. */
  readonly lambda: { readonly up: number; readonly down: number };
  /** τ0 of the soft relaxation (see the module comment). */
  readonly temperature: number;
}

export interface BatchAllocation {
  /** Per layer: hard level index (0..3) per user and channel, [B * C] user-major. */
  readonly levels: Uint8Array[];
  /** Per layer: θ1, θ2, τ per user, each [B]. */
  readonly tiers: { theta1: Float32Array; theta2: Float32Array; tau: Float32Array }[];
  /** Per user: θu, θd, τL, each [B]. */
  readonly shift: { thetaUp: Float32Array; thetaDown: Float32Array; tau: Float32Array };
}

function std(values: ArrayLike<number>): number {
  let mean = 0;
  for (let i = 0; i < values.length; i++) mean += values[i]!;
  mean /= values.length;
  let v = 0;
  for (let i = 0; i < values.length; i++) v += (values[i]! - mean) ** 2;
  return Math.sqrt(v / values.length);
}

/** log(score) as the soft path computes it (tiny offset so a zero score stays finite). */
export const LOG_OFFSET = 1e-30;
function logScore(s: number): number {
  return Math.log(s + LOG_OFFSET);
}

/** Halfway between the r-th and (r+1)-th of `sorted` (descending), ±FAR past either end. */
function boundary(sorted: readonly number[], r: number): number {
  if (r <= 0) return FAR;
  if (r >= sorted.length) return -FAR;
  return (sorted[r - 1]! + sorted[r]!) / 2;
}

/**
 * Hard levels (core Γ + Λ) and the soft thresholds for a batch. `scores[l]` is layer l's channel
 * scores [B * C_l], `alphaL` is [B * layers].
 */
export function allocateBatch(
  s: AllocationSettings,
  batch: number,
  scores: readonly Float32Array[],
  alphaL: Float32Array,
): BatchAllocation {
  const nL = s.layers.length;
  const levels = s.layers.map((ly) => new Uint8Array(batch * ly.outChannels));
  const tiers = s.layers.map(() => ({
    theta1: new Float32Array(batch),
    theta2: new Float32Array(batch),
    tau: new Float32Array(batch),
  }));
  const shift = { thetaUp: new Float32Array(batch), thetaDown: new Float32Array(batch), tau: new Float32Array(batch) };
  for (let b = 0; b < batch; b++) {
    const layerTiers = s.layers.map((ly, l) => {
      const C = ly.outChannels;
      const row = scores[l]!.subarray(b * C, (b + 1) * C);
      const k = tierSize(C, s.beta);
      const logs = Array.from(row, logScore);
      const sorted = [...logs].sort((x, y) => y - x);
      tiers[l]!.theta1[b] = boundary(sorted, k);
      tiers[l]!.theta2[b] = boundary(sorted, 2 * k);
      tiers[l]!.tau[b] = Math.max(MIN_TAU, s.temperature * std(logs));
      return { name: ly.name, tiers: gammaAllocate(row, s.beta) };
    });
    const aL = alphaL.subarray(b * nL, (b + 1) * nL);
    const strategy = lambdaAdjust(layerTiers, aL, {
      up: s.lambda.up,
      down: s.lambda.down,
      beta: s.beta,
      levelTable: s.levelTable,
    });
    strategy.layers.forEach((ly, l) => levels[l]!.set(ly.levels, b * ly.levels.length));
    const sortedL = Array.from(aL).sort((x, y) => y - x);
    shift.thetaUp[b] = boundary(sortedL, s.lambda.up);
    shift.thetaDown[b] = boundary(sortedL, nL - s.lambda.down);
    shift.tau[b] = Math.max(MIN_TAU, s.temperature * std(aL));
  }
  return { levels, tiers, shift };
}

/**
 * Soft level probabilities [B, C, 4] of one layer (see the module comment). `scores` [B, C] and
 * `alphaL` [B, 1] (this layer's α_L) are the differentiable hypernet outputs; the thresholds are
 * constants of this step.
 */
export function softLevels(
  scores: tf.Tensor2D,
  tiers: BatchAllocation['tiers'][number],
  alphaL: tf.Tensor2D | null,
  shift: BatchAllocation['shift'] | null,
): tf.Tensor3D {
  const batch = scores.shape[0];
  const col = (a: Float32Array) => tf.tensor2d(a, [batch, 1]);
  const ls = tf.log(tf.add(scores, LOG_OFFSET));
  const tau = col(tiers.tau);
  const s1 = tf.sigmoid(tf.div(tf.sub(ls, col(tiers.theta1)), tau));
  const s2 = tf.sigmoid(tf.div(tf.sub(ls, col(tiers.theta2)), tau));
  const p8 = s1;
  const p4 = tf.sub(s2, s1);
  const p2 = tf.sub(1, s2);
  if (!alphaL || !shift) return levelsLast([p2, p4, tf.zerosLike(p2), p8]);
  const tauL = col(shift.tau);
  const up = tf.div(tf.sub(alphaL, col(shift.thetaUp)), tauL);
  const down = tf.div(tf.sub(col(shift.thetaDown), alphaL), tauL);
  const p = tf.softmax(tf.concat([up, tf.zerosLike(up), down], 1)); // [B, 3]
  const pUp = p.slice([0, 0], [batch, 1]);
  const pStay = p.slice([0, 1], [batch, 1]);
  const pDown = p.slice([0, 2], [batch, 1]);
  const q0 = tf.add(tf.mul(pStay, p2), tf.mul(pDown, tf.add(p2, p4)));
  const q1 = tf.add(tf.mul(pStay, p4), tf.mul(pUp, p2));
  const q2 = tf.add(tf.mul(pUp, p4), tf.mul(pDown, p8));
  const q3 = tf.mul(tf.add(pStay, pUp), p8);
  return levelsLast([q0, q1, q2, q3]);
}

/**
 * [B, C] x levels -> [B, C, levels]. Stacked on a new first axis and transposed: stacking on the
 * last axis (and its gradient, unstacking there) copies one value at a time in tfjs-wasm.
 */
function levelsLast(q: tf.Tensor[]): tf.Tensor3D {
  return tf.transpose(tf.stack(q, 0), [1, 2, 0]) as tf.Tensor3D;
}
