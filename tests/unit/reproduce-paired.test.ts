/**
 * Paired comparisons in the reproduce report: per-user test ranks kept in a sidecar (over a real
 * tiny artifact), the differences per user averaged over seeds, and the markdown table.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ndcgAtK } from '../../src/core/metrics.ts';
import { halfWidthAt, pairedDifference, seedNoise, seedsToResolve } from '../../src/core/paired.ts';
import { meanNdcg10, testRanks, type TestRanks, type TestRanksSidecar } from '../../src/model/reproduce/diagnostics.ts';
import { pairedTable, rankGainTable, seedProjectionTable } from '../../src/model/reproduce/markdown.ts';
import { pairedComparisons } from '../../src/model/reproduce/report.ts';
import { finishedRun } from '../fixtures/reproduce-runs.ts';
import { dirState, expectCached, tempRunDir, tinyFinishedRun } from '../fixtures/reproduce-sidecars.ts';

const ranks = (unmasked: number[], masked: number[] = unmasked): TestRanks => ({ users: unmasked.map((_, i) => i), unmasked, masked });

describe('pairedComparisons', () => {
  const finished = new Map([
    finishedRun('sasrec-base-s1', 0.06),
    finishedRun('sasrec-base-s2', 0.06),
    finishedRun('sasrec-quant-s1', 0.05),
    finishedRun('sasrec-quant-s2', 0.05),
    finishedRun('sasrec-chord-l2468-b0.125-pre-s1', 0.05),
    finishedRun('sasrec-quant-pre-s1', 0.05),
    finishedRun('sasrec-chord-l2468-b0.25-s1', 0.05), // an ablation: never compared
  ]);
  // Four users. Base finds users 0 and 1 at rank 0 on both seeds; Quant at rank 0 on seed 1 and at
  // rank 1 on seed 2 for user 0, and never for user 1; users 2 and 3 miss the top 10 everywhere.
  const all = new Map([
    ['sasrec-base-s1', ranks([0, 0, 50, 60])],
    ['sasrec-base-s2', ranks([0, 0, 50, 60])],
    ['sasrec-quant-s1', ranks([0, 20, 50, 60], [0, 0, 50, 60])],
    ['sasrec-quant-s2', ranks([1, 20, 50, 60], [0, 0, 50, 60])],
    ['sasrec-chord-l2468-b0.125-pre-s1', ranks([0, 0, 50, 60])],
    ['sasrec-quant-pre-s1', ranks([0, 0, 50, 60])],
    ['sasrec-chord-l2468-b0.25-s1', ranks([5, 5, 5, 5])],
  ]);

  it('averages each user\'s difference over the seeds both runs have, then pairs over users', () => {
    const out = pairedComparisons(finished, all);
    const find = (a: string, b: string) => out.find((c) => c.a === a && c.b === b)!;
    const bq = find('base', 'quant');
    expect(bq.seeds).toEqual([1, 2]);
    expect(bq.users).toBe(4);
    // Per user, the mean over seeds: user 0 (0 + (1 - 1/log2 3)) / 2, user 1 1, users 2 and 3 0.
    const u0 = (1 - ndcgAtK(1, 10)) / 2;
    expect(bq.ndcg10.unmasked).toEqual(pairedDifference([u0, 1, 0, 0], [0, 0, 0, 0]));
    expect(bq.ndcg10.masked).toEqual({ n: 4, mean: 0, lo: 0, hi: 0 });
    // Only seed 1 has both frozen-pretrained runs; equal ranks give exactly 0.
    expect(find('chord-pre', 'quant-pre')).toMatchObject({ seeds: [1], ndcg10: { unmasked: { mean: 0 } } });
    // Missing runs: no comparison (no custom anywhere, and the β ablation is no headline run).
    expect(out.some((c) => c.a === 'custom' || c.b === 'custom')).toBe(false);
    expect(out.every((c) => c.backbone === 'sasrec')).toBe(true);
    // Without ranks nothing is compared.
    expect(pairedComparisons(finished, new Map())).toEqual([]);
  });

  it("sets the windows-trained runs against Quant on CHORD's examples, in each mode, and that control against Quant", () => {
    const withControls = new Map([
      ...finished,
      finishedRun('sasrec-custom-l2468-b0.125-s1', 0.06),
      finishedRun('sasrec-quant-examples-s1', 0.05),
      finishedRun('sasrec-quant-examples-pre-s1', 0.05),
    ]);
    const ranked = new Map([
      ...all,
      ['sasrec-custom-l2468-b0.125-s1', ranks([0, 0, 50, 60])],
      ['sasrec-quant-examples-s1', ranks([0, 20, 50, 60])],
      ['sasrec-quant-examples-pre-s1', ranks([0, 0, 0, 60])],
    ]);
    const out = pairedComparisons(withControls, ranked);
    const find = (a: string, b: string) => out.find((c) => c.a === a && c.b === b);
    // custom − control: user 1 from rank 20 to 0 on the one seed with both.
    expect(find('custom', 'quant-examples')).toMatchObject({ seeds: [1], ndcg10: { unmasked: pairedDifference([0, 1, 0, 0], [0, 0, 0, 0]) } });
    expect(find('quant-examples', 'quant')!.ndcg10.unmasked.mean).toBe(0);
    // The frozen-pretrained control is its own column: user 2 at rank 0 only there.
    expect(find('chord-pre', 'quant-examples-pre')!.ndcg10.unmasked).toEqual(pairedDifference([0, 0, -1, 0], [0, 0, 0, 0]));
    expect(find('quant-examples-pre', 'quant-pre')!.ndcg10.unmasked).toEqual(pairedDifference([0, 0, 1, 0], [0, 0, 0, 0]));
    expect(find('chord', 'quant-examples')).toBeUndefined(); // no random-frozen CHORD here
  });

  it('refuses runs that ranked other test users', () => {
    const other = new Map(all);
    other.set('sasrec-quant-s2', { users: [0, 1, 2, 5], unmasked: [0, 0, 0, 0], masked: [0, 0, 0, 0] });
    expect(() => pairedComparisons(finished, other)).toThrow(/seed 2: the runs ranked other test users/);
  });

  it('tables each difference with its interval and stars the ones that exclude 0', () => {
    const lines = pairedTable(pairedComparisons(finished, all));
    expect(lines).toContain('## Are the differences more than noise? Paired on the same test users');
    const row = lines.find((l) => l.startsWith('| sasrec | base − quant |'))!;
    const d = pairedDifference([(1 - ndcgAtK(1, 10)) / 2, 1, 0, 0], [0, 0, 0, 0]);
    const sign = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(4)}`;
    // This interval contains 0 (4 users): no star; masked is an exact 0.
    expect(d.lo).toBeLessThan(0);
    expect(row).toBe(`| sasrec | base − quant | 1, 2 | ${sign(d.mean)} [${sign(d.lo)}, ${sign(d.hi)}] | +0.0000 [+0.0000, +0.0000] |`);
    const ndcg10 = { unmasked: { n: 9, mean: 0.01, lo: 0.002, hi: 0.018 }, masked: { n: 9, mean: -0.01, lo: -0.02, hi: -0.001 } };
    const starred = pairedTable([{ backbone: 'caser', a: 'chord-pre', b: 'base', seeds: [1], users: 9, ndcg10, log2RankGain: ndcg10 }]);
    expect(starred.at(-1)).toBe('| caser | chord-pre − base | 1 | +0.0100 [+0.0020, +0.0180] * | −0.0100 [−0.0200, −0.0010] * |');
    expect(pairedTable([])).toEqual([]);
  });
});

describe('seedProjectionTable', () => {
  const finished = new Map([
    finishedRun('sasrec-base-s1', 0.06),
    finishedRun('sasrec-base-s2', 0.06),
    finishedRun('sasrec-quant-s1', 0.05),
    finishedRun('sasrec-quant-s2', 0.05),
    finishedRun('sasrec-quant-pre-s1', 0.05),
  ]);
  // Twenty users. Base finds every user at rank 0; Quant misses users 0–9 on seed 1 and users 0–8
  // and 10 on seed 2 (the masked ranks equal Base's), so each seed's differences are 1 for ten users.
  const at = (missed: (u: number) => boolean) => Array.from({ length: 20 }, (_, u) => (missed(u) ? 50 : 0));
  const top = at(() => false);
  const all = new Map([
    ['sasrec-base-s1', ranks(top)],
    ['sasrec-base-s2', ranks(top)],
    ['sasrec-quant-s1', ranks(at((u) => u < 10), top)],
    ['sasrec-quant-s2', ranks(at((u) => u < 9 || u === 10), top)],
    ['sasrec-quant-pre-s1', ranks(top)],
  ]);

  it('splits the noise of differences run on two seeds or more and projects the seeds that would resolve them', () => {
    const out = pairedComparisons(finished, all);
    const bq = out.find((c) => c.a === 'base' && c.b === 'quant')!;
    expect(bq.noise!.ndcg10.unmasked).toEqual(seedNoise([at((u) => u < 10).map((r) => (r ? 1 : 0)), at((u) => u < 9 || u === 10).map((r) => (r ? 1 : 0))]));
    // One seed: nothing to split.
    expect(out.find((c) => c.b === 'quant-pre')!.noise).toBeUndefined();
    const lines = seedProjectionTable(out);
    expect(lines).toContain('## How many seeds would resolve it? (a projection for planning, not a result)');
    const n = bq.noise!.ndcg10.unmasked;
    const needed = seedsToResolve(bq.ndcg10.unmasked.mean, n);
    expect(needed).not.toBeNull();
    expect(lines.at(-1)).toBe(
      `| sasrec | base − quant | 1, 2 | +0.5000 | ±${halfWidthAt(n, 2).toFixed(4)} | ±${halfWidthAt(n, 10).toFixed(4)} | ${needed} | +0.0000 | ±0.0000 | ±0.0000 | – |`,
    );
    expect(lines.filter((l) => l.startsWith('| sasrec |'))).toHaveLength(1);
    // Unresolvable: by the users' own spread ("more users"), or by each seed's shift within 100 seeds.
    const d = (mean: number) => ({ n: 900, mean, lo: mean - 0.01, hi: mean + 0.01 });
    const noisy = { seeds: 3, users: 900, user: 1e-4, seedShift: 1e-4, residual: 1.2e-2 };
    const row = (mean: number) =>
      seedProjectionTable([{ ...bq, ndcg10: { unmasked: d(mean), masked: d(mean) }, noise: { ndcg10: { unmasked: noisy, masked: noisy }, log2RankGain: { unmasked: noisy, masked: noisy } } }]).at(-1)!;
    expect(row(0.0015)).toMatch(/\| over 100 \|$/);
    expect(row(0.0005)).toMatch(/\| more users \|$/);
    expect(seedProjectionTable(pairedComparisons(finished, new Map([...all].filter(([k]) => !k.endsWith('s2')))))).toEqual([]);
  });

  it("pairs the target's log2 rank too, which sees moves outside the top 10, and tables it with and without the seed shift", () => {
    // Seed 1: Quant ranks user 0's target 3rd (rank 2) where Base ranks it 1st, and user 1's 100th
    // against Base's 20th: both outside the top 10 for user 1, so NDCG@10 sees only user 0.
    const two = new Map([finishedRun('sasrec-base-s1', 0.06), finishedRun('sasrec-quant-s1', 0.05)]);
    const out = pairedComparisons(two, new Map([
      ['sasrec-base-s1', ranks([0, 20])],
      ['sasrec-quant-s1', ranks([2, 99])],
    ]));
    const bq = out[0]!;
    expect(bq.log2RankGain.unmasked).toEqual(pairedDifference([Math.log2(3) - Math.log2(1), Math.log2(100) - Math.log2(21)], [0, 0]));
    expect(bq.ndcg10.unmasked.mean).toBeCloseTo((1 - ndcgAtK(2, 10)) / 2, 12);
    expect(bq.noise).toBeUndefined();
    const lines = rankGainTable(out);
    expect(lines).toContain("## The target's rank: the same differences on a finer measure (secondary)");
    const g = bq.log2RankGain.unmasked;
    const sign = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(4)}`;
    // Both users' targets rank higher under Base: the interval excludes 0 (starred).
    expect(g.lo).toBeGreaterThan(0);
    const cell = `${sign(g.mean)} [${sign(g.lo)}, ${sign(g.hi)}] *`;
    expect(lines.at(-1)).toBe(`| sasrec | base − quant | 1 | ${cell} | – | ${cell} | – |`);
    // Over two seeds the seed shift is counted.
    const both = pairedComparisons(finished, all).find((c) => c.a === 'base' && c.b === 'quant')!;
    const n = both.noise!.log2RankGain.unmasked;
    expect(n).toEqual(seedNoise([at((u) => u < 10).map((r) => Math.log2(r + 1)), at((u) => u < 9 || u === 10).map((r) => Math.log2(r + 1))]));
    expect(rankGainTable([both]).at(-1)).toContain(`| ±${halfWidthAt(n, 2).toFixed(4)} |`);
    expect(rankGainTable([])).toEqual([]);
  });
});

describe('testRanks: the sidecar step', () => {
  const tmp = tempRunDir('reproduce-paired-');

  it("keeps a real artifact's per-user test ranks, whose NDCG@10 is the run's own, cached by artifact hash", async () => {
    const tiny = await tinyFinishedRun(tmp());
    const runs = new Map([[tiny.spec.key, tiny.run]]);
    const before = dirState(tiny.result.artifactDir);
    const diagnosticsDir = join(tmp(), 'diagnostics');
    // Without the split nothing is known yet, and nothing is evaluated.
    expect(await testRanks(runs, { diagnosticsDir })).toEqual(new Map());
    const counter = { splits: 0 };
    const countedSplit = () => (counter.splits++, tiny.split);
    const lines: string[] = [];
    const got = await testRanks(runs, { diagnosticsDir, split: countedSplit, log: (l) => lines.push(l) });
    const r = got.get(tiny.spec.key)!;
    expect(r.users).toHaveLength(24);
    expect(meanNdcg10(r.unmasked)).toBe(tiny.result.test.unmasked.ndcg10);
    expect(meanNdcg10(r.masked)).toBe(tiny.result.test.masked.ndcg10);
    expect(lines).toEqual([expect.stringMatching(/^sasrec-chord-l2468-b0\.125-s3: per-user test ranks of 24 users \(\d/)]);
    const sidecar = JSON.parse(readFileSync(join(diagnosticsDir, `${tiny.spec.key}.ranks.json`), 'utf8')) as TestRanksSidecar;
    expect(sidecar.matchesTraining).toBe(true);
    await expectCached({ ...tiny, runs, before, diagnosticsDir, countedSplit, counter, line: lines[0]!, value: r }, testRanks);
  }, 120_000);
});
