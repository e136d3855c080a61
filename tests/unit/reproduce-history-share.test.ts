/**
 * The reproduce report's history-share diagnostic: seed means in the result rows, the markdown
 * table, and the sidecar step that re-evaluates a finished run's artifact without touching it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { historyShares, type HistoryShareSidecar } from '../../src/model/reproduce/diagnostics.ts';
import { planRuns } from '../../src/model/reproduce/plan.ts';
import { historyShareTable } from '../../src/model/reproduce/markdown.ts';
import { aggregate } from '../../src/model/reproduce/report.ts';
import { cyclicSplit } from '../fixtures/tiny-training.ts';
import { finishedRun } from '../fixtures/reproduce-runs.ts';
import { dirState, tempRunDir, tinyFinishedRun } from '../fixtures/reproduce-sidecars.ts';

const finished = new Map([
  finishedRun('caser-base-s1', 0.06),
  finishedRun('caser-base-s2', 0.05),
  finishedRun('caser-chord-l2468-b0.125-s1', 0.02, { '2.5': 0.01 }),
  finishedRun('caser-chord-l2468-b0.125-s2', 0.03, { '2.5': 0.02 }),
  finishedRun('caser-chord-l2468-b0.125-pre-s1', 0.05),
  finishedRun('caser-quant-pre-s1', 0.045),
  finishedRun('sasrec-quant-s1', 0.05),
  finishedRun('sasrec-chord-l2567-b0.125-s1', 0.04), // an ablation: not in the table
]);
const shares = new Map([
  ['caser-base-s1', 0.1],
  ['caser-base-s2', 0.2],
  ['caser-chord-l2468-b0.125-s1', 0.7],
  ['caser-chord-l2468-b0.125-s2', 0.8],
  ['caser-chord-l2468-b0.125-pre-s1', 0.25],
  // sasrec-quant-s1 has none
]);

describe('history share in the reproduce report', () => {
  it('averages the runs of a configuration into the unmasked rows at the trained bits, and only there', () => {
    const rows = aggregate(finished, { historyShares: shares });
    const row = (key: string, masked: boolean, budget: number | null = null) =>
      rows.find((r) => r.runs.includes(key) && r.masked === masked && r.deploy_budget === budget)!;
    expect(row('caser-base-s1', false).history_share10).toBeCloseTo(0.15, 10);
    expect(row('caser-chord-l2468-b0.125-s1', false).history_share10).toBeCloseTo(0.75, 10);
    expect(row('caser-chord-l2468-b0.125-pre-s1', false).history_share10).toBe(0.25);
    expect(row('caser-base-s1', true)).not.toHaveProperty('history_share10');
    expect(row('caser-chord-l2468-b0.125-s1', false, 2.5)).not.toHaveProperty('history_share10');
    expect(row('sasrec-quant-s1', false)).not.toHaveProperty('history_share10');
    // a configuration where one seed lacks it gets no mean over the others
    const partial = aggregate(finished, { historyShares: new Map([['caser-base-s1', 0.1]]) });
    expect(partial.find((r) => r.runs.includes('caser-base-s1') && !r.masked)).not.toHaveProperty('history_share10');
    // without shares the rows are what they were
    expect(aggregate(finished).every((r) => r.history_share10 === undefined)).toBe(true);
  });

  it('tables headline methods, then the frozen-pretrained runs, per backbone, with NDCG@10 beside the share', () => {
    const lines = historyShareTable(aggregate(finished, { historyShares: shares }));
    const body = lines.filter((l) => l.startsWith('| ') && !l.startsWith('| backbone'));
    expect(body).toEqual([
      '| sasrec | quant | 1 | – | 0.0500 | 0.1000 |',
      '| caser | base | 2 | 0.1500 | 0.0550 | 0.1100 |',
      '| caser | chord | 2 | 0.7500 | 0.0250 | 0.0500 |',
      '| caser | quant (frozen-pretrained) | 1 | – | 0.0450 | 0.0900 |',
      '| caser | chord (frozen-pretrained) | 1 | 0.2500 | 0.0500 | 0.1000 |',
    ]);
    expect(lines).toContain('## History items in the unmasked top-10');
  });
});

describe('historyShares: the sidecar step', () => {
  const tmp = tempRunDir('reproduce-history-share-');

  it('re-evaluates an artifact trained without it to what train-cli records now, caches it, and never writes in the run', async () => {
    const dir = tmp();
    const { split, result, training, spec } = await tinyFinishedRun(dir);
    const test = (result.training['metrics'] as { test: { historyShare10: number } }).test;
    // New runs record it in training.json's test metrics.
    expect(test.historyShare10).toBe(result.test.historyShare10);
    expect(result.test.historyShare10).toBeGreaterThanOrEqual(0);
    expect(result.test.historyShare10).toBeLessThanOrEqual(1);

    // A run from before: the same training.json without the field.
    delete training.metrics.test.historyShare10;
    const runs = new Map([[spec.key, { spec, training, artifactDir: result.artifactDir }]]);
    const before = dirState(result.artifactDir);
    const diagnosticsDir = join(dir, 'diagnostics');

    // Without the split nothing is evaluated and nothing is known yet.
    expect(await historyShares(runs, { diagnosticsDir })).toEqual(new Map());
    let splits = 0;
    const got = await historyShares(runs, { diagnosticsDir, split: () => (splits++, split) });
    expect(splits).toBe(1);
    expect(got.get(spec.key)).toBe(result.test.historyShare10);
    const sidecar = JSON.parse(readFileSync(join(diagnosticsDir, `${spec.key}.json`), 'utf8')) as HistoryShareSidecar;
    // The re-evaluation ranks exactly as the run's own final evaluation did.
    expect(sidecar.matchesTraining).toBe(true);
    expect(sidecar.ndcg10).toEqual({ unmasked: result.test.unmasked.ndcg10, masked: result.test.masked.ndcg10 });
    expect(sidecar.artifactHash).toMatch(/^[0-9a-f]{64}$/);

    // Cached: read back without the split, and with it nothing is evaluated again.
    expect((await historyShares(runs, { diagnosticsDir })).get(spec.key)).toBe(result.test.historyShare10);
    await historyShares(runs, { diagnosticsDir, split: () => (splits++, split) });
    expect(splits).toBe(1);
    // The run directory is as training left it.
    expect(dirState(result.artifactDir)).toEqual(before);
    expect(existsSync(join(result.artifactDir, `${spec.key}.json`))).toBe(false);

    // A retrained artifact (other bytes) does not match the sidecar and is evaluated again.
    const { result: retrained, training: training2 } = await tinyFinishedRun(dir, { seed: 4, out: join(dir, 'retrained') });
    delete training2.metrics.test.historyShare10;
    const runs2 = new Map([[spec.key, { spec, training: training2, artifactDir: retrained.artifactDir }]]);
    expect(await historyShares(runs2, { diagnosticsDir })).toEqual(new Map());
    const again = await historyShares(runs2, { diagnosticsDir, split: () => (splits++, split) });
    expect(splits).toBe(2);
    expect(again.get(spec.key)).toBe(retrained.test.historyShare10);
    expect((JSON.parse(readFileSync(join(diagnosticsDir, `${spec.key}.json`), 'utf8')) as HistoryShareSidecar).matchesTraining).toBe(true);
  }, 120_000);

  it('skips a run whose artifact cannot be read, says why, and still answers for the others', async () => {
    const spec = planRuns([1]).find((r) => r.key === 'caser-base-s1')!;
    const dir = tmp();
    const broken = join(dir, 'broken');
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, 'training.json'), '{}');
    const [key, other] = finishedRun('caser-base-s2', 0.05);
    const training = { ...finishedRun('caser-base-s1', 0.05)[1].training, options: { gruWindow: 6, activationBits: null }, data: { users: 24, items: 12 } };
    const lines: string[] = [];
    const got = await historyShares(
      new Map([
        [spec.key, { spec, training, artifactDir: broken }],
        [key, { ...other, training: { ...other.training, metrics: { ...other.training.metrics, test: { ...other.training.metrics.test, historyShare10: 0.3 } } } }],
      ]),
      { diagnosticsDir: join(dir, 'diagnostics-broken'), split: () => cyclicSplit(24, 12), log: (l) => lines.push(l) },
    );
    expect(got).toEqual(new Map([[key, 0.3]]));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^caser-base-s1: no history share \(.*manifest\.json/);
    expect(existsSync(join(dir, 'diagnostics-broken', 'caser-base-s1.json'))).toBe(false);
  });
});
