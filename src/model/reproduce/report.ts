/**
 * The results of finished reproduce runs: rows averaged over seeds, the per-seed orderings, the
 * CHORD mode choice, and the markdown report.
 */
import { strategyBitstreamSize } from '../../core/bitstream.ts';
import type { StrategySpread } from '../../core/strategy-spread.ts';
import { backboneLayers, DEFAULT_CASER_DIMS, DEFAULT_SASREC_DIMS } from '../../core/backbones.ts';
import { f4 } from './diagnostics.ts';
import {
  BACKBONES,
  DEFAULT_BETA,
  DEFAULT_LEVELS,
  METHODS,
  personalised,
  QUANT_BUDGET,
  type Backbone,
  type DeployedEval,
  type FinishedRun,
  type Group,
  type Method,
  type RunSpec,
} from './plan.ts';


/** The paper's Table 2 (ML-100K, unmasked full ranking): NDCG@10 / HR@10. */
const PAPER: Record<Backbone, Partial<Record<Method, [number, number]>>> = {
  sasrec: { base: [0.0515, 0.1092], quant: [0.0479, 0.1029], chord: [0.0707, 0.1463] },
  caser: { base: [0.0599, 0.1177], quant: [0.0298, 0.0615], chord: [0.0639, 0.122] },
};

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
function std(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

export interface ResultRow {
  backbone: Backbone;
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

function modelFacts(backbone: Backbone, modelIdLength: number, personalised: boolean): { strategyBytes: number; weightBytes: number } {
  const layers =
    backbone === 'sasrec'
      ? backboneLayers({ backbone, dims: DEFAULT_SASREC_DIMS })
      : backboneLayers({ backbone, dims: DEFAULT_CASER_DIMS });
  const weightBytes = 4 * layers.reduce((s, l) => s + l.outChannels * l.rowLength, 0);
  const strategyBytes = personalised ? strategyBitstreamSize(layers.map((l) => l.outChannels), modelIdLength) : 0;
  return { strategyBytes, weightBytes };
}

/**
 * Averages the finished runs of each configuration over seeds; one row per protocol (and deploy
 * budget). A run's evaluation at QUANT_BUDGET comes from its training.json or, for a run trained
 * before it was planned, from `atQuantBudget` (quantBudgetEvals).
 */
export function aggregate(
  finished: ReadonlyMap<string, FinishedRun>,
  historyShares: ReadonlyMap<string, number> = new Map(),
  spreads: ReadonlyMap<string, StrategySpread> = new Map(),
  atQuantBudget: ReadonlyMap<string, DeployedEval> = new Map(),
): ResultRow[] {
  const groups = new Map<string, FinishedRun[]>();
  for (const f of finished.values()) {
    const configKey = f.spec.key.replace(/-s\d+$/, '');
    groups.set(configKey, [...(groups.get(configKey) ?? []), f]);
  }
  const rows: ResultRow[] = [];
  for (const runs of groups.values()) {
    const spec = runs[0]!.spec;
    const chordFamily = personalised(spec.method);
    const facts = modelFacts(spec.backbone, runs[0]!.training.modelId.length, chordFamily);
    const atBudget = (r: FinishedRun, b: number) => r.training.metrics.testAtBudget[String(b)] ?? (b === QUANT_BUDGET ? atQuantBudget.get(r.spec.key) : undefined);
    const deployments: { bits: string | null; pick: (r: FinishedRun) => DeployedEval | undefined }[] = [
      { bits: null, pick: (r) => r.training.metrics.test },
      ...spec.budgets.map((b) => ({ bits: String(b), pick: (r: FinishedRun) => atBudget(r, b) })),
    ];
    for (const d of deployments) {
      const evals = runs.map((r) => d.pick(r)).filter((e): e is DeployedEval => e !== undefined);
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
      const others = runs.map((r) => r.training.metrics.testOthersStrategy).filter((x): x is DeployedEval => x !== undefined);
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
          ...(masked ? {} : { ...share, ...spread }),
        });
      }
    }
  }
  return rows;
}

