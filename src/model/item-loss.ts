/**
 * The loss every backbone puts on its target rows: full softmax over the catalogue, or, for
 * catalogues where a step's [targets x items] logits dominate its cost, a loss over a few sampled
 * negatives shared by the whole step:
 *
 *   softmax   cross-entropy over all items (the default; exact).
 *   sampled   sampled softmax: the target against K negatives drawn with replacement from q
 *             (uniform, or item popularity in the training sequences, add-one smoothed), every
 *             logit corrected by −log(K·q) so the estimate aims at the full softmax (Bengio &
 *             Senécal; Jean et al.); a negative equal to the row's target is removed.
 *   gbce      gSASRec's generalised binary cross-entropy (Petrov & Macdonald 2023): K uniform
 *             negatives, the positive's log-sigmoid weighted by β = α(t(1 − 1/α) + 1/α) with
 *             α = K / (N − 1), which undoes the overconfidence plain BCE learns from sampling.
 *
 * Negatives are drawn by the training loop from its seeded Rng, so a run stays reproducible and
 * resumable.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.ts';
import { mm, softmaxCrossEntropy } from './nn.ts';

export const ITEM_LOSSES = ['softmax', 'sampled', 'gbce'] as const;
export type ItemLossKind = (typeof ITEM_LOSSES)[number];

export const NEGATIVE_SAMPLERS = ['uniform', 'popularity'] as const;
export type NegativeSamplerKind = (typeof NEGATIVE_SAMPLERS)[number];

export interface ItemLossSpec {
  readonly kind: ItemLossKind;
  /** K: negatives per step (sampled, gbce). */
  readonly negatives: number;
  /** q of the sampled softmax (gbce always samples uniformly, as gSASRec does). */
  readonly sampler: NegativeSamplerKind;
  /** gbce's calibration t in [0, 1] (1: fully calibrated; gSASRec's default 0.75). */
  readonly gbceT: number;
}

export const ITEM_LOSS_DEFAULTS: ItemLossSpec = { kind: 'softmax', negatives: 256, sampler: 'uniform', gbceT: 0.75 };

/** One step's shared negatives, as tensors; the loop builds and disposes them. */
export interface SampledNegatives {
  readonly kind: 'sampled' | 'gbce';
  /** int32 [K]: item columns (item id − 1). */
  readonly cols: tf.Tensor1D;
  /** [numItems]: log(K·q) of every item (sampled) — constant, owned by the sampler. */
  readonly logExpected: tf.Tensor1D;
  /** gbce's β. */
  readonly beta: number;
}

/** gSASRec's β for K uniform negatives out of numItems items and calibration t. */
export function gbceBeta(negatives: number, numItems: number, t: number): number {
  const alpha = negatives / (numItems - 1);
  return alpha * (t * (1 - 1 / alpha) + 1 / alpha);
}

/**
 * Draws a step's negatives. q is uniform or proportional to (training count + 1), sampled by
 * binary search on its cumulative sum.
 */
export class NegativeSampler {
  private readonly cdf: Float64Array | undefined;
  private readonly logExpected: tf.Tensor1D;
  readonly beta: number;

  constructor(
    readonly spec: ItemLossSpec,
    readonly numItems: number,
    train: readonly ArrayLike<number>[],
  ) {
    if (spec.kind === 'softmax') throw new RangeError('full softmax samples no negatives');
    if (!Number.isInteger(spec.negatives) || spec.negatives < 1) throw new RangeError(`negatives ${spec.negatives} must be a positive integer`);
    if (!(spec.gbceT >= 0 && spec.gbceT <= 1)) throw new RangeError(`gbce t ${spec.gbceT} outside [0, 1]`);
    const K = spec.negatives;
    const logQ = new Float32Array(numItems);
    if (spec.kind === 'sampled' && spec.sampler === 'popularity') {
      const counts = new Float64Array(numItems).fill(1);
      for (const seq of train) for (let i = 0; i < seq.length; i++) if (seq[i]! > 0) counts[seq[i]! - 1]! += 1;
      let total = 0;
      for (const c of counts) total += c;
      this.cdf = new Float64Array(numItems);
      let run = 0;
      counts.forEach((c, j) => {
        run += c / total;
        this.cdf![j] = run;
        logQ[j] = Math.log((K * c) / total);
      });
    } else {
      this.cdf = undefined;
      logQ.fill(Math.log(K / numItems));
    }
    this.logExpected = tf.keep(tf.tensor1d(logQ));
    this.beta = spec.kind === 'gbce' ? gbceBeta(K, numItems, spec.gbceT) : 1;
  }

