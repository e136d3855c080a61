/**
 * The reproduce report's strategy-spread diagnostic: seed means in the result rows, the markdown
 * table beside own vs another user's strategy, and the sidecar step over a real (tiny) artifact.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StrategySpread } from '../../src/core/strategy-spread.ts';
import { initBackend } from '../../src/model/backend.ts';
import { runTraining } from '../../src/model/chord/run.ts';
import { aggregate, planRuns, strategySpreads, strategySpreadTable, type StrategySpreadSidecar } from '../../src/model/reproduce-cli.ts';
import { finishedRun } from '../fixtures/reproduce-runs.ts';
import { cyclicSplit, tinyRunOptions } from '../fixtures/tiny-training.ts';

const spread = (pairDiffer: number, globalChannels: number, min: number, max: number): StrategySpread => ({
  users: 10,
  channels: 100,
  pairDiffer,
  globalChannels,
  averageBits: { min, mean: (min + max) / 2, max },
});

const finished = new Map([
  finishedRun('sasrec-base-s1', 0.06),
  finishedRun('sasrec-quant-s1', 0.05),
  finishedRun('sasrec-custom-l2468-b0.125-s1', 0.04, {}, undefined, 0.03),
  finishedRun('sasrec-chord-l2468-b0.125-s1', 0.02, { '2.5': 0.01 }, undefined, 0.01),
  finishedRun('sasrec-chord-l2468-b0.125-s2', 0.04, { '2.5': 0.02 }, undefined, 0.05),
  finishedRun('sasrec-chord-l2468-b0.125-pre-s1', 0.05, {}, undefined, 0.045),
  finishedRun('sasrec-chord-l2468-b0.25-s1', 0.04, {}, undefined, 0.04), // an ablation: not in the table
]);
const spreads = new Map([
  ['sasrec-quant-s1', spread(0, 1, 3, 3)],
  ['sasrec-custom-l2468-b0.125-s1', spread(0.3, 0.1, 3, 3)],
  ['sasrec-chord-l2468-b0.125-s1', spread(0.2, 0.4, 2.9, 3.2)],
  ['sasrec-chord-l2468-b0.125-s2', spread(0.4, 0.2, 3.1, 3.4)],
  // frozen-pretrained CHORD has none
  ['sasrec-chord-l2468-b0.25-s1', spread(0.5, 0, 3, 3)],
]);

describe('strategy spread in the reproduce report', () => {
  it('averages the runs of a configuration into the unmasked rows at the trained bits, and only there', () => {
    const rows = aggregate(finished, new Map(), spreads);
    const row = (key: string, masked: boolean, budget: number | null = null) =>
      rows.find((r) => r.runs.includes(key) && r.masked === masked && r.deploy_budget === budget)!;
    const chord = row('sasrec-chord-l2468-b0.125-s1', false).strategy_spread!;
    expect(chord.pair_differ).toBeCloseTo(0.3, 10);
    expect(chord.global_channels).toBeCloseTo(0.3, 10);
    expect(chord.avg_bits_min).toBeCloseTo(3.0, 10);
    expect(chord.avg_bits_max).toBeCloseTo(3.3, 10);
    expect(row('sasrec-quant-s1', false).strategy_spread).toEqual({ pair_differ: 0, global_channels: 1, avg_bits_min: 3, avg_bits_max: 3 });
    expect(row('sasrec-chord-l2468-b0.125-s1', true)).not.toHaveProperty('strategy_spread');
    expect(row('sasrec-chord-l2468-b0.125-s1', false, 2.5)).not.toHaveProperty('strategy_spread');
    expect(row('sasrec-base-s1', false)).not.toHaveProperty('strategy_spread');
    // Another user's strategy: on both protocols' trained-bits rows, when every run measured it.
    expect(row('sasrec-chord-l2468-b0.125-s1', false).others_strategy_ndcg10).toBeCloseTo(0.03, 10);
    expect(row('sasrec-chord-l2468-b0.125-s1', true).others_strategy_ndcg10).toBeCloseTo(0.06, 10);
    expect(row('sasrec-chord-l2468-b0.125-s1', false, 2.5)).not.toHaveProperty('others_strategy_ndcg10');
    expect(row('sasrec-quant-s1', false)).not.toHaveProperty('others_strategy_ndcg10');
    // A configuration where one seed lacks it gets no mean over the others.
    const partial = aggregate(finished, new Map(), new Map([['sasrec-chord-l2468-b0.125-s1', spread(0.2, 0.4, 2.9, 3.2)]]));
    expect(partial.find((r) => r.runs.includes('sasrec-chord-l2468-b0.125-s1') && !r.masked)).not.toHaveProperty('strategy_spread');
    expect(aggregate(finished).every((r) => r.strategy_spread === undefined)).toBe(true);
  });

  it('tables the quantized headline methods and frozen-pretrained CHORD, own vs another user\'s strategy beside the spread', () => {
    const lines = strategySpreadTable(aggregate(finished, new Map(), spreads));
    const body = lines.filter((l) => l.startsWith('| ') && !l.startsWith('| backbone'));
    expect(body).toEqual([
      '| sasrec | quant | 1 | 0.0000 | 1.0000 | 3.000–3.000 | 0.0500 / – | 0.1000 / – |',
      '| sasrec | custom | 1 | 0.3000 | 0.1000 | 3.000–3.000 | 0.0400 / 0.0300 | 0.0800 / 0.0600 |',
      '| sasrec | chord | 2 | 0.3000 | 0.3000 | 3.000–3.300 | 0.0300 / 0.0300 | 0.0600 / 0.0600 |',
      '| sasrec | chord (frozen-pretrained) | 1 | – | – | – | 0.0500 / 0.0450 | 0.1000 / 0.0900 |',
    ]);
    expect(lines).toContain('## How personal are the strategies?');
  });
});

describe('strategySpreads: the sidecar step', () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'reproduce-strategy-spread-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('measures the test users\' strategies of an artifact, caches them by artifact hash, and never writes in the run', async () => {
    const split = cyclicSplit(24, 12);
    const result = await runTraining(tinyRunOptions(dir, { budgets: [] }), split);
    const training = JSON.parse(readFileSync(join(result.artifactDir, 'training.json'), 'utf8'));
    const spec = planRuns([3]).find((r) => r.key === 'sasrec-chord-l2468-b0.125-s3')!;
    const base = planRuns([3]).find((r) => r.key === 'sasrec-base-s3')!;
    const runs = new Map([
      [spec.key, { spec, training, artifactDir: result.artifactDir }],
      // Base has no strategy: never evaluated, whatever its artifact.
      [base.key, { spec: base, training, artifactDir: result.artifactDir }],
    ]);
    const before = readdirSync(result.artifactDir).map((f) => [f, statSync(join(result.artifactDir, f)).mtimeMs]);
    const diagnosticsDir = join(dir, 'diagnostics');

    expect(await strategySpreads(runs, { diagnosticsDir })).toEqual(new Map());
    let splits = 0;
    const lines: string[] = [];
    const got = await strategySpreads(runs, { diagnosticsDir, split: () => (splits++, split), log: (l) => lines.push(l) });
    expect([...got.keys()]).toEqual([spec.key]);
    expect(splits).toBe(1);
    const s = got.get(spec.key)!;
    expect(s.users).toBe(24);
    const manifest = JSON.parse(readFileSync(join(result.artifactDir, 'manifest.json'), 'utf8')) as { layers: { outChannels: number }[] };
    expect(s.channels).toBe(manifest.layers.reduce((n, l) => n + l.outChannels, 0));
    expect(s.pairDiffer).toBeGreaterThanOrEqual(0);
    expect(s.pairDiffer).toBeLessThanOrEqual(1);
    expect(s.averageBits.min).toBeLessThanOrEqual(s.averageBits.mean);
    expect(s.averageBits.mean).toBeLessThanOrEqual(s.averageBits.max);
    // The strategies are the ones the run's own test evaluation used: their mean average bits are its, to the bit.
    expect(s.averageBits.mean).toBe(result.test.averageBits);
    const sidecar = JSON.parse(readFileSync(join(diagnosticsDir, `${spec.key}.strategy-spread.json`), 'utf8')) as StrategySpreadSidecar;
    expect(sidecar.matchesTraining).toBe(true);
    expect(sidecar.spread).toEqual(s);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^sasrec-chord-l2468-b0\.125-s3: strategy spread over 24 test users: /);
    // The history share's sidecar name stays free.
    expect(existsSync(join(diagnosticsDir, `${spec.key}.json`))).toBe(false);

    // Cached: read back without the split, and with it nothing is evaluated again.
    expect((await strategySpreads(runs, { diagnosticsDir })).get(spec.key)).toEqual(s);
    await strategySpreads(runs, { diagnosticsDir, split: () => (splits++, split) });
    expect(splits).toBe(1);
    expect(readdirSync(result.artifactDir).map((f) => [f, statSync(join(result.artifactDir, f)).mtimeMs])).toEqual(before);
  }, 120_000);
});
