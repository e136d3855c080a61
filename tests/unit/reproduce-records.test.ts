/**
 * Committed run records (reproduce/records.ts): a real tiny run's training.json and sidecars kept
 * without its weights, read back as a finished run whose diagnostics need no artifact; and
 * reproduce-cli in a checkout without the cache, reporting from the records alone and freezing a
 * Base from its recorded weights.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { othersStrategyRanks, testRanks, type TestRanks } from '../../src/model/reproduce/diagnostics.ts';
import { datasetProfile, planRuns, trainArgs, type FinishedRun } from '../../src/model/reproduce/plan.ts';
import { partialNote, reportTarget, withNote } from '../../src/model/reproduce/partial.ts';
import { readRunRecords, recordsDir, restoreBaseWeights, writeRunRecords, type RunRecord } from '../../src/model/reproduce/records.ts';
import { planned, tempRunDir, tinyFinishedRun } from '../fixtures/reproduce-sidecars.ts';

const run = promisify(execFile);

describe('run records', () => {
  const tmp = tempRunDir('reproduce-records-');

  it("keeps a run's training.json and its own sidecars, reads them back with no artifact, and names a damaged file", async () => {
    const tiny = await tinyFinishedRun(tmp());
    const key = tiny.spec.key;
    const diagnosticsDir = join(tmp(), 'diagnostics');
    const runs = new Map<string, FinishedRun>([[key, tiny.run]]);
    const ranks = await testRanks(runs, { diagnosticsDir, split: () => tiny.split });
    const others = await othersStrategyRanks(runs, { diagnosticsDir, split: () => tiny.split });
    // Beside them: a sidecar of another run whose key starts like this one's, and one of an older artifact.
    writeFileSync(join(diagnosticsDir, `${key}0.ranks.json`), JSON.stringify({ format: 'chord-test-ranks', version: 1, artifactHash: 'x' }));
    writeFileSync(join(diagnosticsDir, `${key}.budget-3.json`), JSON.stringify({ format: 'chord-quant-budget', version: 1, artifactHash: 'older' }));

    const dir = recordsDir(join(tmp(), 'results'), 'ml-100k');
    expect(writeRunRecords(runs, diagnosticsDir, dir)).toEqual([key]);
    // Equal records are equal bytes: nothing is rewritten.
    expect(writeRunRecords(runs, diagnosticsDir, dir)).toEqual([]);
    const record = readRunRecords(dir).get(key)!;
    expect(record.training).toEqual(tiny.training);
    expect(Object.keys(record.sidecars).sort()).toEqual([`${key}.others-ranks.json`, `${key}.ranks.json`]);

    // The record as a finished run: the same diagnostics, nothing evaluated (no split to evaluate with).
    const fromRecord = new Map<string, FinishedRun>([[key, { spec: tiny.spec, training: record.training, recorded: record }]]);
    expect(await testRanks(fromRecord, { diagnosticsDir: join(tmp(), 'none') })).toEqual(ranks);
    expect(await othersStrategyRanks(fromRecord, { diagnosticsDir: join(tmp(), 'none') })).toEqual(others);
    // A sidecar of another artifact than the recorded one is not used.
    const tampered = { ...record, artifactHash: 'another' };
    expect(await testRanks(new Map([[key, { spec: tiny.spec, training: record.training, recorded: tampered }]]), { diagnosticsDir })).toEqual(new Map());

    // Damaged or misplaced records are named, never skipped.
    const bad = join(tmp(), 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, `${key}.json.gz`), readFileSync(join(dir, `${key}.json.gz`)).subarray(0, 40));
    expect(() => readRunRecords(bad)).toThrow(expect.objectContaining({ name: 'ChordTrainError', code: 'CHORD_BAD_RUN_RECORD' }));
    expect(() => readRunRecords(bad)).toThrow(new RegExp(`${key}\\.json\\.gz: not a readable run record`));
    writeFileSync(join(bad, `${key}.json.gz`), gzipSync(JSON.stringify({ ...record, key: 'sasrec-base-s1' })));
    expect(() => readRunRecords(bad)).toThrow(/it records sasrec-base-s1/);
    writeFileSync(join(bad, `${key}.json.gz`), gzipSync(JSON.stringify({ ...record, version: 2 })));
    expect(() => readRunRecords(bad)).toThrow(/format chord-run-record version 2/);
    expect(readRunRecords(join(tmp(), 'missing'))).toEqual(new Map());

    // A Base's record comes with the checkpoint its frozen-pretrained runs freeze, and it goes back into a cache as it was.
    const base = planned('sasrec-base-s3');
    const checkpoint = join(dirname(tiny.result.artifactDir), 'checkpoint');
    expect(writeRunRecords(new Map([[base.key, { ...tiny.run, spec: base }]]), diagnosticsDir, dir)).toEqual([base.key]);
    for (const f of ['best.json', 'best.bin']) expect(readFileSync(join(dir, `${base.key}.${f}`))).toEqual(readFileSync(join(checkpoint, f)));
    expect(readdirSync(dir).filter((f) => f.startsWith(key))).toEqual([`${key}.json.gz`]); // a CHORD run's record has no weights
    const cacheRun = join(tmp(), 'fresh-cache', base.key);
    expect(restoreBaseWeights(dir, base.key, cacheRun)).toBe(true);
    for (const f of ['best.json', 'best.bin']) {
      expect(readFileSync(join(cacheRun, 'checkpoint', f))).toEqual(readFileSync(join(checkpoint, f)));
      expect(statSync(join(cacheRun, 'checkpoint', f)).mtimeMs).toBe(0);
    }
    // Restored again (the next invocation's runs): equal files stay the same files, a damaged one is replaced whole.
    const json = join(cacheRun, 'checkpoint', 'best.json');
    const bin = join(cacheRun, 'checkpoint', 'best.bin');
    const untouched = { ino: statSync(json).ino, ctimeMs: statSync(json).ctimeMs };
    await new Promise((resolve) => setTimeout(resolve, 20));
    writeFileSync(bin, readFileSync(bin).subarray(0, 100));
    expect(restoreBaseWeights(dir, base.key, cacheRun)).toBe(true);
    expect({ ino: statSync(json).ino, ctimeMs: statSync(json).ctimeMs }).toEqual(untouched);
    expect(readFileSync(bin)).toEqual(readFileSync(join(checkpoint, 'best.bin')));
    expect(statSync(bin).mtimeMs).toBe(0);
    expect(readdirSync(join(cacheRun, 'checkpoint')).sort()).toEqual(['best.bin', 'best.json']);
    expect(restoreBaseWeights(dir, 'caser-base-s3', join(tmp(), 'fresh-cache', 'caser-base-s3'))).toBe(false);
  }, 120_000);
});

describe('reproduce from records, in a checkout without the cache', () => {
  const tmp = tempRunDir('reproduce-records-cli-');
  const DATA = 'nowhere/ml-100k';
  const profile = datasetProfile('ml-100k');
  const plan = planRuns([1]).filter(profile.keep);

  /** A record of planned run `key` as a finished run in another checkout leaves it: its planned command, its test ranks. */
  function record(key: string, ranks: TestRanks, commit: string): RunRecord {
    const spec = plan.find((r) => r.key === key)!;
    const ndcg = 0.05;
    const evalOf = { unmasked: { ndcg5: ndcg, ndcg10: ndcg, hr5: ndcg, hr10: ndcg }, masked: { ndcg5: ndcg, ndcg10: ndcg, hr5: ndcg, hr10: ndcg }, averageBits: 3 };
    return {
      format: 'chord-run-record',
      version: 1,
      key,
      artifactHash: `hash-${key}`,
      training: {
        modelId: `m-${key}`,
        command: `node src/model/train-cli.ts ${trainArgs(spec, DATA, '.cache/reproduce', profile).join(' ')}`,
        timing: { trainSeconds: 60, meanStepSeconds: 1 },
        epochs: { run: 9, best: 3, stoppedEarly: true },
        code: { commit: `${commit}${'0'.repeat(40 - commit.length)}`, dirty: false },
        metrics: { test: evalOf, testAtBudget: {} },
      },
      sidecars: { [`${key}.ranks.json`]: { format: 'chord-test-ranks', version: 1, artifactHash: `hash-${key}`, ranks } as never },
    };
  }

  it('lists recorded runs as done with their commit, reports paired numbers from them, and freezes a Base from its recorded weights only', async () => {
    const results = join(tmp(), 'results');
    const cache = join(tmp(), 'cache');
    const dir = recordsDir(results, 'ml-100k');
    mkdirSync(dir, { recursive: true });
    const users = [0, 1, 2, 3];
    const write = (r: RunRecord) => writeFileSync(join(dir, `${r.key}.json.gz`), gzipSync(JSON.stringify(r)));
    write(record('sasrec-base-s1', { users, unmasked: [0, 0, 50, 60], masked: [0, 0, 50, 60] }, 'aaaaaaa'));
    writeFileSync(join(dir, 'sasrec-base-s1.best.json'), '{"kept":"json"}');
    writeFileSync(join(dir, 'sasrec-base-s1.best.bin'), Buffer.from([1, 2, 3]));
    write(record('sasrec-quant-s1', { users, unmasked: [0, 20, 50, 60], masked: [0, 20, 50, 60] }, 'bbbbbbb'));
    write(record('caser-base-s1', { users, unmasked: [0, 0, 0, 0], masked: [0, 0, 0, 0] }, 'ccccccc')); // no weights kept
    // A record of other settings than the plan gives the run now does not count.
    const old = record('caser-quant-s1', { users, unmasked: [0, 0, 0, 0], masked: [0, 0, 0, 0] }, 'ddddddd');
    write({ ...old, training: { ...old.training, command: `${old.training.command} --lr 0.5` } });

    const cli = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'src/model/reproduce-cli.ts', '--data', DATA, '--seeds', '1', '--cache', cache, '--results', results, ...args]);
    const failure = (...args: string[]) => cli(...args).then(() => undefined, (e: { code: number; stderr: string; stdout: string }) => e);
    const list = (await cli('--list')).stdout;
    expect(list).toContain('3 finished');
    expect(list).toContain('done  sasrec-base-s1 (record, commit aaaaaaa)');
    expect(list).toContain('done  sasrec-quant-s1 (record, commit bbbbbbb)');
    expect(list).toMatch(/todo {2}caser-quant-s1\n/);

    await cli('--report');
    const json = JSON.parse(readFileSync(join(results, 'ml-100k.json'), 'utf8'));
    expect(json.rows.map((r: { runs: string[] }) => r.runs[0])).toContain('sasrec-quant-s1');
    const baseQuant = json.paired_ndcg10.find((c: { a: string; b: string }) => c.a === 'base' && c.b === 'quant');
    expect(baseQuant).toMatchObject({ backbone: 'sasrec', seeds: [1], users: 4 });
    expect(baseQuant.ndcg10.unmasked.mean).toBeCloseTo(1 / 4, 12); // user 1: rank 0 against rank 20
    expect(readFileSync(join(results, 'ml-100k.md'), 'utf8')).toContain(`and 3 kept as records in ${dir}`);
    // The report writes nothing into the cache for runs that are records.
    expect(existsSync(cache)).toBe(false);

    // A committed table with runs this checkout lacks is never rewritten from fewer: the report goes beside it.
    const full = JSON.stringify({ rows: [{ runs: ['sasrec-base-s1'] }, { runs: ['sasrec-chord-l2468-b0.125-s1', 'sasrec-chord-l2468-b0.125-s2'] }] });
    writeFileSync(join(results, 'ml-100k.json'), full);
    await cli('--report');
    expect(readFileSync(join(results, 'ml-100k.json'), 'utf8')).toBe(full);
    const partial = JSON.parse(readFileSync(join(results, 'ml-100k.partial.json'), 'utf8'));
    expect(partial.partial).toEqual({ of: 'ml-100k.json', missing: ['sasrec-chord-l2468-b0.125-s1', 'sasrec-chord-l2468-b0.125-s2'] });
    expect(partial.rows).toEqual(json.rows);
    const partialMd = readFileSync(join(results, 'ml-100k.partial.md'), 'utf8').split('\n');
    expect(partialMd[0]).toBe('# ml-100k: CHORD reproduction');
    expect(partialMd[2]).toMatch(/^\*\*Partial report\.\*\* `ml-100k\.md` stays the full table: it reports 2 runs this report does not have \(sasrec-chord-l2468-b0\.125-s1, sasrec-chord-l2468-b0\.125-s2\)/);
    // Once the report has every run the table lists, the table itself is rewritten.
    writeFileSync(join(results, 'ml-100k.json'), JSON.stringify({ rows: [{ runs: ['sasrec-base-s1'] }] }));
    await cli('--report');
    expect(JSON.parse(readFileSync(join(results, 'ml-100k.json'), 'utf8')).rows).toEqual(json.rows);

    // caser-quant-pre-s1 freezes caser-base-s1, whose record has no weights: refused before anything trains.
    const refused = await failure('--only', 'caser-quant-pre-s1');
    expect(refused?.code).toBe(2);
    expect(refused?.stderr).toMatch(/caser-quant-pre-s1 freezes caser-base-s1, kept as a record in .* without its weights/);
    expect(existsSync(cache)).toBe(false);
    // sasrec-quant-pre-s2 freezes sasrec-base-s2, which neither the cache nor the records have: refused, never
    // started on whatever checkpoint a Base in training has written so far.
    const baseless = await failure('--seeds', '1,2', '--only', 'sasrec-quant-pre-s2');
    expect(baseless?.code).toBe(2);
    expect(baseless?.stderr).toMatch(/sasrec-quant-pre-s2 freezes sasrec-base-s2, not finished in .* nor in .*\. Train it first \(--only sasrec-base-s2\)/);
    expect((await cli('--seeds', '1,2', '--list')).stdout).toMatch(/todo {2}sasrec-quant-pre-s2 \(freezes sasrec-base-s2, not finished: selected alone it is refused\)\n/);
    expect(existsSync(cache)).toBe(false);
    // sasrec-quant-pre-s1 freezes sasrec-base-s1: its weights go back into the cache, and training starts (and stops at the missing data).
    const started = await failure('--only', 'sasrec-quant-pre-s1');
    expect(started?.stderr).not.toMatch(/kept as a record/);
    expect(started?.stderr).toMatch(/sasrec-quant-pre-s1/);
    expect(readFileSync(join(cache, 'sasrec-base-s1', 'checkpoint', 'best.json'), 'utf8')).toBe('{"kept":"json"}');
    expect(readFileSync(join(cache, 'sasrec-base-s1', 'checkpoint', 'best.bin'))).toEqual(Buffer.from([1, 2, 3]));
    rmSync(results, { recursive: true, force: true });
  }, 120_000);
});

