/**
 * The reproduce report's control strategies (channels shuffled within layers, one uniform width):
 * seed means in the result rows, the markdown table, and the sidecar step over a real (tiny) artifact.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ndcgAtK } from '../../src/core/metrics.ts';
import { pairedDifference } from '../../src/core/paired.ts';
import { meanNdcg10, othersStrategyRanks, strategyControls, testRanks, type OthersRanksSidecar, type StrategyControls, type StrategyControlsSidecar, type TestRanks } from '../../src/model/reproduce/diagnostics.ts';
import { strategyControlsTable } from '../../src/model/reproduce/markdown.ts';
import { QUANT_BUDGET } from '../../src/model/reproduce/plan.ts';
import { aggregate, controlComparisons } from '../../src/model/reproduce/report.ts';
import { deployedEval, finishedRun } from '../fixtures/reproduce-runs.ts';
import { expectCached, firstSidecarPass, tempRunDir } from '../fixtures/reproduce-sidecars.ts';

const ranks = (unmasked: number[], masked: number[] = unmasked): TestRanks => ({ users: unmasked.map((_, i) => i), unmasked, masked });
/** Controls with test NDCG@10 `shuffled` and `uniform` (masked: twice each), and per-user ranks behind them when given. */
const controls = (shuffled: number, uniform: number, shuffledRanks = ranks([]), uniformRanks = ranks([])): StrategyControls => ({
  shuffled: { test: deployedEval(shuffled, 3.2), ranks: shuffledRanks },
  uniform: { test: deployedEval(uniform, 3), ranks: uniformRanks },
});

const finished = new Map([
  finishedRun('sasrec-base-s1', 0.06),
  finishedRun('sasrec-quant-s1', 0.05),
  finishedRun('sasrec-chord-l2468-b0.125-s1', 0.04, { '2.5': 0.03 }, undefined, 0.04),
  finishedRun('sasrec-chord-l2468-b0.125-s2', 0.06, { '2.5': 0.05 }, undefined, 0.05),
  finishedRun('sasrec-chord-l2468-b0.125-pre-s1', 0.07, {}, undefined, 0.07),
  finishedRun('sasrec-custom-l2468-b0.125-s1', 0.05),
  finishedRun('sasrec-chord-l2468-b0.25-s1', 0.04), // an ablation: not in the table
]);
const sidecars = new Map([
  ['sasrec-chord-l2468-b0.125-s1', controls(0.02, 0.05)],
  ['sasrec-chord-l2468-b0.125-s2', controls(0.04, 0.06)],
  ['sasrec-chord-l2468-b0.125-pre-s1', controls(0.03, 0.08)],
  ['sasrec-chord-l2468-b0.25-s1', controls(0.01, 0.01)],
]);

describe('control strategies in the reproduce report', () => {
  it('averages the runs of a configuration into both protocols\' rows at the trained bits, and only when every seed has them', () => {
    const rows = aggregate(finished, { controls: sidecars });
    const row = (key: string, masked: boolean, budget: number | null = null) =>
      rows.find((r) => r.runs.includes(key) && r.masked === masked && r.deploy_budget === budget)!;
    expect(row('sasrec-chord-l2468-b0.125-s1', false).shuffled_channels_ndcg10).toBeCloseTo(0.03, 10);
    expect(row('sasrec-chord-l2468-b0.125-s1', false).uniform_bits_ndcg10).toBeCloseTo(0.055, 10);
    expect(row('sasrec-chord-l2468-b0.125-s1', true).shuffled_channels_ndcg10).toBeCloseTo(0.06, 10);
    expect(row('sasrec-chord-l2468-b0.125-s1', true).uniform_bits_ndcg10).toBeCloseTo(0.11, 10);
    expect(row('sasrec-chord-l2468-b0.125-s1', false, 2.5)).not.toHaveProperty('shuffled_channels_ndcg10');
    expect(row('sasrec-quant-s1', false)).not.toHaveProperty('uniform_bits_ndcg10');
    const partial = aggregate(finished, { controls: new Map([['sasrec-chord-l2468-b0.125-s1', controls(0.02, 0.05)]]) });
    expect(partial.find((r) => r.runs.includes('sasrec-chord-l2468-b0.125-s1') && !r.masked)).not.toHaveProperty('shuffled_channels_ndcg10');
  });

  it('tables the personalised headline and frozen-pretrained rows: own, another user\'s, shuffled, uniform', () => {
    const lines = strategyControlsTable(aggregate(finished, { controls: sidecars }));
    expect(lines).toContain('## Whose strategy, which channels, which widths?');
    const body = lines.filter((l) => l.startsWith('| ') && !l.startsWith('| backbone'));
    expect(body).toEqual([
      // custom has no controls yet: its own strategy only
      '| sasrec | custom | 1 | 0.0500 / 0.1000 | – / – | – / – | – / – |',
      '| sasrec | chord | 2 | 0.0500 / 0.1000 | 0.0450 / 0.0900 | 0.0300 / 0.0600 | 0.0550 / 0.1100 |',
      '| sasrec | chord (frozen-pretrained) | 1 | 0.0700 / 0.1400 | 0.0700 / 0.1400 | 0.0300 / 0.0600 | 0.0800 / 0.1600 |',
    ]);
    // Nothing to show before any run has them.
    expect(strategyControlsTable(aggregate(finished))).toEqual([]);
  });
});

