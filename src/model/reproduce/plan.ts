/**
 * What `npm run reproduce` trains: the planned runs, train-cli's arguments for each, and which of
 * them have a finished (and still current) training.json in the cache.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { BACKBONE_KINDS, type BackboneKind } from '../../core/backbones.ts';
import { isHypernetMethod, METHODS, type Method } from '../../core/methods.ts';
import { DEFAULT_LEVELS } from '../../core/strategy.ts';
import { formatCoreThreshold, type CoreThreshold } from '../../data/kcore.ts';
import type { CodeRevision } from '../provenance.ts';
import { parseTrainArgs, type TrainCliArgs } from '../train-cli.ts';
import { VALIDATED_TRAINING } from '../training-defaults.ts';

export type Group = 'headline' | 'levels' | 'beta' | 'w3a3' | 'pretrained' | 'examples';

export interface RunSpec {
  key: string;
  group: Group;
  backbone: BackboneKind;
  method: Method;
  levels: string;
  beta: number;
  seed: number;
  w3a3: boolean;
  pretrained: boolean;
  /**
   * Quant trained on CHORD's examples (train-cli --chord-examples; SASRec only): the control that
   * says how much of a personalised run's lead over Quant the examples alone give a uniform model.
   */
  chordExamples: boolean;
  budgets: number[];
}

// Settings shared by every run (chosen on validation during development; see training.json of each run).

/**
 * Every run's epoch cap: high enough that runs end by early stopping (patience), not by the cap. It
 * was 30, which stopped the SASRec Base runs while still improving; a run that the older cap
 * stopped resumes from its checkpoint to what an uncapped run trains (see staleReason).
 */
export const EPOCH_CAP = VALIDATED_TRAINING.epochs;
/** train's defaults, passed explicitly so that results record them. */
export const COMMON_ARGS = [
  '--epochs',
  String(EPOCH_CAP),
  '--patience',
  String(VALIDATED_TRAINING.patience),
  '--lr',
  String(VALIDATED_TRAINING.lr),
  '--dropout',
  String(VALIDATED_TRAINING.dropout),
  '--no-progress',
];
/** train-cli's --levels for every run but the level-set ablation: core's default level table. */
export const DEFAULT_LEVELS_ARG = DEFAULT_LEVELS.join(',');
export const DEFAULT_BETA = 0.125;
const DEPLOY_BUDGETS = [2.5, 2];
/**
 * Quant's uniform width: every CHORD-family run is also evaluated through T at this budget, so it
 * is compared with Quant at equal average bits (its strategies land near, not on, 3 bits).
 */
export const QUANT_BUDGET = 3;
/** train-cli's --k-core default, which every run uses (the protocol's 10-core). */
export const K_CORE = 10;

/**
 * What reproduce does per dataset, the dataset named by its folder (datasetName): the k-core of
 * its protocol, what every run adds to COMMON_ARGS (settings chosen on that dataset's validation,
 * records that change nothing trained), and which planned runs it trains (the CPU budget is finite).
 */
export interface DatasetProfile {
  readonly kCore: CoreThreshold;
  /**
   * Set for a second protocol on another profile's data (reproduce --profile <name>): that
   * profile's name, whose data it must be given and whose published numbers it is set against.
   */
  readonly variantOf?: string;
  readonly extraArgs: (backbone: BackboneKind) => readonly string[];
  /**
   * What every run with a hypernet (CHORD, +Custom, +Weighted) adds after extraArgs, chosen on that
   * dataset's validation; none where the profile leaves it out.
   */
  readonly hypernetArgs?: (backbone: BackboneKind) => readonly string[];
  readonly keep: (r: RunSpec) => boolean;
  /** The seeds planned where reproduce is given no --seeds; default DEFAULT_SEEDS. */
  readonly seeds?: readonly number[];
  /**
   * The profile whose cache and records hold this one's runs: a profile that plans more seeds of
   * some of that one's runs, with its very settings, trains and reads them there, so a run both
   * plan is trained once and counts in both reports.
   */
  readonly runsOf?: string;
}

/** The seeds a profile plans by default: three, the minimum for a headline row. */
export const DEFAULT_SEEDS: readonly number[] = [1, 2, 3];

/** Any dataset without a profile of its own: 10-core, full softmax, every run, train's defaults. */
export const DEFAULT_PROFILE: DatasetProfile = { kCore: K_CORE, extraArgs: () => [], keep: () => true };

