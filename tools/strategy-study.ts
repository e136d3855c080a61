/**
 * Can the personal strategy earn its bits? The runs of that study, each a `train` run on the frozen
 * Base backbone of `reproduce` (same seed, same settings), changed in one mechanism at a time (two
 * where a run says so), and the report that compares them on the same test users:
 *
 *   npm run study -- --data ../shared/datasets/ml-100k [--only key,...] [--list] [--train] [--report]
 *   npm run study -- --data ../shared/datasets/amazon-toys/Toys_and_Games.txt [...]
 *
 * --train trains what is missing (Base runs into reproduce's cache, .cache/reproduce/ for ML-100K and
 * .cache/reproduce-<dataset>/ otherwise; study runs into .cache/study/<key>/ or
 * .cache/study-<dataset>/<key>/, each resumable); --report writes results/strategy-study.json and .md
 * (results/strategy-study-<dataset>.* for other datasets) from the finished runs. On a dataset with a
 * reproduce profile of its own (Amazon), Quant-pre and CHORD-pre are reproduce's own runs of that
 * profile, and the study adds only its mechanism runs, trained with the profile's settings. Per run: validation NDCG@10 (what selection saw), test NDCG@10 / HR@10 unmasked and
 * masked, and paired per-user differences with 95% intervals against Quant on the same frozen
 * backbone and against each user getting another user's strategy; for personalised runs the strategy
 * probe (tools/probe-strategy.ts). The paper's protocol, labelled as not a result: the Base quantized
 * to uniform 3 bits after training (no retraining), with and without 3-bit activations.
 * Evaluations are cached per artifact (.cache/study/<key>.eval.json, keyed by training.json's hash).
 * Every finished run the report reads is also kept, without weights, as a record in
 * results/runs/<dataset>/study/ (tools/study-records.ts): a checkout without the cache reports from the
 * records, and --train trains only what neither has, freezing reproduce's recorded Base where it kept one.
 */
import { createHash } from 'node:crypto';
import { UsageError, runCli } from '../src/cli/run-cli.ts';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { hitAtK } from '../src/core/metrics.ts';
import { pairedDifference, type PairedDifference } from '../src/core/paired.ts';
import { fakeQuantize } from '../src/core/quantize.ts';
import { loadDataset } from '../src/data/load.ts';
import { prepareDataset } from '../src/data/split.ts';
import type { SplitDataset } from '../src/data/types.ts';
import { testHistories } from '../src/model/chord/data.ts';
import { withDeploymentWorkers } from '../src/model/chord/deploy-workers.ts';
import { anotherUser, prepareDeployment, recordedDeployOptions, type Deployment } from '../src/model/chord/deployed.ts';
import type { UserRanks } from '../src/model/evaluate.ts';
import { readArtifact } from '../src/model/export.ts';
import {
  COMMON_ARGS,
  DATASET_PROFILES,
  datasetName,
  datasetProfile,
  findTraining,
  planRuns,
  reproduceCacheDir,
  runTrain,
  selectRuns,
  settingsChanges,
  trainArgs,
  type Training,
} from '../src/model/reproduce/plan.ts';
import { writeReport } from '../src/model/reproduce/partial.ts';
import { readRunRecords, recordsDir, restoreBaseWeights } from '../src/model/reproduce/records.ts';
import { pairOverSeeds, watchedTest, type WatchedTest } from '../src/model/reproduce/report.ts';
import { inputSpread, mean, ndcgs, probeStrategy, type InputSpread, type ProbeResult } from './probe-strategy.ts';
import { fromPlain, readStudyRecords, studyRecordsDir, toPlain, writeStudyRecord, type StudyRecord } from './study-records.ts';

export interface StudyRun {
  readonly key: string;
  /** The mechanism's short name, the key without backbone, `-pre` and seed (e.g. 'chord-gate'). */
  readonly name: string;
  /** Set when the run is reproduce's run of this key (trained by reproduce, read from its cache). */
  readonly reproduceKey?: string;
  readonly backbone: 'sasrec' | 'caser';
  readonly method: 'quant' | 'custom' | 'weighted' | 'chord';
  readonly seed: number;
  /** What this run changes against the default CHORD-pre (train-cli flags). */
  readonly extra: readonly string[];
  readonly mechanism: string;
  /** The mechanism (short name) this one adds a change to, where it is not plain CHORD-pre's first change. */
  readonly buildsOn?: string;
}

/** Where the study keeps its own runs of a dataset. */
export function studyCacheDir(dataset: string): string {
  return join('.cache', dataset === 'ml-100k' ? 'study' : `study-${dataset}`);
}

const DATASET_TITLES: Readonly<Record<string, string>> = { 'ml-100k': 'ML-100K', 'amazon-toys': 'Amazon Toys', 'amazon-sports': 'Amazon Sports' };

/** A study run's key: `<backbone>-<name>-pre-s<seed>`. */
function studyKey(backbone: StudyRun['backbone'], name: string, seed: number): string {
  return `${backbone}-${name}-pre-s${seed}`;
}

