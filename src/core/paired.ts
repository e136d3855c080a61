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

/**
 * How the noise of a paired difference averaged over training seeds splits. Each seed s gives each
 * user u a difference d(s, u) = μ + a(u) + c(s) + e(s, u): a(u) stays with the user whatever the
 * seed, c(s) is a seed's shift shared by every user (one run simply better), e(s, u) the rest.
 * Estimated by a two-way analysis of variance without replication (users × seeds), each component
 * clamped at 0. pairedDifference over seed-averaged users sees a and e only: c is the same for
 * every user, so it moves the mean without widening that interval; halfWidthAt counts it once per seed.
 */
export interface SeedNoise {
  readonly seeds: number;
  readonly users: number;
  /** var(a): between users; more seeds never shrink it, only more users do. */
  readonly user: number;
  /** var(c): the shift a seed gives every user. */
  readonly seedShift: number;
  /** var(e): a user's difference from seed to seed, beyond the shift. */
  readonly residual: number;
}

/** SeedNoise from each seed's per-user differences (same users, same order, on every seed). */
export function seedNoise(perSeed: readonly ArrayLike<number>[]): SeedNoise {
  const seeds = perSeed.length;
  if (seeds < 2) throw new PairedInputError(`splitting the noise over seeds needs at least 2 seeds, got ${seeds}`);
  const users = perSeed[0]!.length;
  if (users < 2) throw new PairedInputError(`splitting the noise over seeds needs at least 2 users, got ${users}`);
  const userMean = new Float64Array(users);
  const seedMean = new Float64Array(seeds);
  for (let s = 0; s < seeds; s++) {
    const d = perSeed[s]!;
    if (d.length !== users) throw new PairedInputError(`seed ${s}: ${d.length} users, seed 0 has ${users}`);
    for (let u = 0; u < users; u++) {
      const x = d[u]!;
      if (!Number.isFinite(x)) throw new PairedInputError(`seed ${s}, user ${u}: difference ${x} is not finite`);
      userMean[u] = userMean[u]! + x / seeds;
      seedMean[s] = seedMean[s]! + x / users;
    }
  }
  const grand = seedMean.reduce((t, x) => t + x, 0) / seeds;
  let ssResidual = 0;
  for (let s = 0; s < seeds; s++) {
    for (let u = 0; u < users; u++) ssResidual += (perSeed[s]![u]! - userMean[u]! - seedMean[s]! + grand) ** 2;
  }
  const msResidual = ssResidual / ((seeds - 1) * (users - 1));
  const msSeed = (users * seedMean.reduce((t, x) => t + (x - grand) ** 2, 0)) / (seeds - 1);
  const msUser = (seeds * userMean.reduce((t, x) => t + (x - grand) ** 2, 0)) / (users - 1);
  return {
    seeds,
    users,
    user: Math.max(0, (msUser - msResidual) / seeds),
    seedShift: Math.max(0, (msSeed - msResidual) / users),
    residual: msResidual,
  };
}

/** The 95% half-width of the mean difference over `seeds` seeds on the same users, each seed's shift counted once. */
export function halfWidthAt(noise: SeedNoise, seeds: number): number {
  return Z95 * Math.sqrt(noise.user / noise.users + noise.seedShift / seeds + noise.residual / (seeds * noise.users));
}

/** The half-width no number of seeds goes below: the users' own part, which only more users shrink. */
export function userHalfWidth(noise: SeedNoise): number {
  return Z95 * Math.sqrt(noise.user / noise.users);
}

/**
 * The fewest seeds whose 95% interval would exclude 0 if the mean difference stayed `mean` and the
 * noise split as measured: a projection for planning runs, not a result. null when none up to
 * `maxSeeds` would: when the users' own part alone is wider than the mean (userHalfWidth; more users
 * needed), or when each seed's shift is large enough to need more seeds than that.
 */
export function seedsToResolve(mean: number, noise: SeedNoise, maxSeeds = 100): number | null {
  for (let k = 1; k <= maxSeeds; k++) if (halfWidthAt(noise, k) < Math.abs(mean)) return k;
  return null;
}
