/**
 * The markdown report of a reproduction: the paper's tables beside ours, the per-seed orderings and
 * the diagnostics, one section function each, from report.ts's rows.
 */
import { f4 } from './diagnostics.ts';
import type { BackboneKind } from '../../core/backbones.ts';
import { METHODS, type Method } from '../../core/methods.ts';
import { adoptedFrom, personalised, QUANT_BUDGET, type FinishedRun, type RunSpec } from './plan.ts';
import { halfWidthAt, seedsToResolve, userHalfWidth, type PairedDifference, type SeedNoise } from '../../core/paired.ts';
import { chooseChordMode, compareSeeds, configKey, mean, watchedTestRows, type ControlComparison, type PairedComparison, type PairedOverSeeds, type ResultRow, type SeedColumn, type SeedComparison } from './report.ts';
import { describeCoreThreshold, type CoreThreshold } from '../../data/kcore.ts';

/** Published NDCG@10 / HR@10 beside ours, and under which protocol they were measured. */
interface Published {
  readonly source: string;
  readonly masked: boolean;
  readonly table: Record<BackboneKind, Partial<Record<Method, [number, number]>>>;
}

const PUBLISHED: Readonly<Record<string, Published>> = {
  // The CHORD paper's Table 2 (unmasked full ranking).
  'ml-100k': {
    source: 'paper',
    masked: false,
    table: {
      sasrec: { base: [0.0515, 0.1092], quant: [0.0479, 0.1029], chord: [0.0707, 0.1463] },
      caser: { base: [0.0599, 0.1177], quant: [0.0298, 0.0615], chord: [0.0639, 0.122] },
    },
  },
  // Full ranking with the user's training items excluded (the datasets' READMEs in ../shared/datasets).
  'amazon-toys': { source: 'published', masked: true, table: { sasrec: { base: [0.0374, 0.0675] }, caser: { base: [0.0141, 0.027] } } },
  'amazon-sports': { source: 'published', masked: true, table: { sasrec: { base: [0.0192, 0.035] }, caser: { base: [0.0097, 0.0194] } } },
};

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
 * The markdown section "Whose strategy, which channels, which widths?": each CHORD-family row's
 * test NDCG@10 with the user's own strategy, another user's, the own widths per layer on shuffled
 * channels, and one uniform width, all on the same trained model; then (controlComparisons) own
 * minus each of the three, paired on the test users.
 */
