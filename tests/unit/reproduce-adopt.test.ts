import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adoptRuns } from '../../src/model/reproduce/adopt.ts';
import { adoptedLines } from '../../src/model/reproduce/markdown.ts';
import { ADOPTED_FILE, datasetProfile, findTraining, planRuns, recordedArgs, trainArgs, trainingSettings, type RunSpec } from '../../src/model/reproduce/plan.ts';
import { parseTrainArgs } from '../../src/model/train-cli.ts';

const DATA = '../shared/datasets/ml-100k';

/** A finished run folder as train-cli leaves it: <dir>/checkpoint and <dir>/<modelId>/training.json with the command. */
function finished(dir: string, args: readonly string[], options: object = {}): void {
  mkdirSync(join(dir, 'model'), { recursive: true });
  mkdirSync(join(dir, 'checkpoint'), { recursive: true });
  writeFileSync(join(dir, 'checkpoint', 'best.json'), '{}');
  const training = {
    modelId: 'model',
    command: `/elsewhere/src/model/train-cli.ts ${args.join(' ')}`,
    timing: { trainSeconds: 1, meanStepSeconds: 1 },
    epochs: { run: 9, best: 3, stoppedEarly: true },
    options: { gruWindow: 20, activationBits: null, ...options },
    metrics: { test: {}, testAtBudget: {} },
  };
  writeFileSync(join(dir, 'model', 'training.json'), JSON.stringify(training));
}

describe('reproduce --adopt', () => {
  const profile = datasetProfile('ml-100k');
  const plan = planRuns([1]).filter(profile.keep);
  const spec = (key: string): RunSpec => plan.find((r) => r.key === key)!;

  it('compares settings as train-cli parses them: order, defaults and output folders do not count', () => {
    const quant = spec('sasrec-quant-pre-s1');
    const planned = trainArgs(quant, DATA, '.cache/reproduce', profile);
    // The study's spelling of the same run: no --levels/--beta (their defaults), another --out, flags reordered.
    const study = ['--data', DATA, '--method', 'quant', '--backbone', 'sasrec', '--seed', '1', '--out', '.cache/study/sasrec-quant-pre-s1', '--resume',
      '--epochs', '100', '--patience', '6', '--lr', '0.002', '--dropout', '0.5', '--no-progress', '--init', 'pretrained', '--pretrained', '/x/.cache/reproduce/sasrec-base-s1/'];
    expect(trainingSettings(parseTrainArgs(study))).toBe(trainingSettings(parseTrainArgs(planned)));
    // The plan watches test (a record only); the study's run did not, and is still the same training.
    expect(planned).toContain('--watch-test');
    expect(study).not.toContain('--watch-test');
    // One setting apart is another training; so is another Base.
    expect(trainingSettings(parseTrainArgs([...study, '--chord-examples']))).not.toBe(trainingSettings(parseTrainArgs(planned)));
    const otherBase = study.map((a) => a.replace('sasrec-base-s1', 'sasrec-base-s2'));
    expect(trainingSettings(parseTrainArgs(otherBase))).not.toBe(trainingSettings(parseTrainArgs(planned)));
    expect(recordedArgs({ command: `/x/src/model/train-cli.ts ${study.join(' ')}` })).toEqual(study);
  });

  it("copies a finished run with a planned run's settings under the planned key, marks it, and leaves the rest", () => {
    const root = mkdtempSync(join(tmpdir(), 'reproduce-adopt-'));
    try {
      const cache = join(root, 'reproduce');
      const study = join(root, 'study');
      mkdirSync(cache);
      mkdirSync(study);
      writeFileSync(join(study, 'sasrec-quant-pre-s1.eval.json'), '{}'); // a sidecar, not a run
      const chord = spec('sasrec-chord-l2468-b0.125-pre-s1');
      const chordArgs = trainArgs(chord, DATA, join(study, 'x'), profile);
      finished(join(study, 'sasrec-chord-znorm-pre-s1'), chordArgs, { zNorm: true });
      // Plain CHORD is not ML-100K's SASRec CHORD any more (the profile adds --z-norm): not adopted.
      finished(join(study, 'sasrec-chord-pre-s1'), chordArgs.filter((a) => a !== '--z-norm'));
      // A planned run that is not to do (already finished here) is not replaced.
      const caserQuant = spec('caser-quant-pre-s1');
      finished(join(study, 'caser-quant-pre-s1'), trainArgs(caserQuant, DATA, join(study, 'y'), profile));

      const todo = plan.filter((r) => r.key !== caserQuant.key);
      const adopted = adoptRuns(todo, [study], { data: DATA, cacheDir: cache, profile });
      expect(adopted).toEqual([{ key: chord.key, from: join(study, 'sasrec-chord-znorm-pre-s1') }]);
      const run = findTraining(join(cache, chord.key))!;
      expect(run.artifactDir).toBe(join(cache, chord.key, 'model'));
      expect(existsSync(join(cache, chord.key, 'checkpoint', 'best.json'))).toBe(true);
      expect(JSON.parse(readFileSync(join(cache, chord.key, ADOPTED_FILE), 'utf8')).from).toBe(join(study, 'sasrec-chord-znorm-pre-s1'));
      expect(existsSync(join(cache, caserQuant.key))).toBe(false);
      expect(adoptedLines([{ spec: chord, training: run.training, artifactDir: run.artifactDir }])[0]).toMatch(/^Adopted: 1 runs .* sasrec-chord-l2468-b0.125-pre-s1 from /);
      // Adopting again finds the run already there.
      expect(adoptRuns(todo, [study], { data: DATA, cacheDir: cache, profile })).toEqual([]);
      expect(() => adoptRuns(todo, [join(root, 'missing')], { data: DATA, cacheDir: cache, profile })).toThrow(/no folder/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