/** The headline quantization settings (levels, β, no w3a3): runs comparable across methods and modes. */
function hasDefaultQuantization(spec: RunSpec): boolean {
  return spec.levels === DEFAULT_LEVELS && spec.beta === DEFAULT_BETA && !spec.w3a3;
}

/** A per-seed column: a headline method, or a quantized method on the frozen-pretrained backbone ("<method>-pre"). */
export type SeedColumn = Method | `${Exclude<Method, 'base'>}-pre`;

/** One seed's test NDCG@10 per method (headline runs, plus the frozen-pretrained runs as "<method>-pre"). */
export interface SeedComparison {
  backbone: Backbone;
  seed: number;
  ndcg10: Partial<Record<SeedColumn, { unmasked: number; masked: number }>>;
  /**
   * The issue's "same run" orderings, each under both protocols; undefined when a run is missing.
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
  return spec.pretrained && spec.method !== 'base' ? `${spec.method}-pre` : spec.method;
}

/** The orderings the issue asks for, per backbone and seed, computed from finished runs only. */
export function compareSeeds(finished: ReadonlyMap<string, FinishedRun>): SeedComparison[] {
  const out = new Map<string, SeedComparison>();
  for (const { spec, training } of finished.values()) {
    if (!hasDefaultQuantization(spec) || (spec.group !== 'headline' && spec.group !== 'pretrained')) continue;
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
 * The issue's "report both CHORD modes, the better one becomes the default", decided on validation
 * (unmasked NDCG@10, the selection metric) over the seeds where both modes finished.
 */
export interface ModeChoice {
  backbone: Backbone;
  seeds: number[];
  valid_ndcg10: { random: number; pretrained: number };
  default: 'random' | 'pretrained';
}

export function chooseChordMode(finished: ReadonlyMap<string, FinishedRun>): ModeChoice[] {
  const out: ModeChoice[] = [];
  for (const backbone of BACKBONES) {
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
/** Orders headline rows by backbone, then mode (random-frozen with Base first, then frozen-pretrained), then method. */
function headlineOrder(r: ResultRow): number {
  return (r.backbone === 'sasrec' ? 0 : 20) + (r.group === 'pretrained' ? 10 : 0) + METHODS.indexOf(r.method);
}

/** A headline-table label: the method, with the mode for the frozen-pretrained runs. */
function headlineLabel(r: ResultRow): string {
  return r.group === 'pretrained' ? `${r.method} (frozen-pretrained)` : r.method;
}

/**
 * A markdown section with one row per headline configuration and frozen-pretrained run at the
 * trained bits (those `keep` accepts), by backbone and method; `cells` fills the columns after
 * backbone, method and seeds from the unmasked row and its masked twin.
 */
function headlineSection(
  rows: readonly ResultRow[],
  head: { title: string; note: string; columns: readonly string[] },
  cells: (unmasked: ResultRow, masked: ResultRow | undefined) => string[],
  keep: (r: ResultRow) => boolean = () => true,
): string[] {
  const lines = ['', `## ${head.title}`, '', head.note, '', `| backbone | method | seeds | ${head.columns.join(' | ')} |`, `|---|---|---|${head.columns.map(() => '---|').join('')}`];
  const shown = rows.filter((r) => (r.group === 'headline' || r.group === 'pretrained') && !r.masked && r.deploy_budget === null && keep(r));
  for (const r of shown.sort((a, b) => headlineOrder(a) - headlineOrder(b))) {
    const m = rows.find((x) => x.masked && x.runs.join() === r.runs.join() && x.deploy_budget === null);
    lines.push(`| ${r.backbone} | ${headlineLabel(r)} | ${r.seeds} | ${cells(r, m).join(' | ')} |`);
  }
  return lines;
}

/** The markdown section "History items in the unmasked top-10": headline methods and the frozen-pretrained runs. */
export function historyShareTable(rows: readonly ResultRow[]): string[] {
  const head = {
    title: 'History items in the unmasked top-10',
    note: 'Mean over test users, then seeds, of the share of the unmasked top-10 that the user already rated (ties at the cut-off go to history items, as NDCG counts ties against the target); an ML-100K user never rates an item twice, so each such slot is one the target cannot take.',
    columns: ['history share of top-10', 'NDCG@10', 'masked NDCG@10'],
  };
  return headlineSection(rows, head, (r, m) => [r.history_share10 === undefined ? '–' : f4(r.history_share10), f4(r.ndcg10), m ? f4(m.ndcg10) : '–']);
}

/** The markdown section "How personal are the strategies?": quantized headline methods and the frozen-pretrained runs. */
export function strategySpreadTable(rows: readonly ResultRow[]): string[] {
  const head = {
    title: 'How personal are the strategies?',
    note: "Per run, each test user's strategy as the page gets it (GRU over the test history -> hypernet, trained bits, no T): the share of channels whose bit width differs between consecutive users u and u+1 (the pairs of \"another user's strategy\"), the share that every test user gets at the same width, and the lowest and highest per-user average bits; then the mean over seeds. NDCG@10 with each user's own strategy / with user u+1's.",
    columns: ['channels differing, consecutive users', 'channels global to all users', 'avg bits across users', "NDCG@10 own / another's", "masked NDCG@10 own / another's"],
  };
  const pair = (r: ResultRow | undefined) => (r ? `${f4(r.ndcg10)} / ${r.others_strategy_ndcg10 === undefined ? '–' : f4(r.others_strategy_ndcg10)}` : '–');
  return headlineSection(
    rows,
    head,
    (r, m) => {
      const s = r.strategy_spread;
      const spread = s ? [f4(s.pair_differ), f4(s.global_channels), `${s.avg_bits_min.toFixed(3)}–${s.avg_bits_max.toFixed(3)}`] : ['–', '–', '–'];
      return [...spread, pair(r), pair(m)];
    },
    (r) => r.method !== 'base',
  );
}

/**
 * The markdown section "Where Λ puts the bits": per backbone, each quantized layer's share of the
 * weights and its mean bits per weight in every headline CHORD row. The model's average bits are
 * the share-weighted sum, so a large layer that Λ moves up for most users explains an average far
 * above Γ's 3 bits.
 */
export function layerBitsTable(rows: readonly ResultRow[]): string[] {
  const chord = rows
    .filter((r) => r.method === 'chord' && (r.group === 'headline' || r.group === 'pretrained') && !r.masked && r.deploy_budget === null)
    .filter((r) => r.strategy_spread !== undefined)
    .sort((a, b) => headlineOrder(a) - headlineOrder(b));
  if (chord.length === 0) return [];
  const lines = [
    '',
    '## Where Λ puts the bits',
    '',
    "Per quantized layer: its share of the model's weights, and its bits per weight under CHORD's trained strategies (mean over test users, then seeds; no T). Γ alone gives a layer 3 bits (a 4-channel layer 4 bits: Γ keeps it one 8-bit channel); per user, Λ moves the most sensitive layer up (to 4.75 bits) and the least sensitive down (to 2.5), so the model's average bits, the share-weighted sum, depend on how large those layers are.",
  ];
  for (const backbone of [...new Set(chord.map((r) => r.backbone))]) {
    const cols = chord.filter((r) => r.backbone === backbone);
    const layers = cols[0]!.strategy_spread!.layers;
    const label = (r: ResultRow) => `${r.group === 'pretrained' ? 'frozen-pretrained' : 'random-frozen'} (${r.seeds} seeds)`;
    lines.push('', `| ${backbone} layer | weight share | ${cols.map(label).join(' | ')} |`, `|---|---|${cols.map(() => '---|').join('')}`);
    layers.forEach((l, i) => {
      lines.push(`| ${l.name} | ${l.weight_share.toFixed(3)} | ${cols.map((r) => r.strategy_spread!.layers[i]!.mean_bits.toFixed(2)).join(' | ')} |`);
    });
    lines.push(`| all (avg bits) | 1.000 | ${cols.map((r) => r.avg_bits.toFixed(2)).join(' | ')} |`);
  }
  return lines;
}

/**
 * The markdown section "Training time": per configuration (plan order), the mean over its finished
 * seeds of epochs run (and best epoch), minutes of training, and seconds per step, against the
 * issue's goal of one CHORD model in at most 30 minutes.
 */
export function trainingTimeTable(plan: readonly RunSpec[], finished: ReadonlyMap<string, FinishedRun>): string[] {
  const groups = new Map<string, FinishedRun[]>();
  for (const spec of plan) {
    const run = finished.get(spec.key);
    if (!run) continue;
    const config = spec.key.replace(/-s\d+$/, '');
    groups.set(config, [...(groups.get(config) ?? []), run]);
  }
  if (groups.size === 0) return [];
  const lines = [
    '',
    '## Training time',
    '',
    "Per configuration, mean over its finished seeds: epochs run (best epoch), minutes of training (steps and validations, summed over the sessions of a resumed run; the slowest seed in brackets), and seconds per training step, wall (CPU). Measured with tfjs's wasm backend on one core of a 2-core machine that trained two runs at once. A frozen-pretrained run's minutes leave out its Base, which is its own row.",
    '',
    '| configuration | seeds | epochs (best) | minutes per run (max) | s/step wall (CPU) |',
    '|---|---|---|---|---|',
  ];
  const f1 = (x: number) => x.toFixed(1);
  for (const [config, runs] of groups) {
    const t = runs.map((r) => r.training.timing);
    const minutes = t.map((x) => x.trainSeconds / 60);
    const cpu = t.map((x) => x.meanStepCpuSeconds);
    const epochs = runs.map((r) => r.training.epochs);
    const epochCell = epochs.every((e) => e !== undefined) ? `${f1(mean(epochs.map((e) => e!.run)))} (${f1(mean(epochs.map((e) => e!.best)))})` : '–';
    const cpuCell = cpu.every((c): c is number => typeof c === 'number') ? ` (${mean(cpu).toFixed(2)})` : '';
    lines.push(`| \`${config}\` | ${runs.length} | ${epochCell} | ${f1(mean(minutes))} (${f1(Math.max(...minutes))}) | ${mean(t.map((x) => x.meanStepSeconds)).toFixed(2)}${cpuCell} |`);
  }
  return lines;
}

/**
 * The markdown section "Per seed": one table per mode, each with its runs' test NDCG@10 and the
 * issue's orderings checked within the seed (Base, the fp32 model, appears in both).
 */
export function perSeedTables(seeds: readonly SeedComparison[]): string[] {
  const f = (x: number) => x.toFixed(4);
  const yesNo = (c: { unmasked: boolean; masked: boolean } | undefined) => (c ? `${c.unmasked ? 'yes' : 'no'} / ${c.masked ? 'yes' : 'no'}` : '–');
  const modes: { title: string; columns: SeedColumn[]; checks: (keyof SeedComparison['checks'])[] }[] = [
    { title: 'random-frozen backbone (the paper\'s mode)', columns: [...METHODS], checks: ['chord_gt_base', 'base_gt_quant', 'ablation_order'] },
    {
      title: 'frozen-pretrained backbone (the Base run of the same seed, frozen)',
      columns: ['base', 'quant-pre', 'custom-pre', 'weighted-pre', 'chord-pre'],
      checks: ['pre_gt_base', 'base_gt_pre_quant', 'pre_ablation_order'],
    },
  ];
  const checkNames = ['CHORD > Base', 'Base > Quant', 'Quant < Custom < Weighted < CHORD'];
  const lines = ['', '## Per seed: test NDCG@10 unmasked / masked, and the orderings within each seed', '', 'Checks read "unmasked / masked"; "–" where a run of the check is missing.'];
  for (const mode of modes) {
    const shown = seeds.filter((c) => mode.columns.some((m) => m !== 'base' && c.ndcg10[m] !== undefined));
    if (shown.length === 0) continue;
    lines.push('', `**${mode.title}**`, '', `| backbone | seed | ${mode.columns.join(' | ')} | ${checkNames.join(' | ')} |`, `|---|---|${mode.columns.map(() => '---|').join('')}---|---|---|`);
    for (const c of shown) {
      const cell = (m: SeedColumn) => {
        const v = c.ndcg10[m];
        return v ? `${f(v.unmasked)} / ${f(v.masked)}` : '–';
      };
      lines.push(`| ${c.backbone} | ${c.seed} | ${mode.columns.map(cell).join(' | ')} | ${mode.checks.map((k) => yesNo(c.checks[k])).join(' | ')} |`);
    }
  }
  return lines;
}

/**
 * The markdown section "At the Quant budget": each headline CHORD-family configuration and
 * frozen-pretrained CHORD at its trained bits and through T to QUANT_BUDGET, Quant beside them.
 */
export function quantBudgetTable(rows: readonly ResultRow[]): string[] {
  const b = QUANT_BUDGET.toFixed(2);
  const head = {
    title: `At the Quant budget: CHORD through T to ${b} bits`,
    note:
      `CHORD's strategies land near, not on, Quant's ${QUANT_BUDGET} bits, so the trained-bits numbers compare them at different budgets. ` +
      `Here every test user's strategy also goes through the device's resource transform T to a ${b}-bit budget before scoring; ` +
      `T leaves a strategy already at or below the budget unchanged, so the mean can end below ${b}. ` +
      `Quant (uniform ${QUANT_BUDGET} bits, which T leaves as it is) is the reference. Cells: NDCG@10 / HR@10, mean over seeds.`,
    columns: ['trained bits', 'NDCG@10 / HR@10', 'masked', `bits after T(${b})`, `NDCG@10 / HR@10 at ${b}`, `masked at ${b}`],
  };
  const pair = (r: ResultRow | undefined) => (r ? `${f4(r.ndcg10)} / ${f4(r.hr10)}` : '–');
  const atBudget = (r: ResultRow, masked: boolean) =>
    rows.find((x) => x.masked === masked && x.runs.join() === r.runs.join() && x.deploy_budget === QUANT_BUDGET);
  return headlineSection(
    rows,
    head,
    (r, m) => {
      const u = atBudget(r, false);
      // A budget row from fewer seeds than the trained one (not every run evaluated yet) says so.
      const bits = u?.deploy_avg_bits === undefined ? '–' : `${u.deploy_avg_bits.toFixed(3)}${u.seeds === r.seeds ? '' : ` (seeds: ${u.seeds})`}`;
      return [r.avg_bits.toFixed(3), pair(r), pair(m), bits, pair(u), pair(atBudget(r, true))];
    },
    (r) => r.method === 'quant' || personalised(r.method),
  );
}

export function markdown(
  dataset: string,
  command: string,
  rows: ResultRow[],
  plan: RunSpec[],
  finished: ReadonlyMap<string, FinishedRun>,
): string {
  const done = new Set(finished.keys());
  const f = (x: number) => x.toFixed(4);
  const lines: string[] = [
    `# ${dataset}: CHORD reproduction`,
    '',
    `Generated by \`${command}\` from the finished runs in .cache/reproduce (${done.size} of ${plan.length} planned runs done).`,
    'Protocol: 10-core, leave-last-one-out, full ranking over all items; selection on validation NDCG@10 (unmasked);',
    'test numbers through the deployment path (page GRU -> hypernet strategy -> per-channel min–max weights).',
    '"unmasked": items already in the history stay rankable (the paper\'s protocol); "masked": history removed.',
    'Caser has one shared, learned user row (`--caser-user shared`): a shopper on the page has no row of its own, and the paper\'s per-user table, scored with its mean at deployment, lost to it on validation (README).',
    '',
    '## Headline (Table 2): mean over seeds',
    '',
    '| backbone | method | bits | seeds | NDCG@10 | HR@10 | ± std | masked NDCG@10 | masked HR@10 | paper NDCG@10 | paper HR@10 |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const head = rows.filter((r) => r.group === 'headline');
  const twin = (r: ResultRow) => rows.find((x) => x.masked && x.runs.join() === r.runs.join() && x.deploy_budget === r.deploy_budget);
  // The frozen-pretrained runs sit beside the headline rows: the issue asks for both modes.
  const pretrained = rows.filter((r) => r.group === 'pretrained');
  for (const r of [...head, ...pretrained].filter((x) => !x.masked && x.deploy_budget === null).sort((a, b) => headlineOrder(a) - headlineOrder(b))) {
    const m = twin(r);
    const p = PAPER[r.backbone][r.method];
    lines.push(
      `| ${r.backbone} | ${headlineLabel(r)} | ${r.method === 'base' ? 'fp32' : r.avg_bits.toFixed(2)} | ${r.seeds} | ${f(r.ndcg10)} | ${f(r.hr10)} | ${r.seeds > 1 ? f(r.ndcg10_std) : '–'} | ${m ? f(m.ndcg10) : '–'} | ${m ? f(m.hr10) : '–'} | ${p ? f(p[0]) : '–'} | ${p ? f(p[1]) : '–'} |`,
    );
  }
  lines.push(...historyShareTable(rows));
  lines.push('', '## Deployment at lower budgets through T (3-bit-trained CHORD)', '', '| backbone | deploy bits | NDCG@10 | HR@10 | masked NDCG@10 | masked HR@10 | seeds |', '|---|---|---|---|---|---|---|');
  for (const r of head.filter((x) => x.method === 'chord' && !x.masked)) {
    const m = twin(r);
    lines.push(`| ${r.backbone} | ${r.deploy_bits.toFixed(2)} | ${f(r.ndcg10)} | ${f(r.hr10)} | ${m ? f(m.ndcg10) : '–'} | ${m ? f(m.hr10) : '–'} | ${r.seeds} |`);
  }
  lines.push(...quantBudgetTable(rows));
  lines.push('', '## Ablations and the frozen-pretrained runs (mean over the seeds run)', '', '| backbone | group | method | levels | β | w3a3 | init | bits | seeds | NDCG@10 | HR@10 | masked NDCG@10 |', '|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows.filter((x) => x.group !== 'headline' && !x.masked && x.deploy_budget === null)) {
    const m = twin(r);
    lines.push(`| ${r.backbone} | ${r.group} | ${r.method} | ${r.levels} | ${r.beta ?? '–'} | ${r.w3a3 ? 'yes' : 'no'} | ${r.init} | ${r.avg_bits.toFixed(2)} | ${r.seeds} | ${f(r.ndcg10)} | ${f(r.hr10)} | ${m ? f(m.ndcg10) : '–'} |`);
  }
  lines.push(...perSeedTables(compareSeeds(finished)));
  lines.push('', '## CHORD mode, chosen on validation', '', '| backbone | seeds | valid NDCG@10 random-frozen | valid NDCG@10 frozen-pretrained | better |', '|---|---|---|---|---|');
  for (const c of chooseChordMode(finished)) {
    lines.push(`| ${c.backbone} | ${c.seeds.join(', ')} | ${f(c.valid_ndcg10.random)} | ${f(c.valid_ndcg10.pretrained)} | ${c.default} |`);
  }
  lines.push(
    '',
    '## What the personalisation is worth',
    '',
    "Test NDCG@10 with each user's own strategy against the same model given another user's strategy (unmasked / masked).",
    '',
    '| run | own strategy | another user\'s strategy |',
    '|---|---|---|',
  );
  for (const [key, { training }] of finished) {
    const other = training.metrics.testOthersStrategy;
    if (!other) continue;
    const own = training.metrics.test;
    lines.push(`| \`${key}\` | ${f(own.unmasked.ndcg10)} / ${f(own.masked.ndcg10)} | ${f(other.unmasked.ndcg10)} / ${f(other.masked.ndcg10)} |`);
  }
  lines.push(...strategySpreadTable(rows));
  lines.push(...layerBitsTable(rows));
  lines.push(...trainingTimeTable(plan, finished));
  const missing = plan.filter((p) => !done.has(p.key)).map((p) => p.key);
  lines.push('', `## Not run yet (${missing.length})`, '', missing.length ? missing.map((k) => `\`${k}\``).join(', ') : 'none', '');
  return lines.join('\n');
}
