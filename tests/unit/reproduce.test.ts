import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { chooseProfile, DATASET_PROFILES, datasetName, datasetProfile, DEFAULT_PROFILE, EPOCH_CAP, findTraining, planRuns, QUANT_BUDGET, reproduceCacheDir, runsName, selectRuns, staleReason, trainArgs } from '../../src/model/reproduce/plan.ts';
import { markdown, perSeedTables, trainingTimeTable, watchedTestTable } from '../../src/model/reproduce/markdown.ts';
import { aggregate, chooseChordMode, compareSeeds, watchedTest, watchedTestRows } from '../../src/model/reproduce/report.ts';
import { parseTrainArgs } from '../../src/model/train-cli.ts';
import { reproduceCommand } from '../../src/model/reproduce-cli.ts';
import { finishedRun } from '../fixtures/reproduce-runs.ts';

const DATA = 'data/ml-100k';

describe('reproduce plan and aggregation', () => {
  it('plans every headline method for both backbones and seeds first, then the ablations, with unique keys', () => {
    const plan = planRuns([1, 2, 3]);
    expect(new Set(plan.map((r) => r.key)).size).toBe(plan.length);
    const headline = plan.filter((r) => r.group === 'headline');
    expect(headline).toHaveLength(2 * 5 * 3);
    expect(plan.slice(0, headline.length).every((r) => r.group === 'headline')).toBe(true);
    expect(plan.slice(0, 10).map((r) => r.seed)).toEqual(Array(10).fill(1));
    expect(plan.filter((r) => r.group === 'levels').map((r) => r.levels)).toEqual(['2,5,6,7', '2,5,6,7']);
    expect(plan.filter((r) => r.group === 'beta').map((r) => r.beta)).toEqual([0.0625, 0.1875, 0.25, 0.0625, 0.1875, 0.25]);
    expect(plan.find((r) => r.key === 'sasrec-chord-l2468-b0.125-s1')!.budgets).toEqual([3, 2.5, 2]);
    // Every quantized method also on each seed's frozen-pretrained backbone, CHORD's first.
    const pre = plan.filter((r) => r.group === 'pretrained');
    expect(pre.every((r) => r.pretrained)).toBe(true);
    expect(pre.slice(0, 6).map((r) => r.method)).toEqual(Array(6).fill('chord'));
    for (const backbone of ['sasrec', 'caser']) {
      for (const method of ['quant', 'custom', 'weighted', 'chord']) {
        expect(pre.filter((r) => r.backbone === backbone && r.method === method).map((r) => r.seed), `${backbone} ${method}`).toEqual([1, 2, 3]);
      }
    }
    expect(pre.map((r) => r.key)).toContain('sasrec-quant-pre-s2');
  });

  it("plans SASRec Quant on CHORD's examples in both modes on every seed, its own key and --chord-examples", () => {
    const plan = planRuns([1, 2]);
    const controls = plan.filter((r) => r.group === 'examples');
    expect(controls.map((r) => r.key)).toEqual(['sasrec-quant-examples-s1', 'sasrec-quant-examples-pre-s1', 'sasrec-quant-examples-s2', 'sasrec-quant-examples-pre-s2']);
    for (const r of plan) {
      const parsed = parseTrainArgs(trainArgs(r, DATA, '.cache/reproduce')).run;
      expect(parsed.chordExamples === true, r.key).toBe(r.chordExamples);
    }
    // The control differs from its Quant in the examples alone: same mode, same Base.
    const settings = (key: string) => trainArgs(plan.find((r) => r.key === key)!, DATA, 'c');
    expect(settings('sasrec-quant-examples-pre-s2').filter((a) => a !== '--chord-examples')).toEqual(settings('sasrec-quant-pre-s2').map((a) => a.replace('sasrec-quant-pre-s2', 'sasrec-quant-examples-pre-s2')));
    expect(settings('sasrec-quant-examples-s1')).toContain('random');
    // ML-100K and Toys train them; Sports (its study has the frozen-pretrained one) and the item-filter variant do not.
    for (const name of ['ml-100k', 'amazon-toys']) expect(planRuns([1]).filter(DATASET_PROFILES[name]!.keep).filter((r) => r.chordExamples), name).toHaveLength(2);
    for (const name of ['ml-100k-items21', 'amazon-sports']) expect(planRuns([1]).filter(DATASET_PROFILES[name]!.keep).some((r) => r.chordExamples), name).toBe(false);
  });

  it('--only keeps the runs matching every token: backbone, method, group, seed or a whole run key', () => {
    const plan = planRuns([1, 2, 3]);
    const keys = (tokens: string[]) => selectRuns(plan, tokens).map((r) => r.key);
    expect(keys(['caser', 'beta', 's1'])).toEqual(['caser-chord-l2468-b0.0625-s1', 'caser-chord-l2468-b0.1875-s1', 'caser-chord-l2468-b0.25-s1']);
    expect(keys(['caser-chord-l2468-b0.25-s1'])).toEqual(['caser-chord-l2468-b0.25-s1']);
    expect(keys(['caser-chord-l2468-b0.25-s1', 'sasrec'])).toEqual([]);
    expect(keys(['sasrec', 'pretrained', 's2'])).toEqual(['sasrec-chord-l2468-b0.125-pre-s2', 'sasrec-quant-pre-s2', 'sasrec-custom-l2468-b0.125-pre-s2', 'sasrec-weighted-l2468-b0.125-pre-s2']);
    // A token is a whole name, not part of a key.
    expect(keys(['sasrec', 'pre'])).toEqual([]);
    expect(keys([])).toHaveLength(plan.length);
  });

  it('evaluates every CHORD-family run at Quant\'s 3 bits through T too, and tells train-cli so', () => {
    const plan = planRuns([1, 2, 3]);
    for (const r of plan) {
      const expected = r.method === 'base' || r.method === 'quant' ? [] : r.group === 'headline' && r.method === 'chord' ? [QUANT_BUDGET, 2.5, 2] : [QUANT_BUDGET];
      expect(r.budgets, r.key).toEqual(expected);
      expect(parseTrainArgs(trainArgs(r, 'data/ml-100k', '.cache/reproduce')).run.budgets, r.key).toEqual(expected);
    }
    expect(plan.find((r) => r.key === 'caser-chord-l2468-b0.125-pre-s2')!.budgets).toEqual([3]);
    expect(plan.find((r) => r.key === 'sasrec-weighted-l2468-b0.125-s1')!.budgets).toEqual([3]);
    expect(plan.find((r) => r.key === 'sasrec-quant-w3a3-s1')!.budgets).toEqual([]);
  });

  it('averages seeds per configuration, one row per protocol and deploy budget', () => {
    const rows = aggregate(
      new Map([
        finishedRun('sasrec-chord-l2468-b0.125-s1', 0.06, { '2.5': 0.05 }),
        finishedRun('sasrec-chord-l2468-b0.125-s2', 0.08, { '2.5': 0.07 }),
        finishedRun('sasrec-base-s1', 0.05),
      ]),
    );
    const chord = rows.filter((r) => r.method === 'chord');
    expect(chord).toHaveLength(4); // trained bits and 2.5 bits, each unmasked and masked
    const trained = chord.find((r) => !r.masked && r.deploy_budget === null)!;
    expect(trained.seeds).toBe(2);
    expect(trained.ndcg10).toBeCloseTo(0.07, 10);
    expect(trained.ndcg10_std).toBeCloseTo(Math.SQRT2 * 0.01, 4);
    expect(trained.hr10).toBeCloseTo(0.14, 10);
    expect(trained.avg_bits).toBe(3.2);
    expect(trained.strategy_bytes).toBeGreaterThan(1152 / 4); // 2 bits per channel plus header
    expect(trained.weight_bytes).toBe(4 * (4 * 64 * 64 + 2 * 64 * 256) * 2);
    const masked = chord.find((r) => r.masked && r.deploy_budget === null)!;
    expect(masked.ndcg10).toBeCloseTo(0.14, 10);
    expect(chord.find((r) => !r.masked && r.deploy_budget === 2.5)!.ndcg10).toBeCloseTo(0.06, 10);
    const base = rows.filter((r) => r.method === 'base');
    expect(base.map((r) => [r.masked, r.levels, r.strategy_bytes, r.avg_bits])).toEqual([
      [false, 'fp32', 0, 32],
      [true, 'fp32', 0, 32],
    ]);
  });

  it('checks the orderings within each seed, under both protocols, only where every run exists', () => {
    const cmp = compareSeeds(
      new Map([
        finishedRun('sasrec-base-s1', 0.06),
        finishedRun('sasrec-quant-s1', 0.05),
        finishedRun('sasrec-custom-l2468-b0.125-s1', 0.052),
        finishedRun('sasrec-weighted-l2468-b0.125-s1', 0.051),
        finishedRun('sasrec-chord-l2468-b0.125-s1', 0.07),
        finishedRun('sasrec-chord-l2468-b0.125-pre-s1', 0.059),
        // The same orderings on the frozen-pretrained backbone: quant-pre < custom-pre < weighted-pre < chord-pre.
        finishedRun('sasrec-quant-pre-s1', 0.061),
        finishedRun('sasrec-custom-l2468-b0.125-pre-s1', 0.0565),
        finishedRun('sasrec-weighted-l2468-b0.125-pre-s1', 0.058),
        finishedRun('sasrec-base-s2', 0.06),
        finishedRun('sasrec-chord-l2468-b0.125-s2', 0.05),
        // Ablations are not part of the per-seed comparison.
        finishedRun('sasrec-chord-l2567-b0.125-s1', 0.09),
      ]),
    );
    expect(cmp.map((c) => [c.backbone, c.seed])).toEqual([
      ['sasrec', 1],
      ['sasrec', 2],
    ]);
    const [s1, s2] = cmp;
    expect(s1!.ndcg10.chord).toEqual({ unmasked: 0.07, masked: 0.14 });
    expect(s1!.checks).toEqual({
      chord_gt_base: { unmasked: true, masked: true },
      base_gt_quant: { unmasked: true, masked: true },
      ablation_order: { unmasked: false, masked: false }, // weighted < custom
      pre_gt_base: { unmasked: false, masked: false },
      base_gt_pre_quant: { unmasked: false, masked: false }, // quant-pre 0.061 > base 0.06
      pre_ablation_order: { unmasked: false, masked: false }, // quant-pre above custom-pre
    });
    // Every run lands in its own column: the pretrained ones do not overwrite each other or the headline ones.
    expect(s1!.ndcg10['quant-pre']).toEqual({ unmasked: 0.061, masked: 0.122 });
    expect(s1!.ndcg10.quant).toEqual({ unmasked: 0.05, masked: 0.1 });
    expect(s1!.ndcg10['chord-pre']).toEqual({ unmasked: 0.059, masked: 0.118 });
    expect(s2!.checks.chord_gt_base).toEqual({ unmasked: false, masked: false });
    expect(s2!.checks.base_gt_quant).toBeUndefined();
    expect(s2!.checks.ablation_order).toBeUndefined();
    expect(s2!.checks.pre_ablation_order).toBeUndefined();

    // One table per mode; a seed appears in a mode's table only with a quantized run of that mode.
    const lines = perSeedTables(cmp);
    const table = (title: string) => {
      const at = lines.findIndex((l) => l.startsWith(`**${title}`));
      const end = lines.indexOf('', at + 2);
      return lines.slice(at + 2, end === -1 ? undefined : end);
    };
    expect(table('random-frozen')).toEqual([
      '| backbone | seed | base | quant | custom | weighted | chord | CHORD > Base | Base > Quant | Quant < Custom < Weighted < CHORD |',
      '|---|---|---|---|---|---|---|---|---|---|',
      '| sasrec | 1 | 0.0600 / 0.1200 | 0.0500 / 0.1000 | 0.0520 / 0.1040 | 0.0510 / 0.1020 | 0.0700 / 0.1400 | yes / yes | yes / yes | no / no |',
      '| sasrec | 2 | 0.0600 / 0.1200 | – | – | – | 0.0500 / 0.1000 | no / no | – | – |',
    ]);
    expect(table('frozen-pretrained')).toEqual([
      '| backbone | seed | base | quant-pre | custom-pre | weighted-pre | chord-pre | CHORD > Base | Base > Quant | Quant < Custom < Weighted < CHORD |',
      '|---|---|---|---|---|---|---|---|---|---|',
      '| sasrec | 1 | 0.0600 / 0.1200 | 0.0610 / 0.1220 | 0.0565 / 0.1130 | 0.0580 / 0.1160 | 0.0590 / 0.1180 | no / no | no / no | no / no |',
    ]);
  });

  it('tables training time per configuration in plan order, mean over seeds with the slowest seed', () => {
    const t = (trainSeconds: number, cpu: number | null) => ({ timing: { trainSeconds, meanStepSeconds: 2, meanStepCpuSeconds: cpu } });
    const finished = new Map([
      // seed 2 ran on two threads (train --workers 2), seed 1 on one
      finishedRun('sasrec-chord-l2468-b0.125-s2', 0.05, {}, undefined, undefined, 3, { timing: { ...t(1800, 1.5).timing, workers: 2 }, epochs: { run: 30, best: 24, stoppedEarly: true } }),
      finishedRun('sasrec-base-s1', 0.06, {}, undefined, undefined, 32, t(600, 1)),
      finishedRun('sasrec-chord-l2468-b0.125-s1', 0.05, {}, undefined, undefined, 3, { ...t(1200, null), epochs: { run: 20, best: 13, stoppedEarly: true } }),
    ]);
    const lines = trainingTimeTable(planRuns([1, 2, 3]), finished);
    expect(lines).toContain('## Training time');
    // Configurations in plan order (Base first), whatever the map's order.
    expect(lines.filter((l) => l.startsWith('| `'))).toEqual([
      '| `sasrec-base` | 1 | 1 | 20.0 (14.0) | 10.0 (10.0) | 2.00 (1.00) |',
      // one seed without a CPU time: no CPU mean over the other
      '| `sasrec-chord-l2468-b0.125` | 2 | 1, 2 | 25.0 (18.5) | 25.0 (30.0) | 2.00 |',
    ]);
    expect(trainingTimeTable(planRuns([1]), new Map())).toEqual([]);
  });

  it('picks the CHORD mode on validation over the seeds where both modes finished, never on test', () => {
    const modes = chooseChordMode(
      new Map([
        // Test favours random, validation favours pretrained: validation decides.
        finishedRun('sasrec-chord-l2468-b0.125-s1', 0.09, {}, 0.06),
        finishedRun('sasrec-chord-l2468-b0.125-pre-s1', 0.05, {}, 0.07),
        finishedRun('sasrec-chord-l2468-b0.125-s2', 0.09, {}, 0.065),
        finishedRun('sasrec-chord-l2468-b0.125-pre-s2', 0.05, {}, 0.064),
        // Seed 3 has no pretrained run: left out of the comparison.
        finishedRun('sasrec-chord-l2468-b0.125-s3', 0.09, {}, 0.2),
        // Caser has only one mode: no choice.
        finishedRun('caser-chord-l2468-b0.125-s1', 0.09, {}, 0.06),
      ]),
    );
    expect(modes).toEqual([{ backbone: 'sasrec', seeds: [1, 2], valid_ndcg10: { random: 0.0625, pretrained: 0.067 }, default: 'pretrained' }]);
  });
  it('states every run\'s frozen mode to train-cli: random-frozen runs pass --init random, pretrained ones the seed\'s Base run', () => {
    const plan = planRuns([1, 2, 3]);
    const args = (key: string) => trainArgs(plan.find((r) => r.key === key)!, 'data/ml-100k', '.cache/reproduce');
    const initOf = (a: string[]) => (a.includes('--init') ? a[a.indexOf('--init') + 1] : undefined);
    expect(initOf(args('sasrec-chord-l2468-b0.125-s1'))).toBe('random');
    expect(initOf(args('sasrec-quant-s2'))).toBe('random');
    expect(initOf(args('caser-chord-l2468-b0.125-w3a3-s1'))).toBe('random');
    expect(initOf(args('sasrec-base-s1'))).toBeUndefined(); // Base has no frozen backbone to choose
    const pre = args('caser-chord-l2468-b0.125-pre-s2');
    expect(initOf(pre)).toBe('pretrained');
    expect(pre[pre.indexOf('--pretrained') + 1]).toBe(join('.cache/reproduce', 'caser-base-s2'));
    // Run keys, and so the cache directories, are what they were.
    expect(args('sasrec-chord-l2468-b0.125-s1')[args('sasrec-chord-l2468-b0.125-s1').indexOf('--out') + 1]).toBe(join('.cache/reproduce', 'sasrec-chord-l2468-b0.125-s1'));
    // train-cli reads every planned run as planned: no run trains a Base of its own.
    for (const r of plan) {
      const parsed = parseTrainArgs(trainArgs(r, 'data/ml-100k', '.cache/reproduce'));
      expect(parsed.autoBase).toBe(false);
      expect(parsed.run.init).toBe(r.pretrained ? 'pretrained' : 'random');
      expect(parsed.run.out).toBe(join('.cache/reproduce', r.key));
      expect(parsed.run.pretrainedDir).toBe(r.pretrained ? join('.cache/reproduce', `${r.backbone}-base-s${r.seed}`) : undefined);
      // Every Caser run, Base included, states its shared user row (the per-user table is another model).
      expect(parsed.run.caserUser).toBe(r.backbone === 'caser' ? 'shared' : undefined);
    }
  });

  it('counts a run as finished only with test metrics, and refuses a Caser run with the per-user table', () => {
    const cache = mkdtempSync(join(tmpdir(), 'reproduce-find-'));
    try {
      const write = (key: string, training: object) => {
        mkdirSync(join(cache, key, 'model'), { recursive: true });
        writeFileSync(join(cache, key, 'model', 'training.json'), JSON.stringify(training));
      };
      const test = { unmasked: {}, masked: {} };
      const options = { gruWindow: 20, activationBits: null };
      const data = { users: 3, items: 4 };
      write('sasrec-base-s1', { data, options, metrics: {} });
      expect(findTraining(join(cache, 'sasrec-base-s1'))).toBeUndefined(); // written before its final evaluation
      write('sasrec-base-s2', { data, options, metrics: { test } });
      expect(findTraining(join(cache, 'sasrec-base-s2'))?.artifactDir).toBe(join(cache, 'sasrec-base-s2', 'model'));
      write('caser-base-s1', { data, options: { ...options, caserUser: 'shared' }, metrics: { test } });
      expect(findTraining(join(cache, 'caser-base-s1'))).toBeDefined();
      write('caser-base-s2', { data, options, metrics: { test } });
      expect(() => findTraining(join(cache, 'caser-base-s2'))).toThrow(/per-user embedding table/);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it('resumes a run an older, lower epoch cap stopped, and retrains a pretrained run whose Base trained on', () => {
    const cache = mkdtempSync(join(tmpdir(), 'reproduce-stale-'));
    try {
      const plan = planRuns([1]);
      const spec = (key: string) => plan.find((r) => r.key === key)!;
      const opts = { data: DATA, cacheDir: cache };
      const run = (key: string, epochs: object, args: readonly string[] = trainArgs(spec(key), DATA, cache)) => {
        const artifactDir = join(cache, key, 'model');
        mkdirSync(artifactDir, { recursive: true });
        const training = { modelId: key, command: `node --import tsx src/model/train-cli.ts ${args.join(' ')}`, timing: { trainSeconds: 1, meanStepSeconds: 1 }, epochs, metrics: { test: {}, testAtBudget: {} } } as never;
        writeFileSync(join(artifactDir, 'training.json'), JSON.stringify(training));
        return { artifactDir, training };
      };
      // Trained under the older cap of 30: the cap is no setting it must share; it resumes.
      const olderCap = trainArgs(spec('sasrec-base-s1'), DATA, cache).map((a) => (a === String(EPOCH_CAP) ? '30' : a));
      expect(olderCap).toContain('30');
      const capped = run('sasrec-base-s1', { run: 30, best: 29, stoppedEarly: false }, olderCap);
      expect(staleReason(spec('sasrec-base-s1'), capped, opts)?.kind).toBe('capped');
      expect(staleReason(spec('sasrec-base-s1'), run('sasrec-base-s1', { run: 30, best: 24, stoppedEarly: true }, olderCap), opts)).toBeUndefined();
      expect(staleReason(spec('sasrec-base-s1'), run('sasrec-base-s1', { run: EPOCH_CAP, best: EPOCH_CAP, stoppedEarly: false }), opts)).toBeUndefined();

      const pre = run('sasrec-chord-l2468-b0.125-pre-s1', { run: 10, best: 4, stoppedEarly: true });
      const best = join(cache, 'sasrec-base-s1', 'checkpoint', 'best.json');
      mkdirSync(join(cache, 'sasrec-base-s1', 'checkpoint'), { recursive: true });
      writeFileSync(best, '{}');
      const t = Date.now() / 1000;
      utimesSync(best, t - 100, t - 100); // the Base's best came before the pretrained run finished
      utimesSync(join(pre.artifactDir, 'training.json'), t - 50, t - 50);
      expect(staleReason(spec('sasrec-chord-l2468-b0.125-pre-s1'), pre, opts)).toBeUndefined();
      utimesSync(best, t, t); // the Base trained on and found a better epoch
      expect(staleReason(spec('sasrec-chord-l2468-b0.125-pre-s1'), pre, opts)?.kind).toBe('base-changed');
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it('retrains a run whose recorded settings are not the ones its plan now gives it', () => {
    const cache = '.cache/reproduce';
    const plan = planRuns([1]);
    const spec = (key: string) => plan.find((r) => r.key === key)!;
    const ml = datasetProfile('ml-100k');
    const toys = datasetProfile('amazon-toys');
    const TOYS = '../shared/datasets/amazon-toys/Toys_and_Games.txt';
    const run = (command: string) => {
      const training = { modelId: 'm', command, timing: { trainSeconds: 1, meanStepSeconds: 1 }, epochs: { run: 9, best: 3, stoppedEarly: true }, metrics: { test: {}, testAtBudget: {} } } as never;
      return { artifactDir: join(cache, 'm'), training };
    };
    const trained = (args: readonly string[]) => run(`/elsewhere/src/model/train-cli.ts ${args.join(' ')}`);
    const chord = spec('sasrec-chord-l2468-b0.125-s1');
    const mlChord = trainArgs(chord, DATA, cache, ml);
    expect(mlChord).toContain('--z-norm');
    const withoutZNorm = mlChord.filter((a) => a !== '--z-norm');
    // ML-100K's profile sets --z-norm for SASRec's hypernet runs: a run without it is another training.
    expect(staleReason(chord, trained(mlChord), { data: DATA, cacheDir: cache, profile: ml })).toBeUndefined();
    const why = staleReason(chord, trained(withoutZNorm), { data: DATA, cacheDir: cache, profile: ml });
    expect(why?.kind).toBe('settings-changed');
    expect(why?.reason).toMatch(/zNorm: unset → true/);
    // Any setting counts, not only the ones a profile has changed so far (here a contrast term).
    expect(staleReason(chord, trained([...mlChord, '--contrast', '1']), { data: DATA, cacheDir: cache, profile: ml })?.reason).toMatch(/contrast/);
    // Toys leaves --z-norm out.
    const toysChord = trainArgs(chord, TOYS, cache, toys);
    expect(staleReason(chord, trained(toysChord), { data: TOYS, cacheDir: cache, profile: toys })).toBeUndefined();
    expect(staleReason(chord, trained([...toysChord, '--z-norm']), { data: TOYS, cacheDir: cache, profile: toys })?.reason).toMatch(/zNorm: true → unset/);
    // Evaluation-only settings (T budgets), flag order and the output folder do not count.
    const reordered = [...trainArgs(chord, DATA, join('elsewhere', 'cache'), ml).slice(2), '--data', DATA];
    const budgets = reordered.indexOf('--budgets') + 1;
    expect(budgets).toBeGreaterThan(0);
    reordered[budgets] = '2';
    expect(staleReason(chord, trained(reordered), { data: DATA, cacheDir: cache, profile: ml })).toBeUndefined();
    // Nor how a Base's steps were computed: over two threads (train --workers) is the same training.
    const base = spec('sasrec-base-s1');
    expect(staleReason(base, trained([...trainArgs(base, DATA, cache, ml), '--workers', '2']), { data: DATA, cacheDir: cache, profile: ml })).toBeUndefined();
    // Caser keeps plain z on ML-100K.
    const caser = spec('caser-chord-l2468-b0.125-s1');
    expect(staleReason(caser, trained(trainArgs(caser, DATA, cache, ml)), { data: DATA, cacheDir: cache, profile: ml })).toBeUndefined();
    // A command train-cli no longer parses, or none, is no finished row.
    expect(staleReason(chord, trained([...mlChord, '--no-such-flag']), { data: DATA, cacheDir: cache, profile: ml })?.reason).toMatch(/no longer parses/);
    expect(staleReason(chord, run('x'), { data: DATA, cacheDir: cache, profile: ml })?.reason).toMatch(/no train-cli command recorded/);
  });
});

describe('dataset profiles', () => {
  it('names a dataset by its folder, for a folder or a file inside it', () => {
    const root = mkdtempSync(join(tmpdir(), 'datasets-'));
    mkdirSync(join(root, 'amazon-toys'));
    writeFileSync(join(root, 'amazon-toys', 'Toys_and_Games.txt'), '1 1 2 3\n');
    expect(datasetName(join(root, 'amazon-toys', 'Toys_and_Games.txt'))).toBe('amazon-toys');
    expect(datasetName(join(root, 'amazon-toys') + '/')).toBe('amazon-toys');
    expect(datasetName('missing/ml-100k')).toBe('ml-100k');
    rmSync(root, { recursive: true, force: true });
  });

  it('trains the Amazon sets without a k-core, SASRec on length buckets; Toys with the sampled loss, Sports with full softmax', () => {
    const toys = datasetProfile('amazon-toys');
    const plan = planRuns([1]).filter(toys.keep);
    expect(plan.every((r) => r.group === 'headline' || r.group === 'pretrained' || r.group === 'examples')).toBe(true);
    expect(plan.filter((r) => r.chordExamples).map((r) => r.key)).toEqual(['sasrec-quant-examples-s1', 'sasrec-quant-examples-pre-s1']);
    expect(plan.filter((r) => r.method === 'chord').map((r) => r.key).sort()).toEqual(['caser-chord-l2468-b0.125-pre-s1', 'caser-chord-l2468-b0.125-s1', 'sasrec-chord-l2468-b0.125-pre-s1', 'sasrec-chord-l2468-b0.125-s1']);
    for (const r of plan) {
      const parsed = parseTrainArgs(trainArgs(r, 'd/amazon-toys/Toys_and_Games.txt', '.cache/reproduce-amazon-toys', toys));
      expect(parsed.kCore).toBe(0);
      expect(parsed.run.loss).toMatchObject({ kind: 'sampled', negatives: 256 });
      expect(parsed.run.lengthBuckets).toBe(r.backbone === 'sasrec' ? 20 : undefined);
    }
    const sportsProfile = DATASET_PROFILES['amazon-sports']!;
    for (const r of planRuns([1]).filter(sportsProfile.keep)) {
      const parsed = parseTrainArgs(trainArgs(r, 'd/amazon-sports/Sports_and_Outdoors.txt', '.cache/reproduce-amazon-sports', sportsProfile));
      expect(parsed.kCore).toBe(0);
      expect(parsed.run.loss).toMatchObject({ kind: 'softmax' });
      expect(parsed.run.lengthBuckets).toBe(r.backbone === 'sasrec' ? 20 : undefined);
    }
    const sports = planRuns([1]).filter(sportsProfile.keep).map((r) => r.key).sort();
    expect(sports).toEqual(['caser-base-s1', 'sasrec-base-s1', 'sasrec-chord-l2468-b0.125-pre-s1', 'sasrec-quant-pre-s1']);
    // Unknown datasets keep train's defaults; ML-100K differs from them in its hypernet runs only (below).
    expect(datasetProfile('my-shop')).toBe(DEFAULT_PROFILE);
    for (const r of planRuns([1])) {
      const ml = trainArgs(r, 'd', 'c', datasetProfile('ml-100k'));
      expect(parseTrainArgs(ml).run.watchTest, r.key).toBe(true); // the paper's best test epoch, beside selection
      expect(ml.filter((a) => a !== '--z-norm' && a !== '--watch-test')).toEqual(trainArgs(r, 'd', 'c'));
    }
    const r = planRuns([1])[0]!;
    expect(trainArgs(r, 'd', 'c', DEFAULT_PROFILE)).toEqual(trainArgs(r, 'd', 'c'));
    expect(trainArgs(r, 'd', 'c')).not.toContain('--k-core');
  });

  it("says in the results what each backbone's runs add, once where every backbone adds the same", () => {
    const lines = (trainArgs: Record<string, string[]>, hypernetArgs: Record<string, string[]>) =>
      markdown('d', 'c', [], [], new Map(), [], [], { cacheDir: 'c', kCore: 10, trainArgs, hypernetArgs })
        .split('\n')
        .filter((l) => l.includes('also trains with'));
    expect(lines({ sasrec: ['--watch-test'], caser: ['--watch-test'] }, { sasrec: ['--z-norm'], caser: [] })).toEqual([
      'Every run also trains with `--watch-test` (plan.ts DATASET_PROFILES).',
      'Every sasrec run with a hypernet (+Custom, +Weighted, CHORD) also trains with `--z-norm`, chosen on validation (plan.ts DATASET_PROFILES).',
    ]);
    expect(lines({ sasrec: ['--loss', 'sampled', '--length-buckets', '20'], caser: ['--loss', 'sampled'] }, {})).toEqual([
      'Every sasrec run also trains with `--loss sampled --length-buckets 20` (plan.ts DATASET_PROFILES).',
      'Every caser run also trains with `--loss sampled` (plan.ts DATASET_PROFILES).',
    ]);
    expect(lines({ sasrec: [], caser: [] }, { sasrec: [], caser: [] })).toEqual([]);
  });

  it('standardizes z in the hypernet runs of SASRec on ML-100K and its item-filter variant, nowhere else', () => {
    for (const name of ['ml-100k', 'ml-100k-items21', 'amazon-toys', 'amazon-sports', 'my-shop']) {
      const profile = DATASET_PROFILES[name] ?? DEFAULT_PROFILE;
      for (const r of planRuns([1]).filter(profile.keep)) {
        const expected = name.startsWith('ml-100k') && r.backbone === 'sasrec' && ['custom', 'weighted', 'chord'].includes(r.method);
        expect(parseTrainArgs(trainArgs(r, `d/${name}`, 'c', profile)).run.zNorm === true, `${name} ${r.key}`).toBe(expected);
      }
    }
  });

  it("runs the paper's item filter as a second ML-100K profile, only on ML-100K's data", () => {
    const { name, profile } = chooseProfile('d/ml-100k', 'ml-100k-items21');
    expect(name).toBe('ml-100k-items21');
    expect(profile.kCore).toEqual({ user: 10, item: 21 });
    const plan = planRuns([1]).filter(profile.keep);
    expect(plan.map((r) => r.key).sort()).toEqual([
      'caser-base-s1', 'caser-chord-l2468-b0.125-pre-s1', 'caser-chord-l2468-b0.125-s1', 'caser-quant-pre-s1', 'caser-quant-s1',
      'sasrec-base-s1', 'sasrec-chord-l2468-b0.125-pre-s1', 'sasrec-chord-l2468-b0.125-s1', 'sasrec-quant-pre-s1', 'sasrec-quant-s1',
    ]);
    for (const r of plan) expect(parseTrainArgs(trainArgs(r, 'd/ml-100k', '.cache/reproduce-ml-100k-items21', profile)).kCore).toEqual({ user: 10, item: 21 });
    // Without --profile, the data's own profile; a variant on other data, or an unknown name, is refused.
    expect(chooseProfile('d/ml-100k', undefined)).toEqual({ name: 'ml-100k', profile: datasetProfile('ml-100k') });
    expect(() => chooseProfile('d/amazon-toys', 'ml-100k-items21')).toThrow(/is for ml-100k, not amazon-toys/);
    expect(() => chooseProfile('d/ml-100k', 'ml-1m')).toThrow(/no profile "ml-1m"/);
  });
});

describe('a profile that plans more seeds of another profile\'s runs', () => {
  it("plans ML-100K's frozen-pretrained SASRec strategy runs on seeds 1–8 in ML-100K's own cache and records, with ML-100K's settings", () => {
    const { name, profile } = chooseProfile('d/ml-100k', 'ml-100k-seeds');
    expect(name).toBe('ml-100k-seeds');
    expect(runsName(name, profile)).toBe('ml-100k');
    expect(runsName('ml-100k', datasetProfile('ml-100k'))).toBe('ml-100k');
    expect(reproduceCacheDir(runsName(name, profile))).toBe(join('.cache', 'reproduce'));
    const plan = planRuns(profile.seeds!).filter(profile.keep);
    expect(plan).toHaveLength(40);
    expect(new Set(plan.map((r) => r.seed))).toEqual(new Set([1, 2, 3, 4, 5, 6, 7, 8]));
    expect(plan.filter((r) => r.seed === 4).map((r) => r.key).sort()).toEqual([
      'sasrec-base-s4', 'sasrec-chord-l2468-b0.125-pre-s4', 'sasrec-custom-l2468-b0.125-pre-s4', 'sasrec-quant-examples-pre-s4', 'sasrec-quant-pre-s4',
    ]);
    // Seeds 1–3 are ML-100K's runs, trained with the very same arguments, so each is trained once.
    const own = datasetProfile('ml-100k');
    const ml100k = new Map(planRuns([1, 2, 3]).filter(own.keep).map((r) => [r.key, r]));
    for (const r of plan.filter((x) => x.seed <= 3)) {
      expect(trainArgs(r, 'd/ml-100k', '.cache/reproduce', profile), r.key).toEqual(trainArgs(ml100k.get(r.key)!, 'd/ml-100k', '.cache/reproduce', own));
    }
    expect(() => chooseProfile('d/amazon-toys', 'ml-100k-seeds')).toThrow(/is for ml-100k, not amazon-toys/);
    // Its own seeds are its default: the command it reports needs no --seeds.
    expect(reproduceCommand('d/ml-100k', name, '1,2,3,4,5,6,7,8', profile.seeds!.join(','))).toBe('npm run reproduce -- --data d/ml-100k --profile ml-100k-seeds');
    expect(reproduceCommand('d/ml-100k', name, '1,2,3', profile.seeds!.join(','))).toBe('npm run reproduce -- --data d/ml-100k --profile ml-100k-seeds --seeds 1,2,3');
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

  it('averages both epochs per configuration over the seeds that watched, in the results table', () => {
    const watched = (key: string, selected: number, best: number) => {
      const [, run] = finishedRun(key, selected);
      const history = [{ epoch: 1, watchedTest: ev(best) }, { epoch: 2, watchedTest: ev(selected) }];
      return [key, { ...run, training: { ...run.training, history, epochs: { run: 2, best: 2, stoppedEarly: true } } }] as const;
    };
    const finished = new Map([
      watched('sasrec-chord-l2468-b0.125-s1', 0.06, 0.07),
      watched('sasrec-chord-l2468-b0.125-s2', 0.05, 0.08),
      finishedRun('sasrec-quant-s1', 0.05), // trained without --watch-test: no row
    ]);
    expect(watchedTestRows(finished)).toEqual([{ config: 'sasrec-chord-l2468-b0.125', seeds: 2, selected_test_ndcg10: 0.055, best_test_ndcg10: 0.075 }]);
    expect(watchedTestTable(finished).join('\n')).toContain('| `sasrec-chord-l2468-b0.125` | 2 | 0.0550 | 0.0750 | +0.0200 |');
    expect(watchedTestTable(new Map([finishedRun('sasrec-quant-s1', 0.05)]))).toEqual([]);
  });
});

describe('reproduceCommand', () => {
  it('names the seeds when they are not the default, so a rerun plans the same runs', () => {
    expect(reproduceCommand('d/ml-100k', undefined, '1,2,3')).toBe('npm run reproduce -- --data d/ml-100k');
    expect(reproduceCommand('d/x.txt', undefined, '1,2')).toBe('npm run reproduce -- --data d/x.txt --seeds 1,2');
    expect(reproduceCommand('d/ml-100k', 'ml-100k-items21', '1')).toBe('npm run reproduce -- --data d/ml-100k --profile ml-100k-items21 --seeds 1');
  });
});
