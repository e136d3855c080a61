/**
 * A paired comparison of two models on the same users: the mean per-user difference of a metric
 * and its 95% confidence interval. Users are the independent units, so the differences are
 * averaged per user first; with hundreds of users (943 on ML-100K) the normal approximation of the
 * mean's sampling distribution is adequate. Two models' means that differ by less than the
 * interval's half-width are not told apart by this test set.
 */
import { ChordError } from './errors.ts';

/** Inputs that cannot be paired: other lengths, fewer than two users, or non-finite values. */
export class PairedInputError extends ChordError<'PairedInputError'> {
  override readonly name = 'PairedInputError';
  constructor(message: string) {
    super('PAIRED_INPUT', message);
  }
}

export interface PairedDifference {
  /** Users paired. */
  readonly n: number;
  /** Mean of a[i] - b[i]. */
  readonly mean: number;
  /** 95% confidence interval of the mean (normal approximation, sample standard deviation). */
  readonly lo: number;
  readonly hi: number;
}

/** z of the two-sided 95% interval. */
const Z95 = 1.959963984540054;

/** Mean and 95% interval of a[i] - b[i] over users i. */
export function pairedDifference(a: ArrayLike<number>, b: ArrayLike<number>): PairedDifference {
  if (a.length !== b.length) throw new PairedInputError(`${a.length} values paired with ${b.length}`);
  const n = a.length;
  if (n < 2) throw new PairedInputError(`a paired interval needs at least 2 users, got ${n}`);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (!Number.isFinite(d)) throw new PairedInputError(`user ${i}: difference of ${a[i]} and ${b[i]} is not finite`);
    sum += d;
  }
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (a[i]! - b[i]! - mean) ** 2;
  const half = Z95 * Math.sqrt(sq / (n - 1) / n);
  return { n, mean, lo: mean - half, hi: mean + half };
}