  /** K item columns drawn with replacement. */
  sampleColumns(rng: Rng): Int32Array {
    const out = new Int32Array(this.spec.negatives);
    for (let k = 0; k < out.length; k++) {
      if (!this.cdf) {
        out[k] = rng.int(this.numItems);
        continue;
      }
      const r = rng.next();
      let lo = 0;
      let hi = this.numItems - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.cdf[mid]! > r) hi = mid;
        else lo = mid + 1;
      }
      out[k] = lo;
    }
    return out;
  }

  /** A step's negatives as tensors (dispose `cols` after the step). */
  sample(rng: Rng): SampledNegatives {
    return {
      kind: this.spec.kind as 'sampled' | 'gbce',
      cols: tf.tensor1d(this.sampleColumns(rng), 'int32'),
      logExpected: this.logExpected,
      beta: this.beta,
    };
  }

  dispose(): void {
    this.logExpected.dispose();
  }
}

/** Large enough to remove a logit from a softmax, finite so no inf − inf appears. */
const REMOVED = 1e9;

/**
 * Mean loss of target rows `rows` [M, d] whose targets are columns `targets` [M] of the item
 * table `table` [N, d] (plus an item bias [N] where the backbone has one): full softmax, or the
 * sampled loss of `negatives`.
 */
export function itemLoss(
  rows: tf.Tensor2D,
  table: tf.Tensor2D,
  bias: tf.Tensor1D | undefined,
  targets: tf.Tensor1D,
  negatives?: SampledNegatives,
): tf.Scalar {
  if (!negatives) {
    const logits = mm(rows, table, false, true) as tf.Tensor2D;
    return softmaxCrossEntropy(bias ? (tf.add(logits, bias) as tf.Tensor2D) : logits, targets);
  }
  let pos = tf.sum(tf.mul(rows, tf.gather(table, targets)), 1); // [M]
  let neg = mm(rows, tf.gather(table, negatives.cols), false, true); // [M, K]
  if (bias) {
    pos = tf.add(pos, tf.gather(bias, targets));
    neg = tf.add(neg, tf.gather(bias, negatives.cols));
  }
  // 1 where a sampled negative is the row's own target.
  const hit = tf.cast(tf.equal(targets.expandDims(1), negatives.cols.expandDims(0)), 'float32');
  if (negatives.kind === 'sampled') {
    const posLogit = tf.sub(pos, tf.gather(negatives.logExpected, targets)).expandDims(1);
    const negLogit = tf.sub(tf.sub(neg, tf.gather(negatives.logExpected, negatives.cols)), tf.mul(hit, REMOVED));
    const logits = tf.concat([posLogit, negLogit], 1);
    return tf.mean(tf.sub(tf.logSumExp(logits, 1), posLogit.squeeze([1]))) as tf.Scalar;
  }
  // gbce: −β·log σ(pos) − Σ_k log σ(−neg_k), averaged over the 1 + K terms of each row, with
  // −log σ(x) = softplus(−x) (tf.logSigmoid's gradient fails inside variableGrads on wasm).
  const posTerm = tf.mul(negatives.beta, tf.softplus(tf.neg(pos)));
  const negTerm = tf.sum(tf.mul(tf.sub(1, hit), tf.softplus(neg)), 1);
  return tf.div(tf.mean(tf.add(posTerm, negTerm)), 1 + negatives.cols.shape[0]) as tf.Scalar;
}
