/**
 * The strategy study's runs are train runs on reproduce's Base of the same backbone and seed, with
 * reproduce's settings, each changing only what its mechanism says.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTrainArgs } from '../../src/model/train-cli.ts';
import { planRuns, trainArgs, datasetProfile } from '../../src/model/reproduce/plan.ts';
import { studyRuns, studyTrainArgs, watchedTest } from '../../tools/strategy-study.ts';

describe('strategy study plan', () => {
  const runs = studyRuns([1, 2]);
  const parsed = new Map(runs.map((r) => [r.key, parseTrainArgs(studyTrainArgs(r, 'datasets/ml-100k')).run]));

  it('has unique keys, and every run freezes reproduce\'s Base of its backbone and seed', () => {
    expect(new Set(runs.map((r) => r.key)).size).toBe(runs.length);
    for (const r of runs) {
      const o = parsed.get(r.key)!;
      expect(o.init).toBe('pretrained');
      expect(o.pretrainedDir).toBe(`.cache/reproduce/${r.backbone}-base-s${r.seed}`);
      expect(o.out).toBe(`.cache/study/${r.key}`);
      expect({ backbone: o.backbone, seed: o.seed, method: o.method }).toEqual({ backbone: r.backbone, seed: r.seed, method: r.method });
    }
  });

  it('changes one mechanism per run against the default CHORD-pre', () => {
    const chord = parsed.get('sasrec-chord-pre-s1')!;
    expect({ contrast: chord.contrast, lr: chord.lr, hyperLr: chord.hyperLr, zTargets: chord.zTargets }).toEqual({ contrast: 0, lr: 2e-3, hyperLr: undefined, zTargets: 10 });
    expect(parsed.get('sasrec-chord-contrast1-pre-s1')!.contrast).toBe(1);
    const frozen = parsed.get('caser-chord-frozen-shared-pre-s2')!;
    expect({ lr: frozen.lr, hyperLr: frozen.hyperLr }).toEqual({ lr: 0, hyperLr: 5e-3 });
    expect(parsed.get('caser-quant-pre-s1')!.budgets).toEqual([]);
    const gate = parsed.get('caser-chord-gate-pre-s1')!;
    expect({ levelTable: gate.levelTable, beta: gate.beta }).toEqual({ levelTable: [0, 3, 4, 5], beta: 0.375 });
  });
});

describe('strategy study on an Amazon set', () => {
  // reproduce names a dataset given as a file by its folder.
  const data = join(mkdtempSync(join(tmpdir(), 'study-')), 'amazon-toys', 'Toys_and_Games.txt');
  mkdirSync(dirname(data));
  writeFileSync(data, '');
  const runs = studyRuns([1], 'amazon-toys');

  it("takes Quant-pre and CHORD-pre from reproduce's runs and adds only the gating, examples-control and z-standardization runs", () => {
    const sasrec = runs.filter((r) => r.backbone === 'sasrec');
    expect(sasrec.map((r) => [r.key, r.reproduceKey])).toEqual([
      ['sasrec-quant-pre-s1', 'sasrec-quant-pre-s1'],
      ['sasrec-chord-pre-s1', 'sasrec-chord-l2468-b0.125-pre-s1'],
      ['sasrec-chord-gate-pre-s1', undefined],
      ['sasrec-quant-chord-examples-pre-s1', undefined],
      ['sasrec-chord-znorm-pre-s1', undefined],
    ]);
    const control = parseTrainArgs(studyTrainArgs(sasrec.find((r) => r.key === 'sasrec-quant-chord-examples-pre-s1')!, data)).run;
    const quantTwin = planRuns([1]).find((r) => r.key === 'sasrec-quant-pre-s1')!;
    const quant = parseTrainArgs(trainArgs(quantTwin, data, '.cache/reproduce-amazon-toys', datasetProfile('amazon-toys'))).run;
    expect(control.chordExamples).toBe(true);
    const rest = (o: typeof control) => ({ ...o, out: '', command: '', chordExamples: undefined });
    expect(rest(control)).toEqual(rest(quant));
  });

  it("trains the gating run with reproduce's Toys CHORD-pre settings, changing only levels, β and the output folder", () => {
    const gate = parseTrainArgs(studyTrainArgs(runs.find((r) => r.key === 'sasrec-chord-gate-pre-s1')!, data)).run;
    const twin = planRuns([1]).find((r) => r.key === 'sasrec-chord-l2468-b0.125-pre-s1')!;
    const chord = parseTrainArgs(trainArgs(twin, data, '.cache/reproduce-amazon-toys', datasetProfile('amazon-toys'))).run;
    expect(gate.out).toBe('.cache/study-amazon-toys/sasrec-chord-gate-pre-s1');
    expect(gate.pretrainedDir).toBe('.cache/reproduce-amazon-toys/sasrec-base-s1');
    expect({ levelTable: gate.levelTable, beta: gate.beta }).toEqual({ levelTable: [0, 3, 4, 5], beta: 0.375 });
    const rest = (o: typeof gate) => ({ ...o, out: '', levelTable: [], beta: 0, command: '' });
    expect(rest(gate)).toEqual(rest(chord));
  });
});

describe('the best watched test epoch (the paper\'s protocol)', () => {
  const ev = (ndcg10: number) => ({ unmasked: { ndcg10 } }) as never;
  it('sets the best test epoch beside the validation-picked one, and is null for runs that did not watch', () => {
    const history = [
      { epoch: 1, watchedTest: ev(0.05) },
      { epoch: 2, watchedTest: ev(0.07) },
      { epoch: 3, watchedTest: ev(0.06) },
    ];
    expect(watchedTest({ history, epochs: { run: 3, best: 3, stoppedEarly: false } })).toEqual({
      bestTestEpoch: 2,
      bestTestNdcg10: 0.07,
      selectedEpoch: 3,
      selectedTestNdcg10: 0.06,
    });
    expect(watchedTest({ history: [{ epoch: 1 }], epochs: { run: 1, best: 1, stoppedEarly: false } })).toBeNull();
    expect(watchedTest({ epochs: { run: 1, best: 1, stoppedEarly: false } })).toBeNull();
  });
});
