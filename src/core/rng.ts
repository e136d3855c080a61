/**
 * The one small seeded sequential PRNG (mulberry32), for the synthetic data generators, training's
 * shuffles and dropout seeds, and test inputs. Its whole state is one uint32, which training
 * checkpoints store so a resumed run continues the same stream. Frozen weights do not use it:
 * they come from the counter-based generator in prng.ts, which any layer can regenerate by index.
 * The synthetic datasets and the pinned model tests fix its output, so a change here shows there.
 */
export class Rng {
  private s: number;

  /** `seed` is taken modulo 2^32; callers validate it is an integer. */
  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** The generator's state, a uint32 (what a checkpoint stores). */
  get state(): number {
    return this.s;
  }

  set state(s: number) {
    this.s = s >>> 0;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  intBetween(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** A fresh 31-bit seed for tfjs ops that take a numeric seed. */
  seed(): number {
    return this.int(0x7fffffff);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(items.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Exponential with the given mean (inverse CDF; 1 - u avoids log(0)). */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }

  /** Fisher-Yates, in place; returns `items`. */
  shuffle<A extends unknown[] | Int32Array>(items: A): A {
    const a = items as { [i: number]: unknown; readonly length: number };
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return items;
  }

  /** Index drawn with probability proportional to weights[i] (non-negative, positive sum). */
  weighted(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) total += weights[i]!;
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i]!;
      if (r < 0) return i;
    }
    // Rounding can leave r at a hair above 0: return the last index with positive weight.
    for (let i = weights.length - 1; i >= 0; i--) if (weights[i]! > 0) return i;
    throw new RangeError('weighted pick needs a positive weight');
  }
}

/** Draws from precomputed cumulative weights by binary search (for repeated draws from one list). */
export function sampleCumulative(rng: Rng, cumulative: Float64Array): number {
  const total = cumulative[cumulative.length - 1]!;
  const r = rng.next() * total;
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid]! > r) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
