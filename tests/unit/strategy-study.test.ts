/**
 * The strategy study's runs are train runs on reproduce's Base of the same backbone and seed, with
 * reproduce's settings, each changing only what its mechanism says; the paper's post-training Quant
 * is ranked once per Base and cached.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseTrainArgs } from '../../src/model/train-cli.ts';
import { planRuns, trainArgs, datasetProfile } from '../../src/model/reproduce/plan.ts';
import { recordsDir } from '../../src/model/reproduce/records.ts';
import { fakeQuantize } from '../../src/core/quantize.ts';
import { initBackend } from '../../src/model/backend.ts';
import { testHistories } from '../../src/model/chord/data.ts';
import { prepareDeployment, rankDeployment } from '../../src/model/chord/deployed.ts';
import { runTraining } from '../../src/model/chord/run.ts';
import { readArtifact } from '../../src/model/export.ts';
import { overSeeds, ptqRanks, recordBase, studyRuns, studyTrainArgs } from '../../tools/strategy-study.ts';
import { readStudyRecords, studyRecordsDir, toPlain, writeStudyRecord, type PlainRanks, type StudyRecord } from '../../tools/study-records.ts';
import { cyclicSplit, tinyRunOptions } from '../fixtures/tiny-training.ts';

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
    const both = parsed.get('sasrec-chord-znorm-contrast1-pre-s1')!;
    expect({ zNorm: both.zNorm, contrast: both.contrast }).toEqual({ zNorm: true, contrast: 1 });
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

  it("takes Quant-pre and CHORD-pre from reproduce's runs and adds only the gating, examples-control, z-standardization and z + contrast runs", () => {
    const sasrec = runs.filter((r) => r.backbone === 'sasrec');
    expect(sasrec.map((r) => [r.key, r.reproduceKey])).toEqual([
      ['sasrec-quant-pre-s1', 'sasrec-quant-pre-s1'],
      ['sasrec-chord-pre-s1', 'sasrec-chord-l2468-b0.125-pre-s1'],
      ['sasrec-chord-gate-pre-s1', undefined],
      ['sasrec-quant-chord-examples-pre-s1', undefined],
      ['sasrec-chord-znorm-pre-s1', undefined],
      ['sasrec-chord-znorm-contrast1-pre-s1', undefined],
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

describe('a mechanism over its seeds', () => {
  // Ranks 0 (NDCG@10 1) or 99 (NDCG@10 0) for four users; users 0..3 in every run.
  const ranks = (unmasked: number[], masked = unmasked) => ({
    users: Int32Array.from([0, 1, 2, 3]),
    unmasked: Int32Array.from(unmasked),
    masked: Int32Array.from(masked),
  });
  it("averages each user's difference over the seeds, then pairs over users; mechanisms on one seed are left out", () => {
    const runs = studyRuns([1, 2]).filter((r) => r.backbone === 'sasrec' && ['quant', 'chord-znorm', 'chord-gate'].includes(r.name));
    const seed1Only = runs.filter((r) => r.name !== 'chord-gate' || r.seed === 1);
    const own = new Map<string, ReturnType<typeof ranks>>();
    const other = new Map<string, ReturnType<typeof ranks>>();
    for (const r of seed1Only) {
      const personal = r.name !== 'quant';
      // Quant: rank 99 everywhere. The personal runs: user 0 at rank 0 on seed 1 only, user 1 on both seeds.
      own.set(r.key, ranks(personal ? [r.seed === 1 ? 0 : 99, 0, 99, 99] : [99, 99, 99, 99]));
      if (personal) other.set(r.key, ranks([99, 99, 99, 99]));
    }
    const pooled = overSeeds(seed1Only, own, other);
    expect(pooled.map((p) => p.mechanism).sort()).toEqual(['sasrec-chord-znorm', 'sasrec-quant']);
    const z = pooled.find((p) => p.mechanism === 'sasrec-chord-znorm')!;
    expect(z.seeds).toEqual([1, 2]);
    // Per user over the seeds: user 0 gains 1 on one seed of two, user 1 on both, users 2 and 3 never.
    expect(z.vsQuant!.unmasked.mean).toBeCloseTo((1 / 2 + 1) / 4, 12);
    expect(z.vsQuant!.unmasked.n).toBe(4);
    expect(z.ownVsOtherUser!.masked.mean).toBeCloseTo((1 / 2 + 1) / 4, 12);
    expect(z.ndcg10).toBeCloseTo((2 / 4 + 1 / 4) / 2, 12);
    // No quant-chord-examples run: that comparison is missing, not zero.
    expect(z.vsQuantChordExamples).toBeNull();
    // Quant is not compared with itself and has no other user's strategy.
    const q = pooled.find((p) => p.mechanism === 'sasrec-quant')!;
    expect(q.vsQuant).toBeNull();
    expect(q.ownVsOtherUser).toBeNull();
    // z-norm builds on plain CHORD-pre, so it is set against Quant-pre only.
    expect(z.vsBuildsOn).toBeNull();
  });

  it('sets a mechanism that adds a change to another against that one, on the same seeds', () => {
    const runs = studyRuns([1, 2]).filter((r) => r.backbone === 'sasrec' && ['chord-znorm', 'chord-znorm-contrast1'].includes(r.name));
    expect(runs.find((r) => r.name === 'chord-znorm-contrast1')!.buildsOn).toBe('chord-znorm');
    const own = new Map<string, ReturnType<typeof ranks>>();
    // The contrast runs put user 2 at rank 0 on both seeds; z-norm alone never does.
    for (const r of runs) own.set(r.key, ranks(r.name === 'chord-znorm' ? [99, 99, 99, 99] : [99, 99, 0, 99]));
    const contrast = overSeeds(runs, own, new Map()).find((p) => p.mechanism === 'sasrec-chord-znorm-contrast1')!;
    expect(contrast.vsBuildsOn!.mechanism).toBe('sasrec-chord-znorm');
    expect(contrast.vsBuildsOn!.difference!.unmasked.mean).toBeCloseTo(1 / 4, 12);
    // Without z-norm on seed 2 the comparison is missing, not made on seed 1 alone.
    const withoutSeed2 = new Map(own);
    withoutSeed2.delete('sasrec-chord-znorm-pre-s2');
    const partial = overSeeds(runs.filter((r) => r.key !== 'sasrec-chord-znorm-pre-s2'), withoutSeed2, new Map());
    expect(partial.find((p) => p.mechanism === 'sasrec-chord-znorm-contrast1')!.vsBuildsOn!.difference).toBeNull();
  });
});

describe('post-training Quant of a Base', () => {
  it('ranks the Base at uniform 3 bits, caches the ranks by its training.json, and ranks again when that changes', async () => {
    await initBackend('wasm');
    const dir = mkdtempSync(join(tmpdir(), 'study-ptq-'));
    try {
      const ds = cyclicSplit(24, 12);
      const base = await runTraining(tinyRunOptions(dir, { method: 'base', gruWindow: 20 }), ds);
      const dep = await prepareDeployment(readArtifact(base.artifactDir));
      const quantized = new Map([...dep.frozen].map(([name, w]) => [name, fakeQuantize(w, dep.artifact.manifest.layers.find((l) => l.name === name)!.shape, 3)]));
      const expected = rankDeployment({ ...dep, frozen: quantized }, testHistories(ds), { gruWindow: 20 });
      const cache = join(dir, 'study');
      let deployed = 0;
      const deployment = async () => (deployed++, dep);
      expect(await ptqRanks(cache, 'sasrec-base-s3', base.artifactDir, deployment, ds, 2)).toEqual(expected);
      expect(readdirSync(cache)).toEqual(['sasrec-base-s3.ptq-w3.json']);
      // From the cache: the Base is not deployed again.
      expect(await ptqRanks(cache, 'sasrec-base-s3', base.artifactDir, deployment, ds, 1)).toEqual(expected);
      expect(deployed).toBe(1);
      // w3a3 is its own entry.
      await ptqRanks(cache, 'sasrec-base-s3', base.artifactDir, deployment, ds, 1, 3);
      expect(readdirSync(cache).sort()).toEqual(['sasrec-base-s3.ptq-w3.json', 'sasrec-base-s3.ptq-w3a3.json']);
      expect(deployed).toBe(2);
      // A retrained Base (another training.json) is ranked again.
      appendFileSync(join(base.artifactDir, 'training.json'), '\n');
      await ptqRanks(cache, 'sasrec-base-s3', base.artifactDir, deployment, ds, 1);
      expect(deployed).toBe(3);

      // The study's record of the Base: its own ranks and both PTQ variants, read back as written.
      const training = JSON.parse(readFileSync(join(base.artifactDir, 'training.json'), 'utf8'));
      const record = await recordBase(cache, 'sasrec-base-s3', { artifactDir: base.artifactDir, training }, () => ds, 1);
      expect(record.ptq!.w3).toEqual(toPlain(expected));
      expect(record.ranks.own).toEqual(toPlain(rankDeployment(dep, testHistories(ds), { gruWindow: 20 })));
      const records = join(dir, 'records');
      expect(writeStudyRecord(records, record)).toBe(true);
      expect(writeStudyRecord(records, record)).toBe(false); // equal records are equal bytes
      expect(readStudyRecords(records).get('sasrec-base-s3')).toEqual(record);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('the study from its records, in a checkout without the cache', () => {
  const run = promisify(execFile);
  // A dataset name no cache holds, so the report can only read the records.
  const root = mkdtempSync(join(tmpdir(), 'study-records-'));
  const name = basename(root).toLowerCase();
  const DATA = join(root, name);
  const results = join(root, 'results');
  const dir = studyRecordsDir(results, name);
  const users = [0, 1, 2, 3];
  const ranks = (unmasked: number[]): PlainRanks => ({ users, unmasked, masked: unmasked });
  const metric = { ndcg5: 0.1, ndcg10: 0.1, hr5: 0.1, hr10: 0.1 };
  const plan = planRuns([1]);
  /** The train command the study gives `key` now (a study run, or a Base as reproduce trains it). */
  const commandOf = (key: string) => {
    const run = studyRuns([1], name).find((r) => r.key === key);
    const args = run ? studyTrainArgs(run, DATA) : trainArgs(plan.find((r) => r.key === key)!, DATA, join('.cache', `reproduce-${name}`), datasetProfile(name));
    return `node src/model/train-cli.ts ${args.join(' ')}`;
  };
  function record(key: string, own: PlainRanks, extra: Partial<StudyRecord> = {}): StudyRecord {
    return {
      format: 'chord-study-record',
      version: 1,
      key,
      trainingHash: `hash-${key}`,
      training: {
        modelId: `m-${key}`,
        command: commandOf(key),
        timing: { trainSeconds: 120, meanStepSeconds: 1 },
        epochs: { run: 9, best: 3, stoppedEarly: true },
        code: { commit: `abcdef1${'0'.repeat(33)}`, dirty: false },
        metrics: { test: { unmasked: metric, masked: metric, averageBits: 3 }, testAtBudget: {}, valid: { unmasked: metric, masked: metric } },
      } as never,
      ranks: { own },
      ...extra,
    };
  }
  const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'tools/strategy-study.ts', '--data', DATA, '--results', results, ...args]);

  it('lists recorded runs as done, reports from them alone, trains neither them nor a recorded Base, and names a damaged or outdated record', async () => {
    try {
      // Quant-pre: every user at rank 99. z-norm: users 0 and 1 at rank 0 with their own strategy, user 0 only with another's.
      writeStudyRecord(dir, record('sasrec-quant-pre-s1', ranks([99, 99, 99, 99])));
      writeStudyRecord(dir, record('sasrec-chord-znorm-pre-s1', ranks([0, 0, 99, 99]), { ranks: { own: ranks([0, 0, 99, 99]), otherUser: ranks([0, 99, 99, 99]) } }));
      writeStudyRecord(dir, record('sasrec-base-s1', ranks([0, 99, 99, 99]), { ptq: { w3: ranks([99, 99, 99, 99]), w3a3: ranks([0, 0, 0, 99]) } }));

      const list = (await cli('--list')).stdout;
      expect(list).toMatch(/^done \(record, commit abcdef1\) {2}sasrec-quant-pre-s1 /m);
      expect(list).toMatch(/^done \(record, commit abcdef1\) {2}sasrec-chord-znorm-pre-s1 /m);
      expect(list).toMatch(/^todo {2}sasrec-chord-pre-s1 /m);

      await cli('--report');
      const json = JSON.parse(readFileSync(join(results, `strategy-study-${name}.json`), 'utf8'));
      expect(json.rows.map((r: { key: string }) => r.key)).toEqual(['sasrec-quant-pre-s1', 'sasrec-chord-znorm-pre-s1']);
      const z = json.rows[1];
      expect(z.test.ndcg10).toBeCloseTo(2 / 4, 12);
      expect(z.vsQuant.unmasked.mean).toBeCloseTo(2 / 4, 12);
      expect(z.ownVsOtherUser.unmasked.mean).toBeCloseTo(1 / 4, 12);
      expect(z.commit).toBe('abcdef1');
      expect(z.trainMinutes).toBe(2);
      expect(json.ptq.map((p: { label: string }) => p.label)).toEqual(['PTQ w3', 'PTQ w3a3', 'Base fp32']);
      expect(json.ptq[1].vsBase.unmasked.mean).toBeCloseTo(2 / 4, 12);
      expect(json.ptq[1].vsQuantPre.unmasked.mean).toBeCloseTo(3 / 4, 12);
      expect(readFileSync(join(results, `strategy-study-${name}.md`), 'utf8')).toContain(`those kept as records in ${dir}/`);
      // Nothing was trained, evaluated or cached.
      expect(existsSync(join('.cache', `study-${name}`))).toBe(false);
      expect(existsSync(join('.cache', `reproduce-${name}`))).toBe(false);

      // A record of other settings than the study gives its run now is not used (and says why).
      const gate = record('sasrec-chord-gate-pre-s1', ranks([0, 0, 0, 0]));
      writeStudyRecord(dir, { ...gate, training: { ...gate.training, command: `${gate.training.command} --lr 0.5` } });
      const stale = await cli('--report');
      expect(stale.stderr).toMatch(/sasrec-chord-gate-pre-s1: its record in .* trained with other settings than the study's now \(lr: 0\.5 → 0\.002\)/);
      expect(JSON.parse(readFileSync(join(results, `strategy-study-${name}.json`), 'utf8')).rows).toHaveLength(2);
      expect((await cli('--list')).stdout).toMatch(/^todo {2}sasrec-chord-gate-pre-s1 /m);

      // --train leaves recorded runs alone: nothing to train, no Base, no cache.
      await cli('--train', '--only', 'sasrec-quant-pre-s1,sasrec-chord-znorm-pre-s1');
      expect(existsSync(join('.cache', `reproduce-${name}`))).toBe(false);
      // A run to train freezes reproduce's recorded Base: its weights go back into reproduce's cache, no Base is
      // trained, and the run itself starts (and stops at the missing data).
      const baseRecords = recordsDir(results, name);
      writeFileSync(
        join(baseRecords, 'sasrec-base-s1.json.gz'),
        gzipSync(JSON.stringify({ format: 'chord-run-record', version: 1, key: 'sasrec-base-s1', artifactHash: 'h', training: record('sasrec-base-s1', ranks([0, 0, 0, 0])).training, sidecars: {} })),
      );
      writeFileSync(join(baseRecords, 'sasrec-base-s1.best.json'), '{"kept":"json"}');
      writeFileSync(join(baseRecords, 'sasrec-base-s1.best.bin'), Buffer.from([4, 5, 6]));
      const started = await cli('--train', '--only', 'sasrec-chord-gate-pre-s1').then(() => undefined, (e: { stderr: string }) => e);
      expect(started?.stderr).toMatch(/sasrec-chord-gate-pre-s1/);
      const checkpoint = join('.cache', `reproduce-${name}`, 'sasrec-base-s1', 'checkpoint');
      expect(readFileSync(join(checkpoint, 'best.json'), 'utf8')).toBe('{"kept":"json"}');
      expect(readFileSync(join(checkpoint, 'best.bin'))).toEqual(Buffer.from([4, 5, 6]));
      expect(readdirSync(join('.cache', `reproduce-${name}`, 'sasrec-base-s1'))).toEqual(['checkpoint']); // no Base trained

      writeFileSync(join(dir, 'sasrec-quant-pre-s1.json.gz'), gzipSync(JSON.stringify({ ...record('sasrec-quant-pre-s1', ranks([99])), ranks: { own: { users, unmasked: [1], masked: [1] } } })));
      const damaged = await cli('--report').then(() => undefined, (e: { stderr: string }) => e);
      expect(damaged?.stderr).toMatch(/sasrec-quant-pre-s1\.json\.gz: not a readable run record \(no training hash, test metrics or ranks\)/);
    } finally {
      rmSync(root, { recursive: true, force: true });
      for (const cache of [`study-${name}`, `reproduce-${name}`]) rmSync(join('.cache', cache), { recursive: true, force: true });
    }
  }, 180_000);
});