/** Quant trained on CHORD's examples: the control every other run is also set against. */
const CHORD_EXAMPLES_CONTROL = 'quant-chord-examples';

/** The study's mechanism runs on a dataset with a reproduce profile of its own (its CPU budget is finite). */
const PROFILE_MECHANISMS: ReadonlySet<string> = new Set(['chord-gate', CHORD_EXAMPLES_CONTROL, 'chord-znorm', 'chord-znorm-contrast1']);

/** The study's runs, in the order they are worth training. */
export function studyRuns(seeds: readonly number[] = [1], dataset = 'ml-100k'): StudyRun[] {
  const all = mechanismRuns(seeds);
  if (!(dataset in DATASET_PROFILES) || dataset === 'ml-100k') return all;
  const profile = datasetProfile(dataset);
  const plan = planRuns(seeds).filter(profile.keep);
  const out: StudyRun[] = [];
  for (const r of all) {
    const twin = plan.find((p) => p.pretrained && p.backbone === r.backbone && p.seed === r.seed && p.method === r.method && p.group === 'pretrained');
    if (!twin) continue;
    if (r.extra.length === 0) out.push({ ...r, reproduceKey: twin.key });
    else if (PROFILE_MECHANISMS.has(r.name)) out.push(r);
  }
  return out;
}

function mechanismRuns(seeds: readonly number[]): StudyRun[] {
  const out: StudyRun[] = [];
  for (const seed of seeds) {
    for (const backbone of ['caser', 'sasrec'] as const) {
      const add = (name: string, method: StudyRun['method'], extra: string[], mechanism: string, buildsOn?: string) =>
        out.push({ key: studyKey(backbone, name, seed), name, backbone, method, seed, extra, mechanism, ...(buildsOn ? { buildsOn } : {}) });
      add('quant', 'quant', [], 'uniform 3 bits, retrained on the frozen Base (the bar)');
      add(
        'chord',
        'chord',
        [],
        backbone === 'sasrec'
          ? 'CHORD, leak-free z (each window trains on its last 10 targets, z from the items before them)'
          : 'CHORD (Caser builds z from earlier items only: no leak to remove)',
      );
      add('chord-contrast1', 'chord', ['--contrast', '1'], 'CHORD + contrast 1: own strategy\'s loss below the rolled batch\'s by 0.02 nats');
      add('chord-frozen-shared', 'chord', ['--lr', '0', '--hyper-lr', '5e-3'], 'CHORD with the shared parameters frozen (lr 0), hypernet + GRU at 5e-3');
      add('chord-l2348', 'chord', ['--levels', '2,3,4,8'], 'CHORD with levels 2/3/4/8 (Γ tiers 2/3/8 bits: less noise in the middle tier)');
      add(
        'chord-gate',
        'chord',
        ['--levels', '0,3,4,5', '--beta', '0.375'],
        'CHORD gating: levels 0/3/4/5 with β 0.375, so Γ switches each user\'s 25% least sensitive channels off and gives 3 or 5 bits to the rest (3.00 bits before Λ)',
      );
      if (backbone === 'sasrec') {
        add(CHORD_EXAMPLES_CONTROL, 'quant', ['--chord-examples'], "uniform 3 bits trained on CHORD's examples (windows every 10 items, each training its last 10 targets): what the examples alone are worth");
      }
      add(
        'chord-znorm',
        'chord',
        ['--z-norm'],
        "CHORD with z standardized before the hypernet (the page GRU's state saturates near ±1, so users differ in a small part of z)",
      );
      add(
        'chord-znorm-contrast1',
        'chord',
        ['--z-norm', '--contrast', '1'],
        "CHORD with z standardized and contrast 1 (own strategy's loss below the rolled batch's by 0.02 nats): with z standardized the strategies differ between users, so the contrast term has something to push",
        'chord-znorm',
      );
      const longer = backbone === 'sasrec' ? 100 : 50;
      add(`chord-gru${longer}`, 'chord', ['--gru-window', String(longer)], `CHORD with a ${longer}-click GRU window (z sees more than the backbone's input)`);
    }
  }
  return out;
}

function baseKey(r: Pick<StudyRun, 'backbone' | 'seed'>): string {
  return `${r.backbone}-base-s${r.seed}`;
}

export function studyTrainArgs(r: StudyRun, data: string): string[] {
  const dataset = datasetName(data);
  const out = join(studyCacheDir(dataset), r.key);
  if (dataset !== 'ml-100k' && dataset in DATASET_PROFILES) {
    // reproduce's frozen-pretrained run of the same method in the profile, with the run's own flags after it.
    const twin = planRuns([r.seed]).find((p) => p.pretrained && p.backbone === r.backbone && p.method === r.method && p.group === 'pretrained')!;
    const args = trainArgs(twin, data, reproduceCacheDir(dataset), datasetProfile(dataset));
    args[args.indexOf('--out') + 1] = out;
    return [...args, ...r.extra];
  }
  const args = ['--data', data, '--backbone', r.backbone, '--method', r.method, '--seed', String(r.seed)];
  args.push('--out', out, '--resume', ...COMMON_ARGS);
  args.push('--init', 'pretrained', '--pretrained', join(reproduceCacheDir(dataset), baseKey(r)));
  if (r.backbone === 'caser') args.push('--caser-user', 'shared');
  if (r.method !== 'quant') args.push('--budgets', '3');
  // Later flags win in parseArgs, so a run's own settings replace the shared ones.
  return [...args, ...r.extra];
}