export function strategyControlsTable(rows: readonly ResultRow[], paired: readonly ControlComparison[] = []): string[] {
  if (!rows.some((r) => r.shuffled_channels_ndcg10 !== undefined)) return [];
  const head = {
    title: 'Whose strategy, which channels, which widths?',
    note:
      `Test NDCG@10 (unmasked / masked) of each personalised model, mean over seeds, deployed four ways: each user's own strategy; user u+1's; ` +
      `the user's own widths per layer on channels shuffled within each layer (same average bits; a fixed shuffle per user); and every channel at ${QUANT_BUDGET} bits (Quant's strategy on this model). ` +
      "Own ≈ shuffled says the hypernet's choice of channels carries nothing; uniform ≥ own says its widths do worse than one uniform width.",
    columns: ['own', "another user's", 'channels shuffled', `uniform ${QUANT_BUDGET} bits`],
  };
  const pair = (r: ResultRow, m: ResultRow | undefined, pick: (x: ResultRow) => number | undefined) => {
    const a = pick(r);
    const b = m ? pick(m) : undefined;
    return `${a === undefined ? '–' : f4(a)} / ${b === undefined ? '–' : f4(b)}`;
  };
  const lines = headlineSection(
    rows,
    head,
    (r, m) => [
      pair(r, m, (x) => x.ndcg10),
      pair(r, m, (x) => x.others_strategy_ndcg10),
      pair(r, m, (x) => x.shuffled_channels_ndcg10),
      pair(r, m, (x) => x.uniform_bits_ndcg10),
    ],
    (r) => personalised(r.method),
  );
  if (paired.length === 0) return lines;
  lines.push(
    '',
    "Own strategy minus another user's and minus each control, paired on the test users as in \"Are the differences more than noise?\" (95% intervals; * excludes 0).",
    '',
    "| backbone | method | seeds | own − another user's | masked | own − shuffled | masked | own − uniform | masked |",
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const c of paired) {
    const cells = [c.ownMinusOthers.ndcg10, c.ownMinusShuffled, c.ownMinusUniform].flatMap((d) => [pairedCell(d.unmasked), pairedCell(d.masked)]);
    lines.push(`| ${c.backbone} | ${c.column} | ${c.seeds.join(', ')} | ${cells.join(' | ')} |`);
  }
  return lines;
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
    const config = configKey(spec);
    groups.set(config, [...(groups.get(config) ?? []), run]);
  }
  if (groups.size === 0) return [];
  const lines = [
    '',
    '## Training time',
    '',
    "Per configuration, mean over its finished seeds: epochs run (best epoch), minutes of training (steps and validations, summed over the sessions of a resumed run; the slowest seed in brackets), and seconds per training step, wall (CPU). Measured with tfjs's wasm backend on a 2-core machine; threads is the run's `train --workers` (its seeds' values): a one-thread run here usually shared the machine with a second training, and a two-thread run split each step over both cores. A frozen-pretrained run's minutes leave out its Base, which is its own row.",
    '',
    '| configuration | seeds | threads | epochs (best) | minutes per run (max) | s/step wall (CPU) |',
    '|---|---|---|---|---|---|',
  ];
  const f1 = (x: number) => x.toFixed(1);
  for (const [config, runs] of groups) {
    const t = runs.map((r) => r.training.timing);
    const minutes = t.map((x) => x.trainSeconds / 60);
    const cpu = t.map((x) => x.meanStepCpuSeconds);
    const epochs = runs.map((r) => r.training.epochs);
    const epochCell = epochs.every((e) => e !== undefined) ? `${f1(mean(epochs.map((e) => e!.run)))} (${f1(mean(epochs.map((e) => e!.best)))})` : '–';
    const cpuCell = cpu.every((c): c is number => typeof c === 'number') ? ` (${mean(cpu).toFixed(2)})` : '';
    const threadsCell = [...new Set(t.map((x) => x.workers ?? 1))].sort((a, b) => a - b).join(', ');
    lines.push(`| \`${config}\` | ${runs.length} | ${threadsCell} | ${epochCell} | ${f1(mean(minutes))} (${f1(Math.max(...minutes))}) | ${mean(t.map((x) => x.meanStepSeconds)).toFixed(2)}${cpuCell} |`);
  }
  return lines;
}

/** The paper's protocol for the runs trained with --watch-test: the best test epoch beside the validation-picked one. */
export function watchedTestTable(finished: ReadonlyMap<string, FinishedRun>): string[] {
  const rows = watchedTestRows(finished);
  if (rows.length === 0) return [];
  const f = (x: number) => x.toFixed(4);
  return [
    '',
    "## The paper's protocol: the best test epoch (not a result)",
    '',
    "The paper reports test HR@10 watched during training; these runs ranked the test users after every epoch too (`--watch-test`), which trains and selects nothing differently. Test NDCG@10 (unmasked, the training-time ranking, mean over the seeds) at the epoch validation picked, and at the epoch test would have picked: how much reporting the best test epoch adds.",
    '',
    '| configuration | seeds | validation-picked epoch | best test epoch | difference |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| \`${r.config}\` | ${r.seeds} | ${f(r.selected_test_ndcg10)} | ${f(r.best_test_ndcg10)} | +${f(r.best_test_ndcg10 - r.selected_test_ndcg10)} |`),
  ];
}

/**
 * The markdown section "Per seed": one table per mode, each with its runs' test NDCG@10 and the
 * issue's orderings checked within the seed (Base, the fp32 model, appears in both).
 */