/**
 * ML-100K's runs also rank the test users after every epoch (`--watch-test`, which trains and selects
 * nothing differently): the paper's protocol reports the best test epoch, and the results set it
 * beside the validation-picked one. Its 943 test users cost about a second an epoch.
 */
const ML100K_EXTRA_ARGS = (): readonly string[] => ['--watch-test'];

/**
 * ML-100K's hypernet runs: SASRec standardizes z before the hypernet (`--z-norm`). On
 * frozen-pretrained SASRec validation picked it over plain CHORD on both seeds that ran both and
 * over Quant-pre on each of five (study, results/strategy-study.md). Caser keeps plain z: on its
 * one seed validation tied (FINDINGS.md). The ablations (+Custom, +Weighted) take it too, so the
 * ladder up to CHORD differs in one part at a time. The contrast term on top (`--contrast 1`) did
 * not win validation: z-norm alone validated higher on three seeds of five.
 */
const ML100K_HYPERNET_ARGS = (backbone: BackboneKind): readonly string[] => (backbone === 'sasrec' ? ['--z-norm'] : []);
const ML100K_PROFILE: DatasetProfile = { ...DEFAULT_PROFILE, extraArgs: ML100K_EXTRA_ARGS, hypernetArgs: ML100K_HYPERNET_ARGS };

/**
 * The Amazon review sets are 5-core already (k-core 0 keeps them as published). Their catalogues
 * make the full softmax a large part of a step, and their median history of 4 makes a 50-item
 * window mostly padding: SASRec trains on length-bucketed batches. The loss is each set's own
 * choice on validation and budget (results/FINDINGS.md, "Shop scale"). Toys: the sampled softmax,
 * whose run fits the 30-minute budget of a run on this 2-core machine (26 min of a core) and clears
 * the published SASRec; full softmax scored higher on validation and test but took 48. Sports: full
 * softmax, which passed the sampled loss's best validation NDCG@10 within 6 epochs, where the
 * sampled loss (256 uniform negatives of 18,357 items) stopped at less than half the published
 * SASRec on test.
 */
export const TOYS_LOSS_ARGS = ['--loss', 'sampled', '--negatives', '256'] as const;
export const SPORTS_LOSS_ARGS = ['--loss', 'softmax'] as const;
const amazonArgs =
  (loss: readonly string[]) =>
  (backbone: BackboneKind): readonly string[] =>
    backbone === 'sasrec' ? [...loss, '--length-buckets', '20'] : loss;

export const DATASET_PROFILES: Readonly<Record<string, DatasetProfile>> = {
  'ml-100k': ML100K_PROFILE,
  // The CHORD paper's ML-100K: its Table 1 counts (943 users / 928 items / 94,672) fit "items with 21
  // ratings or more" (943 / 927 / 94,728 here), not the 10-core of its text (943 / 1,152 / 97,953).
  // Base, Quant and CHORD, random-frozen as in the paper and on the frozen Base.
  'ml-100k-items21': {
    kCore: { user: K_CORE, item: 21 },
    variantOf: 'ml-100k',
    // ML-100K's training, so the two protocols differ in their data only.
    extraArgs: ML100K_EXTRA_ARGS,
    hypernetArgs: ML100K_HYPERNET_ARGS,
    keep: (r) => (r.group === 'headline' && (r.method === 'base' || r.method === 'quant' || r.method === 'chord')) || (r.group === 'pretrained' && (r.method === 'quant' || r.method === 'chord')),
  },
  // ML-100K's lead question on more seeds: whether SASRec's personal strategies beat uniform 3 bits and
  // their examples control on the frozen Base. Its paired differences (+0.002 to +0.003 over three
  // seeds) need six to twelve seeds to resolve if they hold (ml-100k.md, "How many seeds would resolve
  // it?"). Seeds 1–3 are ml-100k's own runs.
  'ml-100k-seeds': {
    ...ML100K_PROFILE,
    variantOf: 'ml-100k',
    runsOf: 'ml-100k',
    seeds: [1, 2, 3, 4, 5, 6, 7, 8],
    keep: (r) =>
      r.backbone === 'sasrec' &&
      ((r.group === 'headline' && r.method === 'base') ||
        (r.group === 'pretrained' && (r.method === 'quant' || r.method === 'custom' || r.method === 'chord')) ||
        (r.group === 'examples' && r.pretrained)),
  },
  // Every headline method on both backbones, random-frozen and frozen-pretrained, and SASRec Quant on
  // CHORD's examples in both modes (the frozen-pretrained one is the strategy study's control too); no ablations.
  'amazon-toys': { kCore: 0, extraArgs: amazonArgs(TOYS_LOSS_ARGS), keep: (r) => r.group === 'headline' || r.group === 'pretrained' || r.group === 'examples' },
  // Base for both backbones, and SASRec's Quant and CHORD on the frozen Base.
  'amazon-sports': {
    kCore: 0,
    extraArgs: amazonArgs(SPORTS_LOSS_ARGS),
    keep: (r) => r.method === 'base' || (r.backbone === 'sasrec' && r.pretrained && r.group === 'pretrained' && (r.method === 'quant' || r.method === 'chord')),
  },
};