interface RunEval {
  readonly hash: string;
  readonly ranks: { own: UserRanks; otherUser?: UserRanks };
  readonly probe?: ProbeResult;
}


/**
 * A finished run's artifact, read and deployed on first use only: the evaluation (when not cached),
 * the input spread and the PTQ variants of one run share it.
 */
function lazyDeployment(artifactDir: string): () => Promise<Deployment> {
  let dep: Promise<Deployment> | undefined;
  return () => (dep ??= prepareDeployment(readArtifact(artifactDir)));
}

/** A finished run's cache key: the hash of its training.json, which changes whenever the run does. */
function trainingHash(artifactDir: string): string {
  return createHash('sha256').update(readFileSync(join(artifactDir, 'training.json'))).digest('hex');
}

/** What `file` caches, when it was computed for the run of `hash`. */
function readCached(file: string, hash: string): Record<string, any> | undefined {
  if (!existsSync(file)) return undefined;
  const c = JSON.parse(readFileSync(file, 'utf8'));
  return c.hash === hash ? c : undefined;
}

/** Ranks (own strategy, another user's) and the probe of a finished run, cached by training.json's hash. */
async function evaluateRun(
  cacheDir: string,
  key: string,
  artifactDir: string,
  deployment: () => Promise<Deployment>,
  training: Training,
  ds: SplitDataset,
  personalised: boolean,
  workers: number,
): Promise<RunEval> {
  const hash = trainingHash(artifactDir);
  const file = join(cacheDir, `${key}.eval.json`);
  const c = readCached(file, hash);
  if (c) return { hash, ranks: { own: fromPlain(c.ranks.own), ...(c.ranks.otherUser ? { otherUser: fromPlain(c.ranks.otherUser) } : {}) }, ...(c.probe ? { probe: c.probe } : {}) };
  const t0 = performance.now();
  const dep = await deployment();
  const test = testHistories(ds);
  const opts = recordedDeployOptions(training.options);
  const { own, otherUser, probe } = await withDeploymentWorkers(dep, workers, async (threads) => {
    const own = await threads.rank(test, opts);
    const otherUser = personalised ? await threads.rank(test, { ...opts, strategyUser: anotherUser(ds.numUsers) }) : undefined;
    // The probe's honest and another-user arms are these two rankings, where it ranks with the same options (no w3a3).
    const ranked = opts.activationBits === undefined ? { honest: own, ...(otherUser ? { otherUser } : {}) } : {};
    const probe = personalised ? await probeStrategy(dep, artifactDir, ds, opts.gruWindow, ranked, threads) : undefined;
    return { own, otherUser, probe };
  });
  const result = { hash, ranks: { own, ...(otherUser ? { otherUser } : {}) }, ...(probe ? { probe } : {}) };
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(file, JSON.stringify({ hash, ranks: { own: toPlain(own), ...(otherUser ? { otherUser: toPlain(otherUser) } : {}) }, ...(probe ? { probe } : {}) }));
  console.error(`evaluated ${key} in ${((performance.now() - t0) / 1000).toFixed(0)}s`);
  return result;
}

/** The paper's Quant as post-training quantization: the Base's shipped weights at uniform 3 bits, no retraining. */
export async function ptqRanks(
  cacheDir: string,
  baseKey: string,
  baseArtifactDir: string,
  baseDeployment: () => Promise<Deployment>,
  ds: SplitDataset,
  workers: number,
  activationBits?: number,
): Promise<UserRanks> {
  // Cached like a run's evaluation: by the Base's training.json.
  const hash = trainingHash(baseArtifactDir);
  const file = join(cacheDir, `${baseKey}.ptq-w3${activationBits ? `a${activationBits}` : ''}.json`);
  const c = readCached(file, hash);
  if (c) return fromPlain(c.ranks);
  const ranks = await ptqRanksOf(await baseDeployment(), ds, workers, activationBits);
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(file, JSON.stringify({ hash, ranks: toPlain(ranks) }));
  return ranks;
}

/** The Base's layer weights at uniform 3 bits (activations at `activationBits` too), every test user ranked. */
async function ptqRanksOf(dep: Deployment, ds: SplitDataset, workers: number, activationBits?: number): Promise<UserRanks> {
  const quantized = new Map([...dep.frozen].map(([name, w]) => {
    const spec = dep.artifact.manifest.layers.find((l) => l.name === name)!;
    return [name, fakeQuantize(w, spec.shape, 3)];
  }));
  const opts = { gruWindow: 20, ...(activationBits ? { activationBits } : {}) };
  return withDeploymentWorkers({ ...dep, frozen: quantized }, workers, (threads) => threads.rank(testHistories(ds), opts));
}