export function perSeedTables(seeds: readonly SeedComparison[]): string[] {
  const f = (x: number) => x.toFixed(4);
  const yesNo = (c: { unmasked: boolean; masked: boolean } | undefined) => (c ? `${c.unmasked ? 'yes' : 'no'} / ${c.masked ? 'yes' : 'no'}` : '–');
  const modes: { title: string; columns: SeedColumn[]; checks: (keyof SeedComparison['checks'])[] }[] = [
    { title: 'random-frozen backbone (the paper\'s mode)', columns: [...METHODS, 'quant-examples'], checks: ['chord_gt_base', 'base_gt_quant', 'ablation_order'] },
    {
      title: 'frozen-pretrained backbone (the Base run of the same seed, frozen)',
      columns: ['base', 'quant-pre', 'custom-pre', 'weighted-pre', 'chord-pre', 'quant-examples-pre'],
      checks: ['pre_gt_base', 'base_gt_pre_quant', 'pre_ablation_order'],
    },
  ];
  const checkNames = ['CHORD > Base', 'Base > Quant', 'Quant < Custom < Weighted < CHORD'];
  const lines = ['', '## Per seed: test NDCG@10 unmasked / masked, and the orderings within each seed', '', 'Checks read "unmasked / masked"; "–" where a run of the check is missing.'];
  for (const mode of modes) {
    const shown = seeds.filter((c) => mode.columns.some((m) => m !== 'base' && c.ndcg10[m] !== undefined));
    if (shown.length === 0) continue;
    // The examples control is a SASRec run of some plans only: its column where a seed has it.
    const columns = mode.columns.filter((m) => !m.startsWith('quant-examples') || shown.some((c) => c.ndcg10[m] !== undefined));
    lines.push('', `**${mode.title}**`, '', `| backbone | seed | ${columns.join(' | ')} | ${checkNames.join(' | ')} |`, `|---|---|${columns.map(() => '---|').join('')}---|---|---|`);
    for (const c of shown) {
      const cell = (m: SeedColumn) => {
        const v = c.ndcg10[m];
        return v ? `${f(v.unmasked)} / ${f(v.masked)}` : '–';
      };
      lines.push(`| ${c.backbone} | ${c.seed} | ${columns.map(cell).join(' | ')} | ${mode.checks.map((k) => yesNo(c.checks[k])).join(' | ')} |`);
    }
  }
  return lines;
}

const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(4)}`;
/** A paired difference with its 95% interval, starred when the interval excludes 0. */
const pairedCell = (d: PairedDifference) => `${signed(d.mean)} [${signed(d.lo)}, ${signed(d.hi)}]${d.lo > 0 || d.hi < 0 ? ' *' : ''}`;

/**
 * The markdown section "Are the differences more than noise?": report.ts's paired comparisons,
 * each difference with its 95% interval, starred where the interval excludes 0.
 */
export function pairedTable(comparisons: readonly PairedComparison[]): string[] {
  if (comparisons.length === 0) return [];
  const lines = [
    '',
    '## Are the differences more than noise? Paired on the same test users',
    '',
    "Test NDCG@10 of the first run minus the second, per test user (averaged over the seeds where both exist), then the mean over users with its 95% interval (normal approximation; users are the independent units). A * marks an interval that excludes 0: a difference this test set resolves; the others are within its noise. The seeds run are taken as they are: a shift one seed gives every user is not in these intervals (\"How many seeds would resolve it?\" measures it wherever two seeds or more ran; where it is large, as between random-frozen runs, these intervals are too narrow). `-pre`: on the frozen-pretrained backbone (the same seed's Base, frozen).",
    '',
    '| backbone | difference | seeds | NDCG@10 unmasked [95% CI] | masked [95% CI] |',
    '|---|---|---|---|---|',
  ];
  for (const c of comparisons) {
    lines.push(`| ${c.backbone} | ${c.a} − ${c.b} | ${c.seeds.join(', ')} | ${pairedCell(c.ndcg10.unmasked)} | ${pairedCell(c.ndcg10.masked)} |`);
  }
  return lines;
}

/** Seeds the projection section looks ahead to, and the most it searches for the seeds that would resolve a difference. */
const PROJECTED_SEEDS = 10;
const MAX_PROJECTED_SEEDS = 100;

/** The rows of the sections below: each paired comparison, then each configuration's own strategy minus another user's. */
function pairedRows(comparisons: readonly PairedComparison[], controls: readonly ControlComparison[]): { backbone: string; label: string; seeds: number[]; paired: PairedOverSeeds }[] {
  return [
    ...comparisons.map((c) => ({ backbone: c.backbone, label: `${c.a} − ${c.b}`, seeds: c.seeds, paired: c })),
    ...controls.map((c) => ({ backbone: c.backbone, label: `${c.column}: own − another user's`, seeds: c.seeds, paired: c.ownMinusOthers })),
  ];
}