describe('controlComparisons', () => {
  // Three users. Own strategies find user 0 at rank 0 on both seeds; another user's strategy at rank 1
  // on both; shuffled channels at rank 0 on seed 1 and rank 3 on seed 2; the uniform width never in
  // the top 10 (masked: at rank 0). Users 1 and 2 always miss.
  const own = new Map([
    ['sasrec-chord-l2468-b0.125-s1', ranks([0, 40, 50])],
    ['sasrec-chord-l2468-b0.125-s2', ranks([0, 40, 50])],
    ['sasrec-chord-l2468-b0.125-pre-s1', ranks([0, 40, 50])],
    ['sasrec-chord-l2468-b0.25-s1', ranks([0, 40, 50])],
  ]);
  const others = new Map([
    ['sasrec-chord-l2468-b0.125-s1', ranks([1, 40, 50])],
    ['sasrec-chord-l2468-b0.125-s2', ranks([1, 40, 50])],
    ['sasrec-chord-l2468-b0.125-pre-s1', ranks([0, 40, 50])],
  ]);
  const ctl = new Map([
    ['sasrec-chord-l2468-b0.125-s1', controls(0, 0, ranks([0, 40, 50]), ranks([20, 40, 50], [0, 40, 50]))],
    ['sasrec-chord-l2468-b0.125-s2', controls(0, 0, ranks([3, 40, 50]), ranks([20, 40, 50], [0, 40, 50]))],
    ['sasrec-chord-l2468-b0.25-s1', controls(0, 0, ranks([9, 9, 9]), ranks([9, 9, 9]))], // an ablation: never compared
  ]);

  it('pairs each personalised column\'s own ranks with another user\'s and each control\'s, averaged per user over the seeds that have all four', () => {
    const out = controlComparisons(finished, own, others, ctl);
    // frozen-pretrained CHORD has no controls, the β ablation is no headline run, custom has no ranks.
    expect(out.map((c) => [c.backbone, c.column, c.seeds])).toEqual([['sasrec', 'chord', [1, 2]]]);
    const c = out[0]!;
    expect(c.users).toBe(3);
    expect(c.ownMinusOthers.ndcg10.unmasked).toEqual(pairedDifference([1 - ndcgAtK(1, 10), 0, 0], [0, 0, 0]));
    expect(c.ownMinusShuffled.unmasked).toEqual(pairedDifference([(1 - ndcgAtK(3, 10)) / 2, 0, 0], [0, 0, 0]));
    expect(c.ownMinusUniform.unmasked).toEqual(pairedDifference([1, 0, 0], [0, 0, 0]));
    expect(c.ownMinusUniform.masked).toEqual({ n: 3, mean: 0, lo: 0, hi: 0 });
    expect(controlComparisons(finished, own, others, new Map())).toEqual([]);
    expect(controlComparisons(finished, own, new Map(), ctl)).toEqual([]);
  });

  it('refuses a control that ranked other test users', () => {
    const other = new Map(ctl);
    other.set('sasrec-chord-l2468-b0.125-s2', controls(0, 0, { users: [0, 1, 7], unmasked: [0, 0, 0], masked: [0, 0, 0] }));
    expect(() => controlComparisons(finished, own, others, other)).toThrow(/chord vs its shuffled control, seed 2: the runs ranked other test users/);
  });

  it('tables the paired differences under the means, starred where the interval excludes 0', () => {
    const lines = strategyControlsTable(aggregate(finished, { controls: ctl }), controlComparisons(finished, own, others, ctl));
    const row = lines.find((l) => l.startsWith('| sasrec | chord | 1, 2 |'))!;
    const cell = (d: { mean: number; lo: number; hi: number }) => {
      const sign = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(4)}`;
      return `${sign(d.mean)} [${sign(d.lo)}, ${sign(d.hi)}]${d.lo > 0 || d.hi < 0 ? ' *' : ''}`;
    };
    const vsOthers = cell(pairedDifference([1 - ndcgAtK(1, 10), 0, 0], [0, 0, 0]));
    const vsShuffled = cell(pairedDifference([(1 - ndcgAtK(3, 10)) / 2, 0, 0], [0, 0, 0]));
    const vsUniform = cell(pairedDifference([1, 0, 0], [0, 0, 0]));
    const zero = '+0.0000 [+0.0000, +0.0000]';
    expect(row).toBe(`| sasrec | chord | 1, 2 | ${vsOthers} | ${vsOthers} | ${vsShuffled} | ${vsShuffled} | ${vsUniform} | ${zero} |`);
    expect(lines).toContain("| backbone | method | seeds | own − another user's | masked | own − shuffled | masked | own − uniform | masked |");
  });
});

describe('strategyControls: the sidecar step', () => {
  const tmp = tempRunDir('reproduce-strategy-controls-');

  it('deploys an artifact with shuffled channels and one uniform width, caches both by artifact hash, and never writes in the run', async () => {
    // Quant's one strategy already is the uniform control: never evaluated, whatever its artifact.
    const pass = await firstSidecarPass(tmp(), strategyControls, 'sasrec-quant-s3');
    const { value, result, spec, diagnosticsDir } = pass;
    // The same widths per layer on other channels: every user's average bits, hence their mean, to the bit.
    expect(value.shuffled.test.averageBits).toBe(result.test.averageBits);
    expect(value.uniform.test.averageBits).toBe(QUANT_BUDGET);
    expect(result.test.averageBits).not.toBe(QUANT_BUDGET);
    // Each control's per-user ranks are the ones behind its means, over the run's own test users.
    const ownRanks = await testRanks(new Map([[spec.key, pass.run]]), { diagnosticsDir: join(diagnosticsDir, 'own'), split: () => pass.split });
    const own = ownRanks.get(spec.key)!;
    for (const c of [value.shuffled, value.uniform]) {
      expect(c.ranks.users).toEqual(own.users);
      expect(meanNdcg10(c.ranks.unmasked)).toBe(c.test.unmasked.ndcg10);
      expect(meanNdcg10(c.ranks.masked)).toBe(c.test.masked.ndcg10);
    }
    expect(pass.line).toMatch(/^sasrec-chord-l2468-b0\.125-s3: test NDCG@10 with channels shuffled within layers \d\.\d{4} \(masked \d\.\d{4}\), uniform 3 bits /);
    const sidecar = JSON.parse(readFileSync(join(diagnosticsDir, `${spec.key}.controls.json`), 'utf8')) as StrategyControlsSidecar;
    expect(sidecar).toMatchObject({ format: 'chord-strategy-controls', version: 2, run: spec.key, uniformBits: 3, shuffled: value.shuffled, uniform: value.uniform });
    // The other diagnostics' sidecar names stay free.
    expect(existsSync(join(diagnosticsDir, `${spec.key}.json`))).toBe(false);
    await expectCached(pass, strategyControls);
    // On two threads (reproduce --workers 2; the controls cross by name): the same values.
    const twoThreads = await strategyControls(new Map([[spec.key, pass.run]]), { diagnosticsDir: join(diagnosticsDir, 'two'), split: () => pass.split, workers: 2 });
    expect(twoThreads.get(spec.key)).toEqual(value);
  }, 120_000);
});

describe("othersStrategyRanks: the sidecar step", () => {
  const tmp = tempRunDir('reproduce-others-ranks-');

  it("keeps the per-user ranks behind the run's own another-user check, cached by artifact hash, and never writes in the run", async () => {
    const pass = await firstSidecarPass(tmp(), othersStrategyRanks, 'sasrec-quant-s3');
    const { value, training, spec, diagnosticsDir } = pass;
    // The ranks are train-cli's own evaluation with user u given u+1's strategy: its NDCG@10, to the bit.
    expect(meanNdcg10(value.unmasked)).toBe(training.metrics.testOthersStrategy.unmasked.ndcg10);
    expect(meanNdcg10(value.masked)).toBe(training.metrics.testOthersStrategy.masked.ndcg10);
    expect(value.users).toHaveLength(training.metrics.test.users);
    const sidecar = JSON.parse(readFileSync(join(diagnosticsDir, `${spec.key}.others-ranks.json`), 'utf8')) as OthersRanksSidecar;
    expect(sidecar).toMatchObject({ format: 'chord-others-ranks', version: 1, run: spec.key, matchesTraining: true, ranks: value });
    expect(pass.line).toMatch(/^sasrec-chord-l2468-b0\.125-s3: per-user test ranks with another user's strategy, NDCG@10 /);
    await expectCached(pass, othersStrategyRanks);
    const twoThreads = await othersStrategyRanks(new Map([[spec.key, pass.run]]), { diagnosticsDir: join(diagnosticsDir, 'two'), split: () => pass.split, workers: 2 });
    expect(twoThreads.get(spec.key)).toEqual(value);
  }, 120_000);
});