describe('reportTarget: never a committed table rewritten from fewer runs', () => {
  const tmp = tempRunDir('reproduce-partial-');
  const keys = (j: unknown) => (j as { rows: { key: string }[] }).rows.map((r) => r.key);

  it('writes the full file where there is none or it reports nothing missing, the partial one otherwise', () => {
    expect(reportTarget(tmp(), 'strategy-study', new Set(['a']), keys)).toEqual({ name: 'strategy-study', missing: [] });
    writeFileSync(join(tmp(), 'strategy-study.json'), JSON.stringify({ rows: [{ key: 'b' }, { key: 'a' }, { key: 'c' }, { key: 'b' }] }));
    expect(reportTarget(tmp(), 'strategy-study', new Set(['a']), keys)).toEqual({ name: 'strategy-study.partial', missing: ['b', 'c'] });
    expect(reportTarget(tmp(), 'strategy-study', new Set(['a', 'b', 'c', 'd']), keys)).toEqual({ name: 'strategy-study', missing: [] });
    expect(withNote('# T\n\nbody', partialNote('strategy-study', ['b', 'c']))).toMatch(/^# T\n\n\*\*Partial report\.\*\* `strategy-study\.md` stays the full table: it reports 2 runs .*\(b, c\).*\n\nbody$/);
  });
});
