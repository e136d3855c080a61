import { describe, expect, it } from 'vitest';
import { ChordError } from '../../src/core/errors.ts';
import { pairedDifference, PairedInputError } from '../../src/core/paired.ts';

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