/**
 * A dataset's name from reproduce's --data: a folder's own name, a file's folder name
 * (../shared/datasets/amazon-toys/Toys_and_Games.txt is amazon-toys).
 */
export function datasetName(data: string): string {
  const path = resolve(data.replace(/[\\/]+$/, ''));
  return existsSync(path) && statSync(path).isFile() ? basename(dirname(path)) : basename(path).replace(/\.(inter|data|txt)$/, '');
}

/** The name of the cache and records a profile's runs live in (DatasetProfile.runsOf): its own unless it shares another's. */
export function runsName(name: string, profile: DatasetProfile): string {
  return profile.runsOf ?? name;
}

/** Where reproduce keeps a dataset's runs: .cache/reproduce for ML-100K, .cache/reproduce-<dataset> otherwise. */
export function reproduceCacheDir(dataset: string): string {
  return join('.cache', dataset === 'ml-100k' ? 'reproduce' : `reproduce-${dataset}`);
}

export function datasetProfile(name: string): DatasetProfile {
  return DATASET_PROFILES[name] ?? DEFAULT_PROFILE;
}

/** train-cli's --k-core for a profile: none where it is train-cli's default, the protocol's 10-core. */
export function kCoreArgs(profile: DatasetProfile): string[] {
  const k = formatCoreThreshold(profile.kCore);
  return k === String(K_CORE) ? [] : ['--k-core', k];
}

/**
 * The profile reproduce runs: `--profile <name>` where given (a variant must be given its own
 * data), otherwise the data's own. Its name names the cache and the results files.
 */
export function chooseProfile(data: string, name: string | undefined): { name: string; profile: DatasetProfile } {
  const dataset = datasetName(data);
  if (name === undefined) return { name: dataset, profile: datasetProfile(dataset) };
  const profile = DATASET_PROFILES[name];
  if (!profile) throw new RangeError(`no profile "${name}" (profiles: ${Object.keys(DATASET_PROFILES).join(', ')})`);
  if ((profile.variantOf ?? name) !== dataset) throw new RangeError(`profile "${name}" is for ${profile.variantOf ?? name}, not ${dataset}`);
  return { name, profile };
}

/** The methods with a per-user strategy from a hypernet (CHORD and its ablations), not Base or Quant. */
export function personalised(method: Method): boolean {
  return isHypernetMethod(method);
}


export function runKey(r: Omit<RunSpec, 'key' | 'budgets'>): string {
  const parts: string[] = [r.backbone, r.method];
  if (r.method !== 'base' && r.method !== 'quant') parts.push(`l${r.levels.replace(/,/g, '')}`, `b${r.beta}`);
  if (r.chordExamples) parts.push('examples');
  if (r.w3a3) parts.push('w3a3');
  if (r.pretrained) parts.push('pre');
  parts.push(`s${r.seed}`);
  return parts.join('-');
}

