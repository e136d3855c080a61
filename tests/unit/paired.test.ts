import { describe, expect, it } from 'vitest';
import { ChordError } from '../../src/core/errors.ts';
import { halfWidthAt, pairedDifference, PairedInputError, seedNoise, seedsToResolve, userHalfWidth } from '../../src/core/paired.ts';
import { fillNormal } from '../../src/core/prng.ts';

describe('pairedDifference', () => {
  it('gives the mean per-user difference with a normal 95% interval from the sample standard deviation', () => {
    // differences 1 2 3 4: mean 2.5, sample sd sqrt(5/3), standard error sqrt(5/3)/2
    const r = pairedDifference([1, 2, 3, 4], [0, 0, 0, 0]);
    const half = 1.959963984540054 * Math.sqrt(5 / 3) / 2;
    expect(r.n).toBe(4);
    expect(r.mean).toBe(2.5);
    expect(r.lo).toBeCloseTo(2.5 - half, 12);
    expect(r.hi).toBeCloseTo(2.5 + half, 12);
  });

  it('pairs users: a shared per-user offset cancels, so a constant gain has a zero-width interval', () => {
    const a = [0.9, 0.1, 0.5, 0.3, 0.7];
    const r = pairedDifference(a.map((x) => x + 0.02), a);
    expect(r.mean).toBeCloseTo(0.02, 12);
    expect(r.hi - r.lo).toBeLessThan(1e-12);
    // The same gain split into noise around it: an interval that contains it
    const noisy = pairedDifference([0.93, 0.11, 0.5, 0.33, 0.73], a);
    expect(noisy.lo).toBeLessThan(0.02);
    expect(noisy.hi).toBeGreaterThan(0.02);
    expect(pairedDifference(a, a)).toEqual({ n: 5, mean: 0, lo: 0, hi: 0 });
  });

  it('refuses unequal lengths, fewer than two users and non-finite values with a typed error', () => {
    const bad: [number[], number[]][] = [
      [[1, 2], [1]],
      [[1], [0]],
      [[1, NaN], [0, 0]],
      [[1, Infinity], [0, 0]],
    ];
    for (const [a, b] of bad) {
      expect(() => pairedDifference(a, b)).toThrow(PairedInputError);
      expect(() => pairedDifference(a, b)).toThrow(ChordError);
    }
    expect(() => pairedDifference([], [])).toThrow(expect.objectContaining({ code: 'PAIRED_INPUT' }));
  });
});