const hrs = (r: Int32Array) => Float64Array.from(r, (x) => hitAtK(x, 10));
const paired = (a: UserRanks, b: UserRanks) => ({
  unmasked: pairedDifference(ndcgs(a.unmasked), ndcgs(b.unmasked)),
  masked: pairedDifference(ndcgs(a.masked), ndcgs(b.masked)),
});
const metrics = (r: UserRanks) => ({
  ndcg10: mean(ndcgs(r.unmasked)),
  hr10: mean(hrs(r.unmasked)),
  ndcg10Masked: mean(ndcgs(r.masked)),
  hr10Masked: mean(hrs(r.masked)),
});

interface StudyRow {
  key: string;
  mechanism: string;
  validNdcg10: number | null;
  test: ReturnType<typeof metrics>;
  averageBits: number | null;
  testAt3Bits: number | null;
  epochs: Training['epochs'] | null;
  trainMinutes: number;
  commit: string | null;
  vsQuant: ReturnType<typeof paired> | null;
  /** Against Quant-pre trained on CHORD's examples (the quant-chord-examples run of the same backbone and seed), when it exists. */
  vsQuantChordExamples: ReturnType<typeof paired> | null;
  ownVsOtherUser: ReturnType<typeof paired> | null;
  probe: ProbeResult | null;
  /** Personalised runs: where the hypernet's input loses the users' differences (not cached: no ranking). */
  inputSpread: InputSpread | null;
  /** Runs trained with --watch-test: the epoch whose test NDCG@10 was best, against the validation-picked epoch's. */
  watchedTest: WatchedTest | null;
}

/** A mechanism on every seed it ran (at least two): its mean test NDCG@10 and its paired differences over those seeds. */
interface OverSeeds {
  /** `<backbone>-<name>`, e.g. sasrec-chord-znorm. */
  mechanism: string;
  seeds: number[];
  ndcg10: number;
  ndcg10Masked: number;
  /** Each null unless every one of the seeds has the other run. */
  vsQuant: ReturnType<typeof paired> | null;
  vsQuantChordExamples: ReturnType<typeof paired> | null;
  ownVsOtherUser: ReturnType<typeof paired> | null;
  /** Against the mechanism this one builds on (StudyRun.buildsOn), on the same seeds: what the added change is worth. */
  vsBuildsOn: { mechanism: string; difference: ReturnType<typeof paired> | null } | null;
}

/**
 * The study's runs grouped by mechanism over their seeds. Each user's difference is averaged over
 * the seeds first, then the mean and 95% interval go over users (reproduce's pairOverSeeds): the
 * seeds share the test users, so users stay the independent units.
 */
