/** Timing summaries for the benchmark page. */

export interface Summary {
  readonly p50: number;
  readonly p95: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('percentile of no samples');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} outside 0..100`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** Milliseconds, rounded to 3 decimals for the report. */
function ms(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function summarize(samples: readonly number[]): Summary {
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  return {
    p50: ms(percentile(samples, 50)),
    p95: ms(percentile(samples, 95)),
    mean: ms(mean),
    min: ms(Math.min(...samples)),
    max: ms(Math.max(...samples)),
    n: samples.length,
  };
}

/** Wall time of one awaited call, in ms. */
export async function timed<T>(work: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await work();
  return { ms: performance.now() - t0, value };
}

/** `a / b` rounded to 2 decimals (for "x times faster" fields). */
export function ratio(a: number, b: number): number {
  return Math.round((a / b) * 100) / 100;
}