/** Every run of the full reproduction, in the order they are worth running. */
export function planRuns(seeds: readonly number[]): RunSpec[] {
  const out: RunSpec[] = [];
  // T budgets are evaluated after training and are no part of a checkpoint's settings, so they can
  // change without keeping a run from resuming.
  const budgets = (r: Omit<RunSpec, 'key' | 'budgets'>): number[] =>
    !personalised(r.method) ? [] : r.group === 'headline' && r.method === 'chord' ? [QUANT_BUDGET, ...DEPLOY_BUDGETS] : [QUANT_BUDGET];
  const add = (r: Omit<RunSpec, 'key' | 'budgets'>) => out.push({ ...r, budgets: budgets(r), key: runKey(r) });
  const base = { levels: DEFAULT_LEVELS_ARG, beta: DEFAULT_BETA, w3a3: false, pretrained: false, chordExamples: false };
  // Headline rows first, one seed at a time, so a partial run already covers every method.
  for (const seed of seeds) {
    for (const backbone of BACKBONE_KINDS) {
      for (const method of METHODS) add({ ...base, group: 'headline', backbone, method, seed });
    }
  }
  // Frozen-pretrained CHORD on every seed too: the issue asks for both modes, the better one as default,
  // and that choice needs more than one seed (each run starts from the same seed's Base checkpoint).
  for (const seed of seeds) {
    for (const backbone of BACKBONE_KINDS) add({ ...base, group: 'pretrained', backbone, method: 'chord', pretrained: true, seed });
  }
  // Quant and the ablations on the same frozen-pretrained backbone: CHORD's own baselines in the
  // default mode. Without them frozen-pretrained CHORD is compared with a random-frozen Quant, and
  // part of its lead could be the trained backbone rather than the personalised strategies.
  for (const seed of seeds) {
    for (const backbone of BACKBONE_KINDS) {
      for (const method of ['quant', 'custom', 'weighted'] as const) add({ ...base, group: 'pretrained', backbone, method, pretrained: true, seed });
    }
  }
  // Each windows-trained SASRec run (CHORD and its ablations) trains on other examples than Quant: every
  // 10 items a window whose last 10 targets it trains. Quant on those very examples, in both modes,
  // separates what the examples give a uniform model from what the strategies add. Caser's Quant
  // already trains on the windows its CHORD does.
  for (const seed of seeds) {
    for (const pretrained of [false, true]) add({ ...base, group: 'examples', backbone: 'sasrec', method: 'quant', chordExamples: true, pretrained, seed });
  }
  const s = seeds[0]!;
  for (const backbone of BACKBONE_KINDS) {
    add({ ...base, group: 'levels', backbone, method: 'chord', levels: '2,5,6,7', seed: s });
    for (const beta of [0.0625, 0.1875, 0.25]) add({ ...base, group: 'beta', backbone, method: 'chord', beta, seed: s });
    for (const method of ['quant', 'chord'] as const) add({ ...base, group: 'w3a3', backbone, method, w3a3: true, seed: s });
  }
  return out;
}

/**
 * The runs `--only` keeps: those matching every token, a token being a backbone, method, ablation group,
 * s<seed> or a whole run key. A key lets two trainers share a group without ever picking the same run.
 */
export function selectRuns(plan: readonly RunSpec[], tokens: readonly string[]): RunSpec[] {
  const matches = (r: RunSpec, t: string) => t === r.key || t === r.backbone || t === r.method || t === r.group || t === `s${r.seed}`;
  return plan.filter((r) => tokens.every((t) => matches(r, t)));
}

/** The key of the Base run of r's backbone and seed: the Base a frozen-pretrained run freezes. */
export function baseRunKey(r: RunSpec): string {
  return runKey({ ...r, method: 'base', group: 'headline', pretrained: false, w3a3: false, chordExamples: false, levels: DEFAULT_LEVELS_ARG, beta: DEFAULT_BETA });
}

/**
 * train-cli's arguments for one run. The mode is always explicit: train-cli's default is
 * frozen-pretrained (with a Base trained into the run's own directory), while the random-frozen
 * runs here must stay what they were and the pretrained ones start from the same seed's Base run.
 */
export function trainArgs(r: RunSpec, data: string, cacheDir: string, profile: DatasetProfile = DEFAULT_PROFILE): string[] {
  const args = ['--data', data, '--backbone', r.backbone, '--method', r.method, '--seed', String(r.seed)];
  args.push('--levels', r.levels, '--beta', String(r.beta), '--out', join(cacheDir, r.key), '--resume', ...COMMON_ARGS);
  args.push(...kCoreArgs(profile));
  args.push(...profile.extraArgs(r.backbone));
  if (personalised(r.method)) args.push(...(profile.hypernetArgs?.(r.backbone) ?? []));
  if (r.w3a3) args.push('--w3a3');
  if (r.chordExamples) args.push('--chord-examples');
  if (r.pretrained) args.push('--init', 'pretrained', '--pretrained', join(cacheDir, baseRunKey(r)));
  else if (r.method !== 'base') args.push('--init', 'random');
  if (r.backbone === 'caser') args.push('--caser-user', 'shared');
  if (r.budgets.length > 0) args.push('--budgets', r.budgets.join(','));
  return args;
}

