/**
 * The reproduce report at Quant's budget: CHORD-family runs evaluated with every user's strategy
 * put through T to 3 bits, from training.json or a sidecar, in the result rows and the markdown
 * table beside Quant; and the sidecar step over a real (tiny) artifact.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTraining } from '../../src/model/chord/run.ts';
import { quantBudgetEvals, type QuantBudgetSidecar } from '../../src/model/reproduce/diagnostics.ts';
import { QUANT_BUDGET } from '../../src/model/reproduce/plan.ts';
import { quantBudgetTable } from '../../src/model/reproduce/markdown.ts';
import { aggregate } from '../../src/model/reproduce/report.ts';
import { deployedEval, finishedRun } from '../fixtures/reproduce-runs.ts';
import { expectCached, firstSidecarPass, tempRunDir } from '../fixtures/reproduce-sidecars.ts';
import { tinyRunOptions } from '../fixtures/tiny-training.ts';

const finished = new Map([
  finishedRun('sasrec-base-s1', 0.06),
  finishedRun('sasrec-quant-s1', 0.05, {}, undefined, undefined, 3),
  finishedRun('sasrec-quant-s2', 0.07, {}, undefined, undefined, 3),
  // Recorded by train-cli (--budgets 3): a strategy at 3 bits is what T leaves it.
  finishedRun('sasrec-custom-l2468-b0.125-s1', 0.04, { '3': 0.04 }, undefined, undefined, 3),
  // Seed 1 recorded it, seed 2 has it from its sidecar only.
  finishedRun('sasrec-chord-l2468-b0.125-s1', 0.06, { '3': { ndcg10: 0.05, averageBits: 2.99 }, '2.5': 0.04 }, undefined, undefined, 3.25),
  finishedRun('sasrec-chord-l2468-b0.125-s2', 0.08, { '2.5': 0.06 }, undefined, undefined, 3.27),
  finishedRun('sasrec-chord-l2468-b0.125-pre-s1', 0.065, {}, undefined, undefined, 3.01),
  finishedRun('caser-chord-l2468-b0.125-pre-s1', 0.03, {}, undefined, undefined, 3.505), // not evaluated yet
  finishedRun('sasrec-chord-l2567-b0.125-s1', 0.04, {}, undefined, undefined, 3.1), // an ablation: in the rows, not the table
]);
const sidecars = new Map([
  ['sasrec-chord-l2468-b0.125-s2', deployedEval(0.07, 2.97)],
  ['sasrec-chord-l2468-b0.125-pre-s1', deployedEval(0.064, 2.995)],
  ['sasrec-chord-l2567-b0.125-s1', deployedEval(0.035, 2.96)],
]);

describe('Quant budget in the reproduce report', () => {
  const rows = aggregate(finished, { atQuantBudget: sidecars });
  const row = (key: string, masked: boolean, budget: number | null) =>
    rows.find((r) => r.runs.includes(key) && r.masked === masked && r.deploy_budget === budget);

  it('adds one row per protocol at deploy_budget 3 to every CHORD-family configuration, from training.json or the sidecar', () => {
    const chord = row('sasrec-chord-l2468-b0.125-s1', false, QUANT_BUDGET)!;
    expect(chord).toMatchObject({ method: 'chord', init: 'random', seeds: 2, deploy_budget: 3, deploy_bits: 3, avg_bits: 3.26, runs: ['sasrec-chord-l2468-b0.125-s1', 'sasrec-chord-l2468-b0.125-s2'] });
    expect(chord.ndcg10).toBeCloseTo(0.06, 10);
    expect(chord.hr10).toBeCloseTo(0.12, 10);
    expect(chord.ndcg5).toBeCloseTo(0.03, 10);
    expect(chord.hr5).toBeCloseTo(0.06, 10);
    // The measured bits after T: below the budget where users already were.
    expect(chord.deploy_avg_bits).toBeCloseTo(2.98, 10);
    expect(row('sasrec-chord-l2468-b0.125-s1', true, QUANT_BUDGET)!.ndcg10).toBeCloseTo(0.12, 10);
    // The budget rows stay in the order the plan lists them, each with its measured bits.
    const budgets = rows.filter((r) => r.runs.includes('sasrec-chord-l2468-b0.125-s1') && !r.masked).map((r) => [r.deploy_budget, r.deploy_avg_bits]);
    expect(budgets).toEqual([
      [null, undefined],
      [3, 2.98],
      [2.5, 2.5],
    ]);
    expect(row('sasrec-chord-l2468-b0.125-pre-s1', false, QUANT_BUDGET)).toMatchObject({ init: 'pretrained', group: 'pretrained', seeds: 1, ndcg10: 0.064, deploy_avg_bits: 2.995 });
    expect(row('sasrec-custom-l2468-b0.125-s1', false, QUANT_BUDGET)).toMatchObject({ ndcg10: 0.04, deploy_avg_bits: 3 });
    expect(row('sasrec-chord-l2567-b0.125-s1', false, QUANT_BUDGET)).toMatchObject({ group: 'levels', ndcg10: 0.035 });
    // Base and Quant have no T row; a run with neither a record nor a sidecar has none yet.
    expect(rows.filter((r) => (r.method === 'base' || r.method === 'quant') && r.deploy_budget !== null)).toEqual([]);
    expect(row('caser-chord-l2468-b0.125-pre-s1', false, QUANT_BUDGET)).toBeUndefined();
    // Without sidecars only the recorded evaluations count.
    const recorded = aggregate(finished).find((r) => r.runs.includes('sasrec-chord-l2468-b0.125-s1') && !r.masked && r.deploy_budget === QUANT_BUDGET)!;
    expect([recorded.seeds, recorded.ndcg10, recorded.deploy_avg_bits]).toEqual([1, 0.05, 2.99]);
  });

  it('tables Quant and each CHORD-family headline configuration at its trained bits and at 3.00 bits', () => {
    const lines = quantBudgetTable(rows);
    expect(lines).toContain('## At the Quant budget: CHORD through T to 3.00 bits');
    // Body rows by "backbone method", each with its cells after those two.
    const table = new Map(
      lines.filter((l) => /^\| (sasrec|caser) \|/.test(l)).map((l) => {
        const [backbone, method, ...cells] = l.slice(2, -2).split(' | ');
        return [`${backbone} ${method}`, cells.join(' | ')];
      }),
    );
    expect([...table.keys()]).toEqual(['sasrec quant', 'sasrec custom', 'sasrec chord', 'sasrec chord (frozen-pretrained)', 'caser chord (frozen-pretrained)']);
    // Quant is the reference at its trained 3 bits; the caser run has no evaluation at 3 bits yet.
    expect(table.get('sasrec quant')).toBe('2 | 3.000 | 0.0600 / 0.1200 | 0.1200 / 0.2400 | – | – | –');
    expect(table.get('caser chord (frozen-pretrained)')).toBe('1 | 3.505 | 0.0300 / 0.0600 | 0.0600 / 0.1200 | – | – | –');
    expect(table.get('sasrec custom')).toBe('1 | 3.000 | 0.0400 / 0.0800 | 0.0800 / 0.1600 | 3.000 | 0.0400 / 0.0800 | 0.0800 / 0.1600');
    expect(table.get('sasrec chord')).toBe('2 | 3.260 | 0.0700 / 0.1400 | 0.1400 / 0.2800 | 2.980 | 0.0600 / 0.1200 | 0.1200 / 0.2400');
    expect(table.get('sasrec chord (frozen-pretrained)')).toBe('1 | 3.010 | 0.0650 / 0.1300 | 0.1300 / 0.2600 | 2.995 | 0.0640 / 0.1280 | 0.1280 / 0.2560');
    // A configuration evaluated at 3 bits on fewer seeds than it trained says so.
    const partial = quantBudgetTable(aggregate(finished));
    expect(partial).toContain('| sasrec | chord | 2 | 3.260 | 0.0700 / 0.1400 | 0.1400 / 0.2800 | 2.990 (seeds: 1) | 0.0500 / 0.1000 | 0.1000 / 0.2000 |');
  });
});

describe('quantBudgetEvals: the sidecar step', () => {
  const tmp = tempRunDir('reproduce-quant-budget-');

  it('evaluates an artifact trained without budget 3 exactly as train-cli records it, caches it, and never writes in the run', async () => {
    const dir = tmp();
    // Quant is the reference, not evaluated through T, whatever its artifact.
    const pass = await firstSidecarPass(dir, quantBudgetEvals, 'sasrec-quant-s3');
    const { value: atBudget, result, spec, diagnosticsDir } = pass;
    expect(pass.training.metrics.testAtBudget).toEqual({});
    // This tiny run's strategies average above 3 bits, so T has channels to lower.
    expect(result.test.averageBits).toBeGreaterThan(QUANT_BUDGET);
    expect(atBudget.averageBits).toBeLessThanOrEqual(QUANT_BUDGET);
    expect(pass.line).toMatch(/^sasrec-chord-l2468-b0\.125-s3: through T to 3 bits: /);
    const sidecar = JSON.parse(readFileSync(join(diagnosticsDir, `${spec.key}.budget-3.json`), 'utf8')) as QuantBudgetSidecar;
    expect(sidecar).toMatchObject({ format: 'chord-quant-budget', version: 1, run: spec.key, budget: 3, test: atBudget });
    expect(sidecar.artifactHash).toMatch(/^[0-9a-f]{64}$/);
    // The other diagnostics' sidecar names stay free.
    expect(existsSync(join(diagnosticsDir, `${spec.key}.json`))).toBe(false);
    await expectCached(pass, quantBudgetEvals);

    // The same run resumed with --budgets 3 (budgets are no checkpoint setting, so it resumes) records
    // the very same evaluation; a run that recorded it is read from training.json, no sidecar needed.
    const resumed = await runTraining(tinyRunOptions(dir, { budgets: [QUANT_BUDGET], resume: true }), pass.split);
    expect(resumed.loop.epochsRun).toBe(result.loop.epochsRun);
    const recorded = JSON.parse(readFileSync(join(resumed.artifactDir, 'training.json'), 'utf8'));
    expect(recorded.metrics.testAtBudget['3']).toEqual(atBudget);
    const noSidecars = join(dir, 'no-sidecars');
    const fromRecord = await quantBudgetEvals(new Map([[spec.key, { spec, training: recorded, artifactDir: resumed.artifactDir }]]), {
      diagnosticsDir: noSidecars,
      split: pass.countedSplit,
    });
    expect(fromRecord.get(spec.key)).toEqual(atBudget);
    expect(pass.counter.splits).toBe(1);
    expect(existsSync(noSidecars)).toBe(false);
  }, 120_000);
});
