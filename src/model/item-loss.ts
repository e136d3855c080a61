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
import { mm } from './nn.ts';

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
  /** [numItems]: log(K·q) of every item. */
  readonly logExpected: tf.Tensor1D;
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

/**
 * The most logits ([target rows x items]) the full softmax forms at once. Above it the loss runs in
 * row chunks and its backward recomputes each chunk's exponentials: a Sports step of 6,400 target
 * rows over 18,358 items would otherwise hold several 470 MB tensors and run tfjs-wasm out of
 * memory (XNNPACK status 6, then "memory access out of bounds"). At or below it the forward's
 * exponentials are kept for the backward: an ML-100K step has at most 128 x 50 x 1,153 (7.4M)
 * logits. The Amazon sets' largest steps (Toys 76M, Sports 117M) are chunked.
 */
export const FULL_SOFTMAX_MAX_LOGITS = 16 * 1024 * 1024;

/**
 * Mean full-softmax cross-entropy of `rows` [M, d] over `table` [N, d] (+ `bias` [N]) with
 * targets `targets` [M], `chunkRows` rows at a time (one piece when M ≤ chunkRows).
 *
 * Written out rather than left to autodiff because the [M, N] passes are most of a step on a
 * large catalogue (a Sports step's logits are ~12M values against ~2M multiply-adds of the
 * backbone per target row): autodiff of logSoftmax + one-hot + mul + sum makes about a dozen such
 * passes; this makes four (max, sub, exp, sum), all in the forward. With E = exp(logits − max)
 * and s its row sums (P = E / s):
 *   value  = mean(max + log s − logit[target]),
 *   dRows  = g·((E·table) / s − table[t]),   dTable = g·(Eᵀ·(rows / s) − Σ_t rows),
 *   dBias  = g·((1/s)ᵀ·E − counts(t)),       g = dy / M,
 * so 1/s scales [M, d] and [M] operands, never an [M, N] one. In one piece E is kept for the
 * backward; in chunks each chunk's E is recomputed from the kept row maxima, so no [M, N] tensor
 * is ever formed. The value and gradients of softmax cross-entropy of rows·tableᵀ + bias, up to
 * float rounding.
 */
export function fullSoftmaxLoss(
  rows: tf.Tensor2D,
  table: tf.Tensor2D,
  bias: tf.Tensor1D | undefined,
  targets: tf.Tensor1D,
  chunkRows = Math.max(1, Math.floor(FULL_SOFTMAX_MAX_LOGITS / table.shape[0])),
): tf.Scalar {
  const m = rows.shape[0];
  const n = table.shape[0];
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new RangeError(`chunkRows ${chunkRows} must be a positive integer`);
  const starts = Array.from({ length: Math.ceil(m / chunkRows) }, (_, i) => i * chunkRows);
  const onePiece = starts.length === 1;
  const slice = <T extends tf.Tensor>(t: T, start: number): T => (onePiece ? t : (t.slice(start, Math.min(chunkRows, m - start)) as T));
  // Untransposed products only (see mm): the table is transposed once, the [M, N] operands never.
  const exponentials = (rc: tf.Tensor2D, tT: tf.Tensor2D, b: tf.Tensor1D | undefined, rowMax?: tf.Tensor1D) =>
    tf.tidy(() => {
      const logits = tf.matMul(rc, tT);
      const biased = b ? tf.add(logits, b) : logits;
      const max = rowMax ?? (tf.max(biased, 1) as tf.Tensor1D);
      return { max, e: tf.exp(tf.sub(biased, max.expandDims(1))) as tf.Tensor2D };
    });
  const op = tf.customGrad((...args) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [r, t, b] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D | undefined];
    const forward = tf.tidy(() => {
      const tT = tf.transpose(t) as tf.Tensor2D;
      const maxes: tf.Tensor1D[] = [];
      const sums: tf.Tensor1D[] = [];
      let kept: tf.Tensor2D | undefined;
      for (const s of starts) {
        const { max, e } = exponentials(slice(r, s), tT, b);
        maxes.push(max);
        sums.push(tf.sum(e, 1));
        if (onePiece) kept = e;
        else e.dispose();
      }
      const max = onePiece ? maxes[0]! : (tf.concat(maxes) as tf.Tensor1D);
      const sum = onePiece ? sums[0]! : (tf.concat(sums) as tf.Tensor1D);
      const picked = tf.sum(tf.mul(r, tf.gather(t, targets)), 1);
      const logit = b ? tf.add(picked, tf.gather(b, targets)) : picked;
      const value = tf.mean(tf.sub(tf.add(max, tf.log(sum)), logit)) as tf.Scalar;
      return { value, max, inverseSum: tf.reciprocal(sum) as tf.Tensor1D, kept };
    });
    // The backward reads only what the engine keeps for it: a tensor it does not save may be gone by then.
    save([r, t, ...(b ? [b] : []), forward.max, forward.inverseSum, ...(forward.kept ? [forward.kept] : [])]);
    return {
      value: forward.value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [r, t] = saved as [tf.Tensor2D, tf.Tensor2D];
          const b = bias ? (saved[2] as tf.Tensor1D) : undefined;
          const rest = saved.slice(b ? 3 : 2);
          const [max, inverseSum, kept] = rest as [tf.Tensor1D, tf.Tensor1D, tf.Tensor2D | undefined];
          const tT = onePiece ? undefined : (tf.transpose(t) as tf.Tensor2D);
          const dRows: tf.Tensor[] = [];
          let dTableT: tf.Tensor = tf.zeros([t.shape[1], n]);
          let dBias: tf.Tensor | undefined = b ? tf.zeros([1, n]) : undefined;
          for (const s of starts) {
            const step = tf.tidy(() => {
              const rc = slice(r, s);
              const w = slice(inverseSum, s).expandDims(1);
              const e = kept ?? exponentials(rc, tT!, b, slice(max, s)).e;
              return {
                rows: tf.mul(tf.matMul(e, t), w),
                tableT: tf.add(dTableT, tf.matMul(tf.transpose(tf.mul(rc, w)), e)),
                ...(dBias ? { bias: tf.add(dBias, tf.matMul(tf.transpose(w), e)) } : {}),
              };
            });
            tf.dispose([dTableT, ...(dBias ? [dBias] : [])]);
            dRows.push(step.rows);
            dTableT = step.tableT;
            dBias = step.bias;
          }
          const g = tf.div(dy, m);
          const gradRows = tf.mul(tf.sub(onePiece ? dRows[0]! : tf.concat(dRows), tf.gather(t, targets)), g);
          const gradTable = tf.mul(tf.sub(tf.transpose(dTableT), tf.unsortedSegmentSum(r, targets, n)), g);
          if (!dBias) return [gradRows, gradTable];
          const counts = tf.unsortedSegmentSum(tf.onesLike(targets).toFloat(), targets, n);
          return [gradRows, gradTable, tf.mul(tf.sub(dBias.reshape([n]), counts), g)];
        }),
    };
  }) as (...inputs: tf.Tensor[]) => tf.Scalar;
  return bias ? op(rows, table, bias) : op(rows, table);
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
    return fullSoftmaxLoss(rows, table, bias, targets);
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