export function overSeeds(runs: readonly StudyRun[], own: ReadonlyMap<string, UserRanks>, otherUser: ReadonlyMap<string, UserRanks>): OverSeeds[] {
  const groups = new Map<string, StudyRun[]>();
  for (const r of runs) {
    const key = `${r.backbone}-${r.name}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: OverSeeds[] = [];
  for (const [mechanism, group] of groups) {
    if (group.length < 2) continue;
    const against = (other: (r: StudyRun) => UserRanks | undefined) => {
      const pairs = group.flatMap((r) => {
        const b = other(r);
        return b ? [{ seed: r.seed, a: own.get(r.key)!, b }] : [];
      });
      return pairs.length === group.length ? pairOverSeeds(pairs, mechanism).ndcg10 : null;
    };
    const controlOf = (name: string) => (r: StudyRun) => (r.name === name ? undefined : own.get(studyKey(r.backbone, name, r.seed)));
    const each = group.map((r) => metrics(own.get(r.key)!));
    out.push({
      mechanism,
      seeds: group.map((r) => r.seed),
      ndcg10: mean(each.map((m) => m.ndcg10)),
      ndcg10Masked: mean(each.map((m) => m.ndcg10Masked)),
      vsQuant: against(controlOf('quant')),
      vsQuantChordExamples: against(controlOf(CHORD_EXAMPLES_CONTROL)),
      ownVsOtherUser: against((r) => otherUser.get(r.key)),
      vsBuildsOn: group[0]!.buildsOn
        ? { mechanism: `${group[0]!.backbone}-${group[0]!.buildsOn}`, difference: against((r) => own.get(studyKey(r.backbone, r.buildsOn!, r.seed))) }
        : null,
    });
  }
  return out;
}

const f4 = (x: number | null | undefined) => (x === null || x === undefined ? '–' : x.toFixed(4));
const fd = (d: PairedDifference) => `${d.mean >= 0 ? '+' : ''}${d.mean.toFixed(4)} [${d.lo >= 0 ? '+' : ''}${d.lo.toFixed(4)}, ${d.hi >= 0 ? '+' : ''}${d.hi.toFixed(4)}]${d.lo > 0 || d.hi < 0 ? ' *' : ''}`;

/** A report section: its title, what it shows, and a table (header cells, then one row of cells per line). */
function tableSection(out: string[], title: string, intro: readonly string[], header: readonly string[], rows: readonly (readonly string[])[]): void {
  out.push('', `## ${title}`, '', ...intro, '');
  out.push(`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`);
  for (const row of rows) out.push(`| ${row.join(' | ')} |`);
}

function markdownReport(
  dataset: string,
  rows: StudyRow[],
  pooled: readonly OverSeeds[],
  ptq: Array<{ key: string; label: string; test: ReturnType<typeof metrics>; vsBase: ReturnType<typeof paired>; vsQuantPre: ReturnType<typeof paired> | null }>,
  command: string,
  recordsAt: string,
): string {
  const out: string[] = [];
  const title = DATASET_TITLES[dataset] ?? dataset;
  out.push(`# Can the personal strategy earn its bits? (${title})`, '');
  out.push(`Written by \`${command}\` from the finished runs in ${studyCacheDir(dataset)}/ and those kept as records in ${recordsAt}/ (each a \`train\` run on the same seed's frozen Base`);
  out.push('of `reproduce`; settings as reproduce plus the one change in "mechanism"). Test NDCG@10 / HR@10 over all items, unmasked');
  out.push('(the paper\'s protocol) and masked (the user\'s history excluded). Selection is on validation NDCG@10 only.');
  out.push('Paired columns: per-user NDCG@10 difference on the same test users with its 95% interval; `*` = the interval excludes 0.', '');
  out.push('| run | mechanism | valid NDCG@10 | test NDCG@10 / HR@10 | masked NDCG@10 | bits | at 3.00 bits (T) | − Quant-pre (unmasked) | − Quant-pre (masked) | own − another user\'s (unmasked) | (masked) | epochs | minutes | commit |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    out.push(
      `| ${r.key} | ${r.mechanism} | ${f4(r.validNdcg10)} | ${f4(r.test.ndcg10)} / ${f4(r.test.hr10)} | ${f4(r.test.ndcg10Masked)} | ${r.averageBits === null ? '3.00' : r.averageBits.toFixed(2)} | ${f4(r.testAt3Bits)} | ` +
        `${r.vsQuant ? fd(r.vsQuant.unmasked) : '–'} | ${r.vsQuant ? fd(r.vsQuant.masked) : '–'} | ${r.ownVsOtherUser ? fd(r.ownVsOtherUser.unmasked) : '–'} | ${r.ownVsOtherUser ? fd(r.ownVsOtherUser.masked) : '–'} | ` +
        `${r.epochs ? `${r.epochs.best}/${r.epochs.run}` : '–'} | ${r.trainMinutes.toFixed(0)} | ${r.commit ?? '–'} |`,
    );
  }
  if (pooled.length > 0) {
    const cell = (d: ReturnType<typeof paired> | null, protocol: 'unmasked' | 'masked') => (d ? fd(d[protocol]) : '–');
    tableSection(
      out,
      'Over seeds',
      [
        'Each mechanism run on two seeds or more: test NDCG@10, mean over its seeds, and its paired differences over those seeds (each',
        "user's difference averaged over the seeds first, then the 95% interval over users; the seeds share the test users). \"− what it",
        'builds on": against the mechanism it adds one change to, on the same seeds (– where that one is missing on a seed).',
      ],
      ['mechanism', 'seeds', 'NDCG@10', 'masked', '− Quant-pre (unmasked)', '(masked)', '− quant-chord-examples (unmasked)', '(masked)', 'own − another user\'s (unmasked)', '(masked)', '− what it builds on (unmasked)', '(masked)'],
      pooled.map((p) => [
        p.mechanism,
        p.seeds.join(', '),
        f4(p.ndcg10),
        f4(p.ndcg10Masked),
        cell(p.vsQuant, 'unmasked'),
        cell(p.vsQuant, 'masked'),
        cell(p.vsQuantChordExamples, 'unmasked'),
        cell(p.vsQuantChordExamples, 'masked'),
        cell(p.ownVsOtherUser, 'unmasked'),
        cell(p.ownVsOtherUser, 'masked'),
        p.vsBuildsOn ? `${p.vsBuildsOn.mechanism}: ${cell(p.vsBuildsOn.difference, 'unmasked')}` : '–',
        p.vsBuildsOn ? cell(p.vsBuildsOn.difference, 'masked') : '–',
      ]),
    );
  }
  const againstControl = rows.filter((r) => r.vsQuantChordExamples);
  if (againstControl.length > 0) {
    tableSection(
      out,
      "Against Quant-pre trained on CHORD's examples",
      [
        'Each run minus `quant-chord-examples` of its backbone and seed (uniform 3 bits, no hypernet, trained on the same examples',
        'as CHORD): what a run has beyond what those examples give a uniform model. Paired NDCG@10, 95% intervals.',
      ],
      ['run', '− quant-chord-examples (unmasked)', '(masked)'],
      againstControl.map((r) => [r.key, fd(r.vsQuantChordExamples!.unmasked), fd(r.vsQuantChordExamples!.masked)]),
    );
  }
  out.push('', '## Strategy probe', '');
  out.push('Each test user ranked with the backbone\'s input unchanged and the strategy computed from: the honest history; the history plus');
  out.push('their own test item (an oracle z); the history plus another user\'s test item (same extra click, wrong answer); another user\'s');
  out.push('history. If "own target" does not beat "other target", no strategy this model sends can move the target up.', '');
  out.push('| run | honest | own target | other target | other user | own target − honest | own target − other target | \\|Δ log2 rank\\| other user | channels changed by own item / by other user |');
  out.push('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const p = r.probe;
    if (!p) continue;
    out.push(
      `| ${r.key} | ${f4(p.ndcg10.honest.unmasked)} | ${f4(p.ndcg10.ownTarget.unmasked)} | ${f4(p.ndcg10.otherTarget.unmasked)} | ${f4(p.ndcg10.otherUser.unmasked)} | ` +
        `${fd(p.paired.ownTarget_vs_honest.unmasked)} | ${fd(p.paired.ownTarget_vs_otherTarget.unmasked)} | ${p.meanAbsLog2RankShift.honest_vs_otherUser.toFixed(3)} | ` +
        `${p.channelsChanged.ownTarget.toFixed(3)} / ${p.channelsChanged.otherUser.toFixed(3)} |`,
    );
  }
  const spreads = rows.filter((r) => r.inputSpread);
  if (spreads.length > 0) {
    tableSection(
      out,
      "Where the users' differences are lost",
      [
        `Over the first ${spreads[0]!.inputSpread!.users} test users' honest histories: the page GRU's state z (mean |z_i|, the share of components beyond ±0.95,`,
        'and ‖z − z̄‖ / ‖z̄‖), the share of hypernet trunk units whose pre-activation is beyond ±3 (tanh flat), and the channel-score spread',
        "ratio (per layer, a channel score's spread across users over the spread across channels: 0 = one strategy for all).",
      ],
      ['run', 'mean \\|z_i\\|', 'z beyond ±0.95', 'z relative spread', 'trunk saturated', 'channel-score spread ratio'],
      spreads.map((r) => {
        const x = r.inputSpread!;
        return [r.key, x.zMeanAbs.toFixed(3), x.zSaturated.toFixed(3), x.zRelativeSpread.toFixed(3), x.trunkSaturated.toFixed(3), x.scoreSpreadRatio.toFixed(4)];
      }),
    );
  }
  const watched = rows.filter((r) => r.watchedTest);
  if (watched.length > 0) {
    tableSection(
      out,
      "The paper's protocol: the best test epoch (not a result: it selects on test)",
      [
        'Runs trained with `--watch-test` ranked the test users after every epoch (the training-side scorer, on as many users as',
        'validation ranks). "best" is the epoch the paper\'s protocol would report; "selected" is the epoch validation picked.',
      ],
      ['run', 'best test epoch', 'its test NDCG@10', 'selected epoch', 'its test NDCG@10', 'best − selected'],
      watched.map((r) => {
        const w = r.watchedTest!;
        return [r.key, String(w.bestTestEpoch), f4(w.bestTestNdcg10), String(w.selectedEpoch), f4(w.selectedTestNdcg10), (w.bestTestNdcg10 - w.selectedTestNdcg10).toFixed(4)];
      }),
    );
  }
  out.push('', '## The paper\'s protocol (not a result: no retraining, so no selection either)', '');
  out.push('The Base\'s trained weights quantized to uniform 3 bits after training, scored as is.', '');
  out.push('| backbone / seed | variant | test NDCG@10 / HR@10 | masked NDCG@10 | − Base (unmasked) | − Quant-pre, retrained (unmasked) |');
  out.push('|---|---|---|---|---|---|');
  for (const p of ptq) {
    out.push(`| ${p.key} | ${p.label} | ${f4(p.test.ndcg10)} / ${f4(p.test.hr10)} | ${f4(p.test.ndcg10Masked)} | ${fd(p.vsBase.unmasked)} | ${p.vsQuantPre ? fd(p.vsQuantPre.unmasked) : '–'} |`);
  }
  return `${out.join('\n')}\n`;
}