/** The metrics a run's training.json records (evaluate.ts's Metrics, as read back from disk). */
export interface RecordedMetrics {
  ndcg5: number;
  ndcg10: number;
  hr5: number;
  hr10: number;
}
/** A deployed evaluation as training.json records it (chord/deployed.ts's DeployedEval, read back). */
export interface RecordedEval {
  unmasked: RecordedMetrics;
  masked: RecordedMetrics;
  averageBits?: number;
  /** Recorded by train-cli since the history-share diagnostic exists; older runs lack it. */
  historyShare10?: number;
}
export interface Training {
  modelId: string;
  command: string;
  /**
   * Seconds spent training, over every session of a resumed run (steps + validations), and the mean
   * step in wall and CPU seconds (CPU null where it was not measured), and the run's `train --workers`
   * (absent for one thread).
   */
  timing: { trainSeconds: number; meanStepSeconds: number; meanStepCpuSeconds?: number | null; workers?: number };
  epochs?: { run: number; best: number; stoppedEarly: boolean };
  /** The git commit that finished the run; absent in runs older than the record. */
  code?: CodeRevision | null;
  /** What re-evaluating the artifact needs (every real training.json has them). */
  options?: { gruWindow: number; activationBits: number | null; caserUser?: string; zNorm?: boolean };
  data?: { users: number; items: number };
  metrics: { valid?: RecordedEval; test: RecordedEval; testAtBudget: Record<string, RecordedEval>; testOthersStrategy?: RecordedEval };
  /** Per epoch; watchedTest only in runs trained with --watch-test (the paper's protocol). */
  history?: Array<{ epoch: number; valid?: RecordedEval; watchedTest?: RecordedEval }>;
}
/** A diagnostic's sidecar as diagnostics.ts writes it: what it is, and the artifact it was computed from. */
export interface RecordedSidecar {
  format: string;
  version: number;
  artifactHash: string;
}

/**
 * A finished run: artifactDir is where its training.json lies in the cache; a run known from its
 * committed record (records.ts) has none, and `recorded` instead: the hash of the artifact it
 * trained and its diagnostics' sidecars by file name.
 */
export interface FinishedRun {
  spec: RunSpec;
  training: Training;
  artifactDir?: string;
  recorded?: { artifactHash: string; sidecars: Readonly<Record<string, RecordedSidecar>> };
}

/**
 * The run's artifact and training.json. train-cli writes training.json once before its final
 * evaluation and again, with the metrics, after it: only the second marks a finished run.
 */
export function findTraining(dir: string): { artifactDir: string; training: Training } | undefined {
  if (!existsSync(dir)) return undefined;
  for (const entry of readdirSync(dir)) {
    const p = join(dir, entry, 'training.json');
    if (!existsSync(p)) continue;
    const training = JSON.parse(readFileSync(p, 'utf8')) as Training;
    if (!training.metrics?.test) continue;
    // Caser runs from before the shared user row (per-user table) are another model: not mixed in.
    if (training.data && training.options && basename(dir).startsWith('caser-') && training.options.caserUser !== 'shared') {
      throw new Error(`${dir} is a Caser run with a per-user embedding table (trained before --caser-user shared was the default): move it out of the cache to retrain it`);
    }
    return { artifactDir: join(dir, entry), training };
  }
  return undefined;
}

/**
 * Why a run that has test metrics is still not a finished row of this plan (undefined: it is): it
 * trained with other settings than the plan now gives it (its profile changed since), an older,
 * lower epoch cap stopped it before early stopping did (it resumes), or it is a frozen-pretrained
 * run whose Base has trained on (a better best.json) since it started from it.
 */
export interface StaleRun {
  /**
   * 'capped': resumes from its checkpoint; 'base-changed' and 'settings-changed' (the plan gives
   * it other settings than it trained with, e.g. its profile changed since): set aside and trained again.
   */
  readonly kind: 'capped' | 'base-changed' | 'settings-changed';
  readonly reason: string;
}

export function staleReason(
  spec: RunSpec,
  run: { artifactDir: string; training: Training },
  opts: { data: string; cacheDir: string; profile?: DatasetProfile },
): StaleRun | undefined {
  const { data, cacheDir, profile = DEFAULT_PROFILE } = opts;
  const changed = settingsChanges(trainArgs(spec, data, cacheDir, profile), run.training);
  if (changed.length > 0) {
    return { kind: 'settings-changed', reason: `trained with other settings than its plan's (${changed.join('; ')}): it is trained again` };
  }
  const e = run.training.epochs;
  if (e && !e.stoppedEarly && e.run < EPOCH_CAP) {
    return { kind: 'capped', reason: `stopped by an older epoch cap after ${e.run} epochs, before early stopping: it resumes` };
  }
  if (spec.pretrained) {
    const baseKey = baseRunKey(spec);
    const best = join(cacheDir, baseKey, 'checkpoint', 'best.json');
    if (existsSync(best) && statSync(best).mtimeMs > statSync(join(run.artifactDir, 'training.json')).mtimeMs) {
      return { kind: 'base-changed', reason: `its Base run ${baseKey} has a newer best checkpoint: it is trained again from it` };
    }
  }
  return undefined;
}

