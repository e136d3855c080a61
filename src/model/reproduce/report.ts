/**
 * The results of finished reproduce runs: rows averaged over seeds, the per-seed orderings and the
 * CHORD mode choice (markdown.ts writes them up).
 */
import { strategyBitstreamSize } from '../../core/bitstream.ts';
import { ndcgAtK } from '../../core/metrics.ts';
import { pairedDifference, seedNoise, type PairedDifference, type SeedNoise } from '../../core/paired.ts';
import type { StrategySpread } from '../../core/strategy-spread.ts';
import type { StrategyControls, TestRanks } from './diagnostics.ts';
import { BACKBONE_KINDS, backboneLayers, DEFAULT_CASER_DIMS, DEFAULT_SASREC_DIMS, type BackboneKind } from '../../core/backbones.ts';
import { METHODS, type Method } from '../../core/methods.ts';
import {
  DEFAULT_BETA,
  DEFAULT_LEVELS_ARG,
  personalised,
  QUANT_BUDGET,
  type RecordedEval,
  type FinishedRun,
  type Group,
  type RunSpec,
  type Training,
} from './plan.ts';


export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
function std(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

/** A run trained with --watch-test: the epoch whose test NDCG@10 (unmasked) was best, against the validation-picked one. */
export interface WatchedTest {
  bestTestEpoch: number;
  bestTestNdcg10: number;
  selectedEpoch: number;
  selectedTestNdcg10: number;
}

/**
 * The paper's protocol beside validation selection: test watched after every epoch and the best
 * epoch reported. Null for a run trained without --watch-test.
 */
export function watchedTest(t: Pick<Training, 'history' | 'epochs'>): WatchedTest | null {
  const watched = (t.history ?? []).filter((e) => e.watchedTest);
  const selected = watched.find((e) => e.epoch === t.epochs?.best);
  if (!selected) return null;
  const best = watched.reduce((a, e) => (e.watchedTest!.unmasked.ndcg10 > a.watchedTest!.unmasked.ndcg10 ? e : a));
  return {
    bestTestEpoch: best.epoch,
    bestTestNdcg10: best.watchedTest!.unmasked.ndcg10,
    selectedEpoch: selected.epoch,
    selectedTestNdcg10: selected.watchedTest!.unmasked.ndcg10,
  };
}

/** Per configuration, its runs trained with --watch-test: test NDCG@10 at the validation-picked and at the best test epoch. */
export interface WatchedTestRow {
  config: string;
  seeds: number;
  selected_test_ndcg10: number;
  best_test_ndcg10: number;
}

export function watchedTestRows(finished: ReadonlyMap<string, FinishedRun>): WatchedTestRow[] {
  const groups = new Map<string, WatchedTest[]>();
  for (const { spec, training } of finished.values()) {
    const w = watchedTest(training);
    if (!w) continue;
    const config = configKey(spec);
    groups.set(config, [...(groups.get(config) ?? []), w]);
  }
  return [...groups].map(([config, ws]) => ({
    config,
    seeds: ws.length,
    selected_test_ndcg10: round(mean(ws.map((w) => w.selectedTestNdcg10))),
    best_test_ndcg10: round(mean(ws.map((w) => w.bestTestNdcg10))),
  }));
}

/** A run's configuration: its key without the seed, which the seeds of one row share. */
export function configKey(spec: RunSpec): string {
  return spec.key.replace(/-s\d+$/, '');
}

export interface ResultRow {
  backbone: BackboneKind;
  method: Method;
  group: Group;
  levels: string;
  beta: number | null;
  w3a3: boolean;
  init: 'random' | 'pretrained';
  avg_bits: number;
  deploy_bits: number;
  ndcg5: number;
  hr5: number;
  ndcg10: number;
  hr10: number;
  seeds: number;
  ndcg10_std: number;
  strategy_bytes: number;
  weight_bytes: number;
  masked: boolean;
  /** The T budget this row was deployed at; null = the bits the model was trained for. */
  deploy_budget: number | null;
  /**
   * Budget rows only: the measured mean over users, then seeds, of the average bits after T. At most
   * the budget, and below it where users' strategies already were (T leaves those unchanged).
   */
  deploy_avg_bits?: number;
  runs: string[];
  /** Unmasked trained-bits rows only, when every run has it: mean share of the top-10 that is history. */
  history_share10?: number;
  /** Trained-bits rows, when every run has it: NDCG@10 (this row's protocol) with another user's strategy. */
  others_strategy_ndcg10?: number;
  /**
   * CHORD-family trained-bits rows, when every run has them: NDCG@10 (this row's protocol) with
   * each user's strategy on channels shuffled within each layer, and with every channel at
   * QUANT_BUDGET bits, on the same trained model.
   */
  shuffled_channels_ndcg10?: number;
  uniform_bits_ndcg10?: number;
  /** Unmasked trained-bits rows only, when every run has it: core's strategySpread over the test users, mean over seeds. */
  strategy_spread?: {
    pair_differ: number;
    global_channels: number;
    avg_bits_min: number;
    avg_bits_max: number;
    /** Per layer in model order: its share of the weights and its bits per weight, mean over users, then seeds. */
    layers: { name: string; weight_share: number; mean_bits: number }[];
  };
}

function modelFacts(backbone: BackboneKind, modelIdLength: number, personalised: boolean): { strategyBytes: number; weightBytes: number } {
  const layers =
    backbone === 'sasrec'
      ? backboneLayers({ backbone, dims: DEFAULT_SASREC_DIMS })
      : backboneLayers({ backbone, dims: DEFAULT_CASER_DIMS });
  const weightBytes = 4 * layers.reduce((s, l) => s + l.outChannels * l.rowLength, 0);
  const strategyBytes = personalised ? strategyBitstreamSize(layers.map((l) => l.outChannels), modelIdLength) : 0;
  return { strategyBytes, weightBytes };
}

/** The sidecar diagnostics of finished runs by run key (diagnostics.ts); a run without one is left out of its column. */
export interface RunDiagnostics {
  historyShares?: ReadonlyMap<string, number>;
  spreads?: ReadonlyMap<string, StrategySpread>;
  /** Evaluations at QUANT_BUDGET of runs trained before it was planned (quantBudgetEvals). */
  atQuantBudget?: ReadonlyMap<string, RecordedEval>;
  controls?: ReadonlyMap<string, StrategyControls>;
}

/**
 * Averages the finished runs of each configuration over seeds; one row per protocol (and deploy
 * budget). A run's evaluation at QUANT_BUDGET comes from its training.json or, for a run trained
 * before it was planned, from `diagnostics.atQuantBudget`.
 */
export function aggregate(finished: ReadonlyMap<string, FinishedRun>, diagnostics: RunDiagnostics = {}): ResultRow[] {
  const { historyShares = new Map(), spreads = new Map(), atQuantBudget = new Map(), controls = new Map() } = diagnostics;
  const groups = new Map<string, FinishedRun[]>();
  for (const f of finished.values()) {
    const config = configKey(f.spec);
    groups.set(config, [...(groups.get(config) ?? []), f]);
  }
  const rows: ResultRow[] = [];
  for (const runs of groups.values()) {
    const spec = runs[0]!.spec;
    const chordFamily = personalised(spec.method);
    const facts = modelFacts(spec.backbone, runs[0]!.training.modelId.length, chordFamily);
    const atBudget = (r: FinishedRun, b: number) => r.training.metrics.testAtBudget[String(b)] ?? (b === QUANT_BUDGET ? atQuantBudget.get(r.spec.key) : undefined);
    const deployments: { bits: string | null; pick: (r: FinishedRun) => RecordedEval | undefined }[] = [
      { bits: null, pick: (r) => r.training.metrics.test },
      ...spec.budgets.map((b) => ({ bits: String(b), pick: (r: FinishedRun) => atBudget(r, b) })),
    ];
    for (const d of deployments) {
      const evals = runs.map((r) => d.pick(r)).filter((e): e is RecordedEval => e !== undefined);
      if (evals.length === 0) continue;
      const avgBits = spec.method === 'base' ? 32 : mean(runs.map((r) => r.training.metrics.test.averageBits ?? 32));
      const shares = runs.map((r) => historyShares.get(r.spec.key)).filter((x): x is number => x !== undefined);
      const share = d.bits === null && shares.length === runs.length ? { history_share10: round(mean(shares)) } : {};
      const sp = runs.map((r) => spreads.get(r.spec.key)).filter((x): x is StrategySpread => x !== undefined);
      const spread =
        d.bits === null && sp.length === runs.length
          ? {
              strategy_spread: {
                pair_differ: round(mean(sp.map((x) => x.pairDiffer))),
                global_channels: round(mean(sp.map((x) => x.globalChannels))),
                avg_bits_min: round(mean(sp.map((x) => x.averageBits.min))),
                avg_bits_max: round(mean(sp.map((x) => x.averageBits.max))),
                // The seeds of a configuration share the backbone, so their layers line up.
                layers: sp[0]!.layers.map((l, i) => ({
                  name: l.name,
                  weight_share: round(l.weightShare),
                  mean_bits: round(mean(sp.map((x) => x.layers[i]!.meanBits))),
                })),
              },
            }
          : {};
      const others = runs.map((r) => r.training.metrics.testOthersStrategy).filter((x): x is RecordedEval => x !== undefined);
      const ctl = runs.map((r) => controls.get(r.spec.key)).filter((x): x is StrategyControls => x !== undefined);
      for (const masked of [false, true]) {
        const m = evals.map((e) => (masked ? e.masked : e.unmasked));
        rows.push({
          backbone: spec.backbone,
          method: spec.method,
          group: spec.group,
          levels: spec.method === 'base' ? 'fp32' : spec.method === 'quant' ? 'uniform-3' : spec.levels.replace(/,/g, '-'),
          beta: chordFamily ? spec.beta : null,
          w3a3: spec.w3a3,
          init: spec.pretrained ? 'pretrained' : 'random',
          avg_bits: round(avgBits),
          deploy_bits: round(d.bits === null ? mean(evals.map((e) => e.averageBits ?? 32)) : Number(d.bits)),
          ndcg5: round(mean(m.map((x) => x.ndcg5))),
          hr5: round(mean(m.map((x) => x.hr5))),
          ndcg10: round(mean(m.map((x) => x.ndcg10))),
          hr10: round(mean(m.map((x) => x.hr10))),
          seeds: evals.length,
          ndcg10_std: round(std(m.map((x) => x.ndcg10))),
          strategy_bytes: facts.strategyBytes,
          weight_bytes: facts.weightBytes,
          masked,
          deploy_budget: d.bits === null ? null : Number(d.bits),
          ...(d.bits !== null && evals.every((e) => e.averageBits !== undefined) ? { deploy_avg_bits: round(mean(evals.map((e) => e.averageBits!))) } : {}),
          runs: runs.map((r) => r.spec.key),
          ...(d.bits === null && others.length === runs.length
            ? { others_strategy_ndcg10: round(mean(others.map((e) => (masked ? e.masked : e.unmasked).ndcg10))) }
            : {}),
          ...(d.bits === null && ctl.length === runs.length
            ? {
                shuffled_channels_ndcg10: round(mean(ctl.map((c) => (masked ? c.shuffled.test.masked : c.shuffled.test.unmasked).ndcg10))),
                uniform_bits_ndcg10: round(mean(ctl.map((c) => (masked ? c.uniform.test.masked : c.uniform.test.unmasked).ndcg10))),
              }
            : {}),
          ...(masked ? {} : { ...share, ...spread }),
        });
      }
    }
  }
  return rows;
}

/** The headline quantization settings (levels, β, no w3a3): runs comparable across methods and modes. */
function hasDefaultQuantization(spec: RunSpec): boolean {
  return spec.levels === DEFAULT_LEVELS_ARG && spec.beta === DEFAULT_BETA && !spec.w3a3;
}

/**
 * A per-seed column: a headline method, or a quantized method on the frozen-pretrained backbone
 * ("<method>-pre"), or Quant on CHORD's examples in either mode ("quant-examples[-pre]").
 */
export type SeedColumn = Method | `${Exclude<Method, 'base'>}-pre` | 'quant-examples' | 'quant-examples-pre';

/** Every SeedColumn: the headline methods, the quantized ones on the frozen-pretrained backbone, then the examples controls. */
const SEED_COLUMNS: readonly SeedColumn[] = [...METHODS, ...METHODS.filter((m) => m !== 'base').map((m) => `${m}-pre` as const), 'quant-examples', 'quant-examples-pre'];

/** One seed's test NDCG@10 per method (headline runs, plus the frozen-pretrained runs as "<method>-pre"). */
export interface SeedComparison {
  backbone: BackboneKind;
  seed: number;
  ndcg10: Partial<Record<SeedColumn, { unmasked: number; masked: number }>>;
  /**
   * The "same run" orderings, each under both protocols; undefined when a run is missing.
   * The pre_ checks are the same orderings with every quantized method on the frozen-pretrained
   * backbone (Base is the backbone they freeze).
   */
  checks: Record<
    'chord_gt_base' | 'base_gt_quant' | 'ablation_order' | 'pre_gt_base' | 'base_gt_pre_quant' | 'pre_ablation_order',
    { unmasked: boolean; masked: boolean } | undefined
  >;
}

/** The per-seed column of a run: its method, with "-pre" on the frozen-pretrained backbone. */
function seedColumn(spec: RunSpec): SeedColumn {
  if (spec.chordExamples) return spec.pretrained ? 'quant-examples-pre' : 'quant-examples';
  return spec.pretrained && spec.method !== 'base' ? `${spec.method}-pre` : spec.method;
}

/** The orderings the issue asks for, per backbone and seed, computed from finished runs only. */
export function compareSeeds(finished: ReadonlyMap<string, FinishedRun>): SeedComparison[] {
  const out = new Map<string, SeedComparison>();
  for (const { spec, training } of finished.values()) {
    if (!pairedRun(spec)) continue;
    const id = `${spec.backbone}-${spec.seed}`;
    const row = out.get(id) ?? { backbone: spec.backbone, seed: spec.seed, ndcg10: {}, checks: {} as SeedComparison['checks'] };
    const t = training.metrics.test;
    row.ndcg10[seedColumn(spec)] = { unmasked: t.unmasked.ndcg10, masked: t.masked.ndcg10 };
    out.set(id, row);
  }
  const increasing = (row: SeedComparison, names: SeedColumn[]) => {
    const v = names.map((n) => row.ndcg10[n]);
    if (v.some((x) => x === undefined)) return undefined;
    const ok = (p: 'unmasked' | 'masked') => v.every((x, i) => i === 0 || x![p] > v[i - 1]![p]);
    return { unmasked: ok('unmasked'), masked: ok('masked') };
  };
  const rows = [...out.values()].sort((a, b) => a.backbone.localeCompare(b.backbone) || a.seed - b.seed);
  for (const row of rows) {
    row.checks = {
      chord_gt_base: increasing(row, ['base', 'chord']),
      base_gt_quant: increasing(row, ['quant', 'base']),
      ablation_order: increasing(row, ['quant', 'custom', 'weighted', 'chord']),
      pre_gt_base: increasing(row, ['base', 'chord-pre']),
      base_gt_pre_quant: increasing(row, ['quant-pre', 'base']),
      pre_ablation_order: increasing(row, ['quant-pre', 'custom-pre', 'weighted-pre', 'chord-pre']),
    };
  }
  return rows;
}

/**
 * The "report both CHORD modes, the better one becomes the default", decided on validation
 * (unmasked NDCG@10, the selection metric) over the seeds where both modes finished.
 */
export interface ModeChoice {
  backbone: BackboneKind;
  seeds: number[];
  valid_ndcg10: { random: number; pretrained: number };
  default: 'random' | 'pretrained';
}

export function chooseChordMode(finished: ReadonlyMap<string, FinishedRun>): ModeChoice[] {
  const out: ModeChoice[] = [];
  for (const backbone of BACKBONE_KINDS) {
    const chord = (pretrained: boolean) =>
      new Map(
        [...finished.values()]
          .filter(({ spec }) => spec.backbone === backbone && spec.method === 'chord' && spec.pretrained === pretrained)
          .filter(({ spec }) => hasDefaultQuantization(spec))
          .flatMap(({ spec, training }) => (training.metrics.valid ? [[spec.seed, training.metrics.valid.unmasked.ndcg10] as const] : [])),
      );
    const random = chord(false);
    const pretrained = chord(true);
    const seeds = [...random.keys()].filter((s) => pretrained.has(s)).sort((a, b) => a - b);
    if (seeds.length === 0) continue;
    const r = mean(seeds.map((s) => random.get(s)!));
    const p = mean(seeds.map((s) => pretrained.get(s)!));
    out.push({ backbone, seeds, valid_ndcg10: { random: round(r), pretrained: round(p) }, default: p > r ? 'pretrained' : 'random' });
  }
  return out;
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

/** The paired comparisons of the report, a − b: each step of the orderings, in both modes. */
export const PAIRED_COMPARISONS: readonly (readonly [SeedColumn, SeedColumn])[] = [
  ['base', 'quant'],
  ['custom', 'quant'],
  ['weighted', 'custom'],
  ['chord', 'weighted'],
  ['chord', 'base'],
  ['base', 'quant-pre'],
  ['custom-pre', 'quant-pre'],
  ['weighted-pre', 'custom-pre'],
  ['chord-pre', 'weighted-pre'],
  ['chord-pre', 'quant-pre'],
  ['chord-pre', 'base'],
  // What the examples give a uniform model, and what each windows-trained run has beyond that (SASRec).
  ['quant-examples', 'quant'],
  ['custom', 'quant-examples'],
  ['weighted', 'quant-examples'],
  ['chord', 'quant-examples'],
  ['quant-examples-pre', 'quant-pre'],
  ['custom-pre', 'quant-examples-pre'],
  ['weighted-pre', 'quant-examples-pre'],
  ['chord-pre', 'quant-examples-pre'],
];

/** Test NDCG@10 of method a minus method b on the same users, with its 95% interval, per protocol. */
export interface PairedComparison extends PairedOverSeeds {
  backbone: BackboneKind;
  a: SeedColumn;
  b: SeedColumn;
  /** The seeds where both runs have per-user ranks; each user's difference is averaged over them. */
  seeds: number[];
}

/** Per-user test ranks of two models on the same seed. */
export interface SeedPair {
  seed: number;
  a: RanksOfUsers;
  b: RanksOfUsers;
}

/** Each test user's 0-based ranks, in user order: a sidecar's TestRanks or an evaluation's UserRanks. */
export interface RanksOfUsers {
  readonly users: ArrayLike<number>;
  readonly unmasked: ArrayLike<number>;
  readonly masked: ArrayLike<number>;
}

type ByProtocol<T> = { unmasked: T; masked: T };

/** Two runs' per-user test differences, paired on users over seeds (pairOverSeeds). */
export interface PairedOverSeeds {
  users: number;
  ndcg10: ByProtocol<PairedDifference>;
  /**
   * How much higher a ranks each user's target than b does: log2(rank_b + 1) − log2(rank_a + 1),
   * positive where a ranks it higher. A second, finer measure of the same rankings: it counts every
   * rank, so it sees moves of the target that stay outside (or inside) the top 10.
   */
  log2RankGain: ByProtocol<PairedDifference>;
  /** With two seeds or more: how each difference's noise splits over users and seeds (core seedNoise). */
  noise?: { ndcg10: ByProtocol<SeedNoise>; log2RankGain: ByProtocol<SeedNoise> };
}

/** A user's score of a 0-based target rank under each measure of PairedOverSeeds. */
const RANK_SCORES = {
  ndcg10: (rank: number) => ndcgAtK(rank, 10),
  log2RankGain: (rank: number) => -Math.log2(rank + 1),
} as const;

/**
 * a minus b over users, per measure and protocol: each user's difference averaged over the seeds
 * first, then the mean and 95% interval over users (core pairedDifference). Seeds share the users,
 * so averaging per user first keeps users the independent units. Throws when runs ranked other users.
 */
export function pairOverSeeds(pairs: readonly SeedPair[], what: string): PairedOverSeeds {
  const users = Array.from(pairs[0]!.a.users);
  for (const p of pairs) {
    if (![p.a.users, p.b.users].every((u) => u.length === users.length && users.every((x, i) => u[i] === x))) {
      throw new Error(`${what}, seed ${p.seed}: the runs ranked other test users`);
    }
  }
  const byProtocol = <T>(f: (protocol: 'unmasked' | 'masked') => T): ByProtocol<T> => ({ unmasked: f('unmasked'), masked: f('masked') });
  // Each measure's per-seed differences, computed once for both the interval and the noise split.
  const differences = (score: (rank: number) => number) =>
    byProtocol((protocol) => pairs.map((p) => users.map((_, i) => score(p.a[protocol][i]!) - score(p.b[protocol][i]!))));
  const diff = (d: ByProtocol<number[][]>) =>
    byProtocol((protocol) => pairedDifference(users.map((_, i) => mean(d[protocol].map((x) => x[i]!))), new Float64Array(users.length)));
  const noise = (d: ByProtocol<number[][]>) => byProtocol((protocol) => seedNoise(d[protocol]));
  const ndcg10 = differences(RANK_SCORES.ndcg10);
  const rank = differences(RANK_SCORES.log2RankGain);
  return {
    users: users.length,
    ndcg10: diff(ndcg10),
    log2RankGain: diff(rank),
    ...(pairs.length > 1 ? { noise: { ndcg10: noise(ndcg10), log2RankGain: noise(rank) } } : {}),
  };
}

/** The runs compared seed by seed and paired: default quantization, headline, frozen-pretrained or an examples control. */
function pairedRun(spec: RunSpec): boolean {
  return hasDefaultQuantization(spec) && (spec.group === 'headline' || spec.group === 'pretrained' || spec.group === 'examples');
}

/**
 * PAIRED_COMPARISONS per backbone over the seeds where both runs have per-user test ranks
 * (pairOverSeeds).
 */
export function pairedComparisons(finished: ReadonlyMap<string, FinishedRun>, ranks: ReadonlyMap<string, TestRanks>): PairedComparison[] {
  const byColumn = new Map<string, TestRanks>();
  for (const { spec } of finished.values()) {
    const r = ranks.get(spec.key);
    if (!r || !pairedRun(spec)) continue;
    byColumn.set(`${spec.backbone}/${spec.seed}/${seedColumn(spec)}`, r);
  }
  const seeds = [...new Set([...finished.values()].map((f) => f.spec.seed))].sort((x, y) => x - y);
  const out: PairedComparison[] = [];
  for (const backbone of BACKBONE_KINDS) {
    for (const [a, b] of PAIRED_COMPARISONS) {
      const pairs = seeds
        .map((seed): Partial<SeedPair> & { seed: number } => ({ seed, a: byColumn.get(`${backbone}/${seed}/${a}`), b: byColumn.get(`${backbone}/${seed}/${b}`) }))
        .filter((p): p is SeedPair => p.a !== undefined && p.b !== undefined);
      if (pairs.length === 0) continue;
      out.push({ backbone, a, b, seeds: pairs.map((p) => p.seed), ...pairOverSeeds(pairs, `${backbone} ${a} vs ${b}`) });
    }
  }
  return out;
}

/** A personalised configuration's own strategies minus each control strategy (diagnostics.ts), paired on the test users. */
export interface ControlComparison {
  backbone: BackboneKind;
  column: SeedColumn;
  /** The seeds with per-user ranks for the own strategies, another user's and both controls. */
  seeds: number[];
  users: number;
  /**
   * Own minus every user given the next user's strategy: what the personalisation is worth, in full
   * (NDCG@10, the target's rank, and their noise over seeds).
   */
  ownMinusOthers: PairedOverSeeds;
  /** Own minus the same widths per layer on shuffled channels: what the choice of channels is worth. */
  ownMinusShuffled: { unmasked: PairedDifference; masked: PairedDifference };
  /** Own minus every channel at the uniform width: what the mixed widths are worth. */
  ownMinusUniform: { unmasked: PairedDifference; masked: PairedDifference };
}

/**
 * For each personalised headline and frozen-pretrained column (default quantization): the own
 * strategies' per-user test NDCG@10 minus that with another user's strategy and with each control,
 * over the seeds that have all four (pairOverSeeds), in SeedColumn order per backbone.
 */
export function controlComparisons(
  finished: ReadonlyMap<string, FinishedRun>,
  ranks: ReadonlyMap<string, TestRanks>,
  others: ReadonlyMap<string, TestRanks>,
  controls: ReadonlyMap<string, StrategyControls>,
): ControlComparison[] {
  const byColumn = new Map<string, { seed: number; own: TestRanks; others: TestRanks; shuffled: TestRanks; uniform: TestRanks }[]>();
  for (const { spec } of [...finished.values()].sort((x, y) => x.spec.seed - y.spec.seed)) {
    const own = ranks.get(spec.key);
    const other = others.get(spec.key);
    const c = controls.get(spec.key);
    if (!own || !other || !c || !pairedRun(spec) || !personalised(spec.method)) continue;
    const column = `${spec.backbone}/${seedColumn(spec)}`;
    byColumn.set(column, [...(byColumn.get(column) ?? []), { seed: spec.seed, own, others: other, shuffled: c.shuffled.ranks, uniform: c.uniform.ranks }]);
  }
  const out: ControlComparison[] = [];
  for (const backbone of BACKBONE_KINDS) {
    for (const column of SEED_COLUMNS) {
      const runs = byColumn.get(`${backbone}/${column}`);
      if (!runs) continue;
      const vs = (control: 'others' | 'shuffled' | 'uniform') =>
        pairOverSeeds(
          runs.map((r) => ({ seed: r.seed, a: r.own, b: r[control] })),
          `${backbone} ${column} vs its ${control} control`,
        );
      const shuffled = vs('shuffled');
      out.push({
        backbone,
        column,
        seeds: runs.map((r) => r.seed),
        users: shuffled.users,
        ownMinusOthers: vs('others'),
        ownMinusShuffled: shuffled.ndcg10,
        ownMinusUniform: vs('uniform').ndcg10,
      });
    }
  }
  return out;
}