/** A finished run of the cache as the study records it: its evaluation (cached by training.json's hash) and, personalised, its input spread. */
export async function recordRun(
  studyCache: string,
  key: string,
  run: { artifactDir: string; training: Training },
  ds: () => SplitDataset,
  personalised: boolean,
  workers: number,
  deployment = lazyDeployment(run.artifactDir),
): Promise<StudyRecord> {
  const ev = await evaluateRun(studyCache, key, run.artifactDir, deployment, run.training, ds(), personalised, workers);
  const spread = personalised ? inputSpread(await deployment(), ds(), run.training.options?.gruWindow ?? 20) : undefined;
  return {
    format: 'chord-study-record',
    version: 1,
    key,
    trainingHash: ev.hash,
    training: run.training,
    ranks: { own: toPlain(ev.ranks.own), ...(ev.ranks.otherUser ? { otherUser: toPlain(ev.ranks.otherUser) } : {}) },
    ...(ev.probe ? { probe: ev.probe } : {}),
    ...(spread ? { inputSpread: spread } : {}),
  };
}

/** A Base of the cache as the study records it: its ranks and those of its post-training 3-bit variants (each cached). */
export async function recordBase(studyCache: string, key: string, run: { artifactDir: string; training: Training }, ds: () => SplitDataset, workers: number): Promise<StudyRecord> {
  const deployment = lazyDeployment(run.artifactDir);
  const record = await recordRun(studyCache, key, run, ds, false, workers, deployment);
  const w3 = await ptqRanks(studyCache, key, run.artifactDir, deployment, ds(), workers);
  const w3a3 = await ptqRanks(studyCache, key, run.artifactDir, deployment, ds(), workers, 3);
  return { ...record, ptq: { w3: toPlain(w3), w3a3: toPlain(w3a3) } };
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      only: { type: 'string' },
      seeds: { type: 'string', default: '1' },
      list: { type: 'boolean', default: false },
      train: { type: 'boolean', default: false },
      report: { type: 'boolean', default: false },
      workers: { type: 'string', default: '1' },
      results: { type: 'string', default: 'results' },
    },
  });
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new UsageError(`--workers must be a positive integer, got ${values.workers}`);
  const withWorkers = (args: string[]) => (workers > 1 ? [...args, '--workers', String(workers)] : args);
  if (!values.data) throw new UsageError('--data <dataset dir or file> is required');
  const data = values.data;
  const dataset = datasetName(data);
  const profile = datasetProfile(dataset);
  const reproduceCache = reproduceCacheDir(dataset);
  const studyCache = studyCacheDir(dataset);
  const recordsAt = studyRecordsDir(values.results, dataset);
  const seeds = values.seeds.split(',').map(Number);
  const plan = planRuns(seeds);
  const baseSpec = (r: Pick<StudyRun, 'backbone' | 'seed'>) => selectRuns(plan, [baseKey(r)])[0]!;
  const allRuns = studyRuns(seeds, dataset);
  // What the study trains each run (and each Base) with now: a record stands for its run while it recorded these settings.
  const plannedArgs = new Map<string, string[]>();
  for (const r of allRuns) {
    plannedArgs.set(r.key, studyTrainArgs(r, data));
    plannedArgs.set(baseKey(r), trainArgs(baseSpec(r), data, reproduceCache, profile));
  }
  const recorded = new Map<string, StudyRecord>();
  for (const [key, record] of readStudyRecords(recordsAt)) {
    const planned = plannedArgs.get(key);
    if (!planned) continue;
    const changes = settingsChanges(planned, record.training);
    if (changes.length === 0) recorded.set(key, record);
    else console.error(`${key}: its record in ${recordsAt} trained with other settings than the study's now (${changes.join('; ')}), so it is not used`);
  }
  const runDir = (r: StudyRun) => (r.reproduceKey ? join(reproduceCache, r.reproduceKey) : join(studyCache, r.key));
  const only = values.only?.split(',');
  const runs = allRuns.filter((r) => !only || only.includes(r.key));
  if (values.list) {
    for (const r of runs) {
      const record = recorded.get(r.key);
      const status = findTraining(runDir(r)) ? 'done' : record ? `done (record, commit ${record.training.code?.commit?.slice(0, 7) ?? 'not recorded'})` : 'todo';
      console.log(`${status}  ${r.key}  ${r.mechanism}${r.reproduceKey ? ` (reproduce's ${r.reproduceKey})` : ''}`);
    }
    return;
  }
  if (values.train) {
    const baseRecordsAt = recordsDir(values.results, dataset);
    const baseRecords = readRunRecords(baseRecordsAt);
    for (const r of runs) {
      if (findTraining(runDir(r)) || recorded.has(r.key)) continue;
      const base = baseSpec(r);
      const baseArgs = trainArgs(base, data, reproduceCache, profile);
      if (!findTraining(join(reproduceCache, base.key))) {
        // reproduce's recorded Base, where it kept its weights, is the one every frozen-pretrained run of this seed freezes.
        const record = baseRecords.get(base.key);
        const restored = record && settingsChanges(baseArgs, record.training).length === 0 && restoreBaseWeights(baseRecordsAt, base.key, join(reproduceCache, base.key));
        if (!restored) await runTrain(withWorkers(baseArgs), base.key);
      }
      if (r.reproduceKey) {
        if (!findTraining(runDir(r))) console.error(`${r.key} is reproduce's ${r.reproduceKey}: train it with npm run reproduce -- --data ${data} --only ${r.reproduceKey}`);
        continue;
      }
      await runTrain(withWorkers(studyTrainArgs(r, data)), r.key);
    }
  }
  if (!values.report && values.train) return;
  let split: SplitDataset | undefined;
  const ds = () => (split ??= prepareDataset(loadDataset(data).interactions, { k: profile.kCore }).split);
  /** A run's record: made from its artifact where the cache has it (and kept), the committed one otherwise. */
  const recordOf = async (key: string, dir: string, make: (run: { artifactDir: string; training: Training }) => Promise<StudyRecord>) => {
    const run = findTraining(dir);
    if (!run) return recorded.get(key);
    const record = await make(run);
    if (writeStudyRecord(recordsAt, record)) console.error(`recorded ${key} in ${recordsAt}`);
    return record;
  };
  const rows: StudyRow[] = [];
  const rowRuns: StudyRun[] = [];
  const ranksOf = new Map<string, UserRanks>();
  const otherUserRanksOf = new Map<string, UserRanks>();
  for (const r of allRuns) {
    const personalised = r.method !== 'quant';
    const record = await recordOf(r.key, runDir(r), (run) => recordRun(studyCache, r.key, run, ds, personalised, workers));
    if (!record) continue;
    const own = fromPlain(record.ranks.own);
    const otherUser = record.ranks.otherUser ? fromPlain(record.ranks.otherUser) : undefined;
    ranksOf.set(r.key, own);
    if (otherUser) otherUserRanksOf.set(r.key, otherUser);
    const quant = ranksOf.get(studyKey(r.backbone, 'quant', r.seed));
    const t = record.training;
    rows.push({
      key: r.key,
      mechanism: r.mechanism,
      validNdcg10: t.metrics.valid?.unmasked.ndcg10 ?? null,
      test: metrics(own),
      averageBits: t.metrics.test.averageBits ?? null,
      testAt3Bits: t.metrics.testAtBudget['3']?.unmasked.ndcg10 ?? null,
      epochs: t.epochs ?? null,
      trainMinutes: t.timing.trainSeconds / 60,
      commit: t.code?.commit?.slice(0, 7) ?? null,
      vsQuant: personalised && quant ? paired(own, quant) : null,
      vsQuantChordExamples: null,
      ownVsOtherUser: otherUser ? paired(own, otherUser) : null,
      probe: record.probe ?? null,
      inputSpread: record.inputSpread ?? null,
      watchedTest: watchedTest(t),
    });
    rowRuns.push(r);
  }
  // Every other run of a backbone and seed against Quant on CHORD's examples: what is left once a uniform model has them.
  rows.forEach((row, i) => {
    const r = rowRuns[i]!;
    const control = ranksOf.get(studyKey(r.backbone, CHORD_EXAMPLES_CONTROL, r.seed));
    if (control && r.name !== CHORD_EXAMPLES_CONTROL) row.vsQuantChordExamples = paired(ranksOf.get(r.key)!, control);
  });
  const ptq: Parameters<typeof markdownReport>[3] = [];
  for (const seed of seeds) {
    for (const backbone of ['caser', 'sasrec'] as const) {
      const key = baseKey({ backbone, seed });
      const record = await recordOf(key, join(reproduceCache, key), (run) => recordBase(studyCache, key, run, ds, workers));
      if (!record?.ptq) continue;
      const baseRanks = fromPlain(record.ranks.own);
      const quantPre = ranksOf.get(studyKey(backbone, 'quant', seed));
      for (const [label, r] of [['PTQ w3', fromPlain(record.ptq.w3)], ['PTQ w3a3', fromPlain(record.ptq.w3a3)]] as const) {
        ptq.push({ key: `${backbone} s${seed}`, label, test: metrics(r), vsBase: paired(r, baseRanks), vsQuantPre: quantPre ? paired(r, quantPre) : null });
      }
      ptq.push({ key: `${backbone} s${seed}`, label: 'Base fp32', test: metrics(baseRanks), vsBase: paired(baseRanks, baseRanks), vsQuantPre: quantPre ? paired(baseRanks, quantPre) : null });
    }
  }
  const command = `npm run study -- --data ${data} --seeds ${values.seeds} --report`;
  mkdirSync(values.results, { recursive: true });
  const name = dataset === 'ml-100k' ? 'strategy-study' : `strategy-study-${dataset}`;
  const pooled = overSeeds(rowRuns, ranksOf, otherUserRanksOf);
  // A checkout without the runs of the committed report writes beside it, never over it (reproduce/partial.ts).
  const written = writeReport(values.results, name, new Set(rows.map((r) => r.key)), (j) => (j as { rows: { key: string }[] }).rows.map((r) => r.key), {
    json: { dataset, command, rows, overSeeds: pooled, ptq },
    markdown: markdownReport(dataset, rows, pooled, ptq, command, recordsAt),
    indent: 1,
  });
  console.log(`${join(values.results, written)}.md: ${rows.length} runs`);
}

const USAGE = `usage: npm run study -- --data <dataset dir or file> [--seeds 1] [--only key,...] [--list] [--train] [--report] [--workers 1] [--results results]

--list shows which study runs are done (in the cache, or kept as a record); --train trains the missing ones
(reproduce's Base first, or its recorded weights) into .cache/study/ (.cache/study-<dataset>/ for datasets other
than ML-100K); --report writes results/strategy-study.json and .md (strategy-study-<dataset>.*) from the finished
runs and the records, or <name>.partial.* beside a committed report that has runs this checkout lacks, and records
every run it read from the cache in <results>/runs/<dataset>/study/. --workers N gives each training N threads
(train --workers) and ranks the report's evaluations on N threads.`;

if (import.meta.url === `file://${process.argv[1]}`) void runCli({ program: 'study', usage: USAGE, main });