/**
 * The markdown section "How many seeds would resolve it?": for each paired difference over two
 * seeds or more (and each configuration's own strategy minus another user's), the noise of its
 * NDCG@10 split by core seedNoise and projected by halfWidthAt / seedsToResolve. A planning aid,
 * labelled as such.
 */
export function seedProjectionTable(comparisons: readonly PairedComparison[], controls: readonly ControlComparison[] = []): string[] {
  const rows = pairedRows(comparisons, controls).filter((r) => r.paired.noise);
  if (rows.length === 0) return [];
  const k = PROJECTED_SEEDS;
  const seedsCell = (mean: number, n: SeedNoise) => {
    const needed = seedsToResolve(mean, n, MAX_PROJECTED_SEEDS);
    if (needed !== null) return String(needed);
    if (mean === 0) return '–';
    return userHalfWidth(n) >= Math.abs(mean) ? 'more users' : `over ${MAX_PROJECTED_SEEDS}`;
  };
  const cells = (d: PairedDifference, n: SeedNoise) => [signed(d.mean), `±${halfWidthAt(n, n.seeds).toFixed(4)}`, `±${halfWidthAt(n, k).toFixed(4)}`, seedsCell(d.mean, n)];
  const lines = [
    '',
    '## How many seeds would resolve it? (a projection for planning, not a result)',
    '',
    "Each seed's per-user NDCG@10 differences split into a part that stays with the user whatever the seed, a shift a seed gives every user, and the rest (a two-way analysis of variance, users × seeds; `src/core/paired.ts`). " +
      `"± now": the 95% half-width at the seeds run, each seed's shift counted once per seed (the intervals above count users as the only units, so they leave that shift out); "± at ${k}": the same over ${k} seeds of the same test users; ` +
      `"seeds to resolve": the fewest seeds whose interval would exclude 0 if the mean stayed where it is; "more users" where the users' own spread alone is wider than the mean, so no number of seeds would; "over ${MAX_PROJECTED_SEEDS}" where each seed's shift needs more seeds than that. ` +
      'The seed shift is estimated from the seeds run (seeds − 1 degrees of freedom), so over three seeds it is rough, and where it is large the intervals above are too narrow: on the random-frozen rows each seed is another random backbone.',
    '',
    `| backbone | difference | seeds | unmasked | ± now | ± at ${k} | seeds to resolve | masked | ± now | ± at ${k} | seeds to resolve |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { backbone, label, seeds, paired } of rows) {
    const n = paired.noise!.ndcg10;
    lines.push(`| ${backbone} | ${label} | ${seeds.join(', ')} | ${[...cells(paired.ndcg10.unmasked, n.unmasked), ...cells(paired.ndcg10.masked, n.masked)].join(' | ')} |`);
  }
  return lines;
}

/**
 * The markdown section "The target's rank": the same paired comparisons on the log2 rank of each
 * user's test item (PairedOverSeeds.log2RankGain), a secondary measure that counts every rank.
 */
export function rankGainTable(comparisons: readonly PairedComparison[], controls: readonly ControlComparison[] = []): string[] {
  const rows = pairedRows(comparisons, controls);
  if (rows.length === 0) return [];
  const withShift = (p: PairedOverSeeds, protocol: 'unmasked' | 'masked') => {
    const n = p.noise?.log2RankGain[protocol];
    return n ? `±${halfWidthAt(n, n.seeds).toFixed(4)}` : '–';
  };
  const lines = [
    '',
    "## The target's rank: the same differences on a finer measure (secondary)",
    '',
    "How much higher the first run ranks each user's test item than the second: log2(rank of the second + 1) − log2(rank of the first + 1), " +
      'positive where the first ranks it higher (+0.1 is a rank about 7% higher), averaged per user over the seeds, then the mean over users with its 95% interval (* excludes 0). ' +
      '"± with shift": the half-width with each seed\'s shift counted once per seed, as in "How many seeds would resolve it?" ("–" with one seed). ' +
      'It counts every rank, so it sees a strategy that moves targets without moving them into or out of the top 10; NDCG@10 stays the measure of the targets.',
    '',
    '| backbone | difference | seeds | unmasked [95% CI] | ± with shift | masked [95% CI] | ± with shift |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const { backbone, label, seeds, paired } of rows) {
    const g = paired.log2RankGain;
    lines.push(`| ${backbone} | ${label} | ${seeds.join(', ')} | ${pairedCell(g.unmasked)} | ${withShift(paired, 'unmasked')} | ${pairedCell(g.masked)} | ${withShift(paired, 'masked')} |`);
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

/** How many finished runs each commit finished (training.json `code`), and how many predate the record. */
export function codeRevisionsLine(runs: readonly FinishedRun[]): string {
  const counts = new Map<string, number>();
  let unrecorded = 0;
  for (const r of runs) {
    const c = r.training.code;
    if (!c) {
      unrecorded++;
      continue;
    }
    const key = `${c.commit.slice(0, 7)}${c.dirty ? ' with uncommitted changes' : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const recorded = [...counts].map(([k, n]) => `${k}: ${n}`).join(', ');
  return (
    `Code: ${runs.length - unrecorded} runs record the commit that finished them${recorded ? ` (${recorded})` : ''}; ` +
    `${unrecorded} do not (finished before runs recorded it, or outside a git checkout; FINDINGS.md ("Training speed" and the training-time item) says what changed in the training code meanwhile).`
  );
}

/** One line per backbone with extra arguments, or one for all runs where every backbone has the same. */
function argsLines(byBackbone: Partial<Record<BackboneKind, readonly string[]>>, line: (who: string, args: string) => string): string[] {
  const entries = Object.entries(byBackbone).map(([b, a]) => [b, a.join(' ')] as const);
  if (entries.length > 1 && entries.every(([, a]) => a !== '' && a === entries[0]![1])) return [line('run', entries[0]![1])];
  return entries.filter(([, a]) => a !== '').map(([b, a]) => line(`${b} run`, a));
}

/** Which rows reproduce took from another cache (`--adopt`) rather than trained itself. */
export function adoptedLines(runs: readonly FinishedRun[]): string[] {
  const adopted = runs.map((r) => [r.spec.key, adoptedFrom(r)] as const).filter((a): a is readonly [string, string] => a[1] !== undefined);
  if (adopted.length === 0) return [];
  return [
    `Adopted: ${adopted.length} runs were trained with the same settings by another cache and copied here (\`reproduce --adopt\`; their training.json keeps the command and commit): ${adopted.map(([k, from]) => `${k} from ${from}`).join(', ')}.`,
  ];
}

export function markdown(
  dataset: string,
  command: string,
  rows: ResultRow[],
  plan: RunSpec[],
  finished: ReadonlyMap<string, FinishedRun>,
  paired: readonly PairedComparison[] = [],
  controls: readonly ControlComparison[] = [],
  setup: {
    cacheDir: string;
    /** Where the runs kept as records only (records.ts) come from. */
    recordsDir?: string;
    kCore: CoreThreshold;
    published?: string;
    trainArgs: Partial<Record<BackboneKind, readonly string[]>>;
    hypernetArgs?: Partial<Record<BackboneKind, readonly string[]>>;
  } = { cacheDir: '.cache/reproduce', kCore: 10, trainArgs: {} },
): string {
  const done = new Set(finished.keys());
  const recordOnly = [...finished.values()].filter((r) => !r.artifactDir && r.recorded).length;
  const f = (x: number) => x.toFixed(4);
  const published = PUBLISHED[setup.published ?? dataset];
  const pub = published ? `${published.source}${published.masked ? ' (masked)' : ''}` : 'published';
  const lines: string[] = [
    `# ${dataset}: CHORD reproduction`,
    '',
    `Generated by \`${command}\` from the finished runs in ${setup.cacheDir}${recordOnly > 0 ? ` and ${recordOnly} kept as records in ${setup.recordsDir ?? 'results/runs'} (their metrics, ranks and diagnostics, not their weights)` : ''} (${done.size} of ${plan.length} planned runs done).`,
    `Protocol: ${setup.kCore === 0 ? 'no k-core filter (the data as published)' : describeCoreThreshold(setup.kCore)}, leave-last-one-out, full ranking over all items; selection on validation NDCG@10 (unmasked);`,
    'test numbers through the deployment path (page GRU -> hypernet strategy -> per-channel min–max weights).',
    '"unmasked": items already in the history stay rankable (the paper\'s protocol); "masked": history removed.',
    'Caser has one shared, learned user row (`--caser-user shared`): a shopper on the page has no row of its own, and the paper\'s per-user table, scored with its mean at deployment, lost to it on validation (FINDINGS.md, "Caser\'s user embedding").',
    ...argsLines(setup.trainArgs, (who, a) => `Every ${who} also trains with \`${a}\` (plan.ts DATASET_PROFILES).`),
    ...argsLines(setup.hypernetArgs ?? {}, (who, a) => `Every ${who} with a hypernet (+Custom, +Weighted, CHORD) also trains with \`${a}\`, chosen on validation (plan.ts DATASET_PROFILES).`),
    codeRevisionsLine([...finished.values()]),
    ...adoptedLines([...finished.values()]),
    '',
    '## Headline (Table 2): mean over seeds',
    '',
    `| backbone | method | bits | seeds | NDCG@10 | HR@10 | ± std | masked NDCG@10 | masked HR@10 | ${pub} NDCG@10 | ${pub} HR@10 |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const head = rows.filter((r) => r.group === 'headline');
  const twin = (r: ResultRow) => rows.find((x) => x.masked && x.runs.join() === r.runs.join() && x.deploy_budget === r.deploy_budget);
  // The frozen-pretrained runs sit beside the headline rows: the issue asks for both modes.
  const pretrained = rows.filter((r) => r.group === 'pretrained');
  for (const r of [...head, ...pretrained].filter((x) => !x.masked && x.deploy_budget === null).sort((a, b) => headlineOrder(a) - headlineOrder(b))) {
    const m = twin(r);
    const p = published?.table[r.backbone][r.method];
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
  lines.push(
    '',
    "## Ablations, the frozen-pretrained runs and Quant on CHORD's examples (mean over the seeds run)",
    '',
    "Group `examples`: SASRec Quant trained on CHORD's examples (`--chord-examples`: every 10 items a window whose last 10 targets it trains), the control for what those examples alone give a uniform model; its paired rows are `quant-examples`.",
    '', '| backbone | group | method | levels | β | w3a3 | init | bits | seeds | NDCG@10 | HR@10 | masked NDCG@10 |', '|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows.filter((x) => x.group !== 'headline' && !x.masked && x.deploy_budget === null)) {
    const m = twin(r);
    lines.push(`| ${r.backbone} | ${r.group} | ${r.method} | ${r.levels} | ${r.beta ?? '–'} | ${r.w3a3 ? 'yes' : 'no'} | ${r.init} | ${r.avg_bits.toFixed(2)} | ${r.seeds} | ${f(r.ndcg10)} | ${f(r.hr10)} | ${m ? f(m.ndcg10) : '–'} |`);
  }
  lines.push(...perSeedTables(compareSeeds(finished)));
  lines.push(...pairedTable(paired));
  lines.push(...seedProjectionTable(paired, controls));
  lines.push(...rankGainTable(paired, controls));
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
  lines.push(...strategyControlsTable(rows, controls));
  lines.push(...layerBitsTable(rows));
  lines.push(...watchedTestTable(finished));
  lines.push(...trainingTimeTable(plan, finished));
  const missing = plan.filter((p) => !done.has(p.key)).map((p) => p.key);
  lines.push('', `## Not run yet (${missing.length})`, '', missing.length ? missing.map((k) => `\`${k}\``).join(', ') : 'none', '');
  return lines.join('\n');
}