/**
 * A train-cli invocation's settings, flat: what makes two invocations the same training. They are
 * compared as train-cli parses them, so flag order and defaults spelled out or left implicit do not
 * matter. The output folder, --resume, --no-progress, --watch-test (a record only: a test proves it
 * trains and selects nothing differently), --workers (how the steps are computed, not what) and the
 * model id (derived from the settings) do not count; the Base counts by its folder's name, the data
 * by its dataset's.
 */
export function settingsFields(args: TrainCliArgs): Record<string, unknown> {
  const { out: _out, resume: _resume, command: _command, modelId: _modelId, watchTest: _watchTest, workers: _workers, pretrainedDir, ...run } = args.run;
  const fields: Record<string, unknown> = {
    data: datasetName(args.data),
    kCore: args.kCore,
    backend: args.backend,
    base: pretrainedDir === undefined ? null : basename(pretrainedDir.replace(/[\\/]+$/, '')),
  };
  for (const [k, v] of Object.entries(run)) if (v !== undefined) fields[k] = v;
  return fields;
}

/** settingsFields as canonical JSON: equal strings, the same training. */
export function trainingSettings(args: TrainCliArgs): string {
  return canonicalJson(settingsFields(args));
}

/** JSON with every object's keys sorted, so equal values give equal strings. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(v ?? null, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : value,
  );
}

/** train-cli's arguments as training.json records them (the words after the script's path); undefined without the script. */
export function recordedArgs(training: Pick<Training, 'command'>): string[] | undefined {
  const words = training.command.trim().split(/\s+/);
  const script = words.findIndex((w) => w.endsWith('train-cli.ts'));
  return script < 0 ? undefined : words.slice(script + 1);
}

/**
 * Settings a finished run does not need to share with its plan: the epoch cap (a run an older,
 * lower cap stopped resumes, see staleReason) and the T budgets (evaluated after training, no part
 * of what trained).
 */
const SETTINGS_NOT_COMPARED: ReadonlySet<string> = new Set(['epochs', 'budgets']);

/**
 * How a finished run's recorded training differs from the planned arguments, one `setting:
 * recorded → planned` per difference (SETTINGS_NOT_COMPARED aside); empty where it is the planned
 * training. A command train-cli no longer parses, or none, is a difference too.
 */
export function settingsChanges(planned: readonly string[], training: Pick<Training, 'command'>): string[] {
  const recorded = recordedArgs(training);
  if (!recorded) return ['no train-cli command recorded'];
  let was: Record<string, unknown>;
  try {
    was = settingsFields(parseTrainArgs(recorded));
  } catch (error) {
    return [`its recorded command no longer parses: ${(error as Error).message}`];
  }
  const now = settingsFields(parseTrainArgs(planned));
  const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));
  return [...new Set([...Object.keys(now), ...Object.keys(was)])]
    .filter((k) => !SETTINGS_NOT_COMPARED.has(k) && canonicalJson(now[k]) !== canonicalJson(was[k]))
    .sort()
    .map((k) => `${k}: ${show(was[k])} → ${show(now[k])}`);
}

/** What `reproduce --adopt` (adopt.ts) writes beside a run it copied from another cache. */
export const ADOPTED_FILE = 'adopted.json';

/** The run folder a finished run was adopted from; undefined for a run reproduce trained itself. */
export function adoptedFrom(run: Pick<FinishedRun, 'artifactDir'>): string | undefined {
  if (!run.artifactDir) return undefined;
  const marker = join(dirname(run.artifactDir), ADOPTED_FILE);
  return existsSync(marker) ? (JSON.parse(readFileSync(marker, 'utf8')) as { from: string }).from : undefined;
}

export function runTrain(args: string[], logPrefix: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/model/train-cli.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const forward = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) process.stderr.write(`  [${logPrefix}] ${line}\n`);
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`train-cli exited with ${code} for ${logPrefix}`))));
  });
}