describe('seedNoise', () => {
  // d(s, u) = mu + a(u) + c(s) + e(s, u) with known variances: the estimates find them.
  const simulate = (seeds: number, users: number, sd: { user: number; seedShift: number; residual: number }) => {
    const a = fillNormal(new Float32Array(users), 11, 1, 0, sd.user);
    const c = fillNormal(new Float32Array(seeds), 11, 2, 0, sd.seedShift);
    return Array.from({ length: seeds }, (_, s) => {
      const e = fillNormal(new Float32Array(users), 11, 10 + s, 0, sd.residual);
      return Array.from({ length: users }, (_, u) => 0.002 + a[u]! + c[s]! + e[u]!);
    });
  };

  it('splits a seed-averaged difference into the user part, the seed shift and the rest', () => {
    const n = seedNoise(simulate(40, 4000, { user: 0.03, seedShift: 0.004, residual: 0.1 }));
    expect(n).toMatchObject({ seeds: 40, users: 4000 });
    expect(Math.sqrt(n.user)).toBeCloseTo(0.03, 2);
    expect(Math.sqrt(n.residual)).toBeCloseTo(0.1, 2);
    expect(Math.sqrt(n.seedShift)).toBeGreaterThan(0.002);
    expect(Math.sqrt(n.seedShift)).toBeLessThan(0.007);
  });

  it('gives the mean squares of a hand-computed table, residual, seed shift and user part each their own', () => {
    // Seeds × users [[1, 2, 6], [7, 7, 13]]: user means 4, 4.5, 9.5; seed means 3, 9; grand mean 6.
    // Residuals 0, ±0.5: MS_resid = 1 / ((2 − 1)(3 − 1)) = 0.5. MS_seed = 3 · (9 + 9) / 1 = 54, so
    // var(c) = (54 − 0.5) / 3. MS_user = 2 · (4 + 2.25 + 12.25) / 2 = 18.5, so var(a) = (18.5 − 0.5) / 2 = 9.
    const n = seedNoise([[1, 2, 6], [7, 7, 13]]);
    expect(n.seeds).toBe(2);
    expect(n.users).toBe(3);
    expect(n.residual).toBeCloseTo(0.5, 12);
    expect(n.seedShift).toBeCloseTo(53.5 / 3, 12);
    expect(n.user).toBeCloseTo(9, 12);
    const z = 1.959963984540054;
    expect(halfWidthAt(n, 2)).toBeCloseTo(z * Math.sqrt(9 / 3 + 53.5 / 3 / 2 + 0.5 / 6), 12);
    expect(userHalfWidth(n)).toBeCloseTo(z * Math.sqrt(9 / 3), 12);
  });

  it('has no seed shift where every seed is the same run and clamps components at 0', () => {
    const d = [0.1, -0.2, 0.3, 0, 0.05];
    const same = seedNoise([d, d, d]);
    expect(same.seedShift).toBe(0);
    expect(same.residual).toBeCloseTo(0, 15);
    expect(same.user).toBeCloseTo(sampleVariance(d), 12);
    // A pure shift: each seed moves every user by the same amount, users otherwise equal.
    const shift = seedNoise([[1, 1, 1], [2, 2, 2], [3, 3, 3]]);
    expect(shift).toEqual({ seeds: 3, users: 3, user: 0, seedShift: 1, residual: 0 });
  });

  it('projects the interval over more seeds: the shift and the rest shrink, the user part stays', () => {
    const noise = { seeds: 3, users: 900, user: 9e-4, seedShift: 1e-6, residual: 1.2e-2 };
    const z = 1.959963984540054;
    expect(halfWidthAt(noise, 3)).toBeCloseTo(z * Math.sqrt(9e-4 / 900 + 1e-6 / 3 + 1.2e-2 / 2700), 15);
    expect(halfWidthAt(noise, 10)).toBeLessThan(halfWidthAt(noise, 3));
    expect(halfWidthAt(noise, 1e9)).toBeCloseTo(z * Math.sqrt(9e-4 / 900), 6);
    const k = seedsToResolve(0.0025, noise)!;
    expect(halfWidthAt(noise, k)).toBeLessThan(0.0025);
    expect(halfWidthAt(noise, k - 1)).toBeGreaterThanOrEqual(0.0025);
    expect(seedsToResolve(-0.0025, noise)).toBe(k);
    // Below the users' own spread no number of seeds resolves it.
    expect(userHalfWidth(noise)).toBeCloseTo(z * Math.sqrt(9e-4 / 900), 15);
    expect(seedsToResolve(0.9 * userHalfWidth(noise), noise)).toBeNull();
    // Above it, a large seed shift can need more seeds than the search goes to.
    const shifty = { ...noise, user: 1e-4, seedShift: 1e-4 };
    expect(seedsToResolve(0.0015, shifty)).toBeNull();
    expect(userHalfWidth(shifty)).toBeLessThan(0.0015);
    expect(seedsToResolve(0.0015, shifty, 1000)).toBeGreaterThan(100);
  });

  it('refuses fewer than two seeds or users, unequal users and non-finite values with a typed error', () => {
    for (const bad of [[[1, 2]], [[1], [2]], [[1, 2], [1]], [[1, 2], [NaN, 0]]]) {
      expect(() => seedNoise(bad)).toThrow(PairedInputError);
    }
  });
});

/** Sample variance (n − 1). */
function sampleVariance(d: number[]): number {
  const m = d.reduce((t, x) => t + x, 0) / d.length;
  return d.reduce((t, x) => t + (x - m) ** 2, 0) / (d.length - 1);
}
