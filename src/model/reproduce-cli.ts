/**
 * Reproduces the paper's ML-100K tables with the committed code, and the same rows on other datasets:
 *
 *   npm run reproduce -- --data ../shared/datasets/ml-100k [--only sasrec,chord] [--seeds 1,2,3] [--list] [--report]
 *     [--diagnostics <dir>] [--cache <dir>] [--jobs 1] [--workers 1]
 *   npm run reproduce -- --data ../shared/datasets/amazon-toys/Toys_and_Games.txt --seeds 1
 *
 * A dataset is named by its folder; plan.ts's DATASET_PROFILES says what each trains differently (the
 * Amazon sets: k-core 0, a sampled loss, length-bucketed batches, fewer runs). `--profile <name>` runs a
 * second protocol on the same data instead (ml-100k-items21: the paper's item filter), under its own name.
 *
 * Every row is one `npm run train` run (src/model/train-cli.ts, a child process) with fixed settings. A run's
 * output lives in .cache/reproduce/<key>/ and is resumed with --resume if interrupted; a finished run (its
 * training.json has test metrics) is never trained again, so the command can be stopped and restarted at any time and
 * only does what is missing. `--only a,b` keeps runs that match every token (backbone, method, ablation group,
 * s<seed> or a run key); `--list` shows what is done and what is not; `--report` only rewrites the results files.
 * After every finished run it rewrites results/<dataset>.json and .md from all finished runs, so partial
 * progress is always on disk; where results/<dataset>.json reports runs this checkout does not have,
 * into results/<dataset>.partial.json and .md instead (reproduce/partial.ts), so no committed row is lost.
 *
 * `--adopt <dir>,...` copies in finished runs of other caches trained with a planned run's very settings
 * (reproduce/adopt.ts), so a run the strategy study already trained is not trained twice.
 *
 * `--jobs N` trains N runs at once (reproduce/queue.ts; tfjs-wasm uses one thread, so N = the machine's cores), a
 * frozen-pretrained run starting once its Base has finished. `--workers N` gives each run N threads (train
 * --workers: its steps, unless --z-norm or --contrast couple a batch, and its final evaluation): a single run on an
 * idle machine.
 *
 * Selection happens on validation only (early stopping inside train-cli); test numbers are read from
 * training.json, which train-cli computes once at the end through the deployment path.
 *
 * Three diagnostics are added after the fact: the share of the unmasked top-10 taken by the user's own
 * history (historyShare10), how much the test users' strategies differ (core's strategySpread), and
 * the test metrics of every CHORD-family run with each user's strategy put through T to Quant's 3
 * bits (testAtBudget['3']: CHORD's strategies do not land exactly on 3 bits, so only this compares
 * it with Quant at equal bits). Runs trained before train-cli recorded the first or the third, and
 * every quantized run for the second, get them from their artifact through the same deployment path
 * on the test users, cached in sidecars (.cache/reproduce-diagnostics/<key>.json,
 * <key>.strategy-spread.json and <key>.budget-3.json, keyed by the artifact's SHA-256) so the run
 * directories stay untouched and only a retrained artifact is evaluated again.
 * `--report` and every finished run compute the missing ones (the run's own in seconds to minutes).
 *
 * Each rewrite also records every finished run of the cache, its training.json and its sidecars,
 * in results/runs/<dataset>/<key>.json.gz (`--records <dir>`; reproduce/records.ts), without
 * weights but for a Base's best checkpoint. Committed, they carry the finished runs into a checkout
 * without the cache: a recorded run counts as finished while the plan gives it the same settings,
 * the report is built from records and cached runs alike, and a frozen-pretrained run freezes its
 * Base's recorded weights.
 */
import { mkdirSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { runCli, UsageError } from '../cli/run-cli.ts';
import { BACKBONE_KINDS, type BackboneKind } from '../core/backbones.ts';
import type { StrategySpread } from '../core/strategy-spread.ts';
import { loadDataset } from '../data/load.ts';
import { prepareDataset } from '../data/split.ts';
import type { SplitDataset } from '../data/types.ts';
import { adoptRuns } from './reproduce/adopt.ts';
import { writeReport } from './reproduce/partial.ts';
import { readRunRecords, recordsDir, restoreBaseWeights, writeRunRecords } from './reproduce/records.ts';
import { historyShares, othersStrategyRanks, quantBudgetEvals, strategyControls, strategySpreads, testRanks, type StrategyControls, type TestRanks } from './reproduce/diagnostics.ts';
import {
  chooseProfile,
  COMMON_ARGS,
  DEFAULT_SEEDS,
  runsName,
  findTraining,
  kCoreArgs,
  reproduceCacheDir,
  baseRunKey,
  planRuns,
  runTrain,
  selectRuns,
  settingsChanges,
  staleReason,
  trainArgs,
  type RecordedEval,
  type FinishedRun,
  type RunSpec,
  type StaleRun,
} from './reproduce/plan.ts';
import { markdown } from './reproduce/markdown.ts';
import { runQueue } from './reproduce/queue.ts';
import { aggregate, chooseChordMode, compareSeeds, controlComparisons, pairedComparisons, watchedTestRows } from './reproduce/report.ts';

/** A profile's per-backbone arguments, as the results files record them. */
function byBackbone(args: (backbone: BackboneKind) => readonly string[]): Record<BackboneKind, readonly string[]> {
  return Object.fromEntries(BACKBONE_KINDS.map((b) => [b, args(b)])) as Record<BackboneKind, readonly string[]>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      /** A second protocol on the same data (plan.ts DATASET_PROFILES, e.g. ml-100k-items21); default: the data's own. */
      profile: { type: 'string' },
      only: { type: 'string' },
      /** Default: the profile's seeds (plan.ts DEFAULT_SEEDS unless the profile names others). */
      seeds: { type: 'string' },
      /** Default: .cache/reproduce for ML-100K, .cache/reproduce-<dataset> for any other. */
      cache: { type: 'string' },
      results: { type: 'string', default: 'results' },
      /** Sidecars of the diagnostics (history share, strategy spread, Quant budget, per-user test ranks); default: beside the cache, <cache>-diagnostics. */
      diagnostics: { type: 'string' },
      list: { type: 'boolean', default: false },
      report: { type: 'boolean', default: false },
      /** Runs trained at once (each a one-thread tfjs-wasm process): the machine's cores. */
      jobs: { type: 'string', default: '1' },
      /** Threads per run (train --workers) and per report evaluation: how a run computes, not what, so finished runs stay finished. */
      workers: { type: 'string', default: '1' },
      /** Cache folders (comma-separated) whose finished runs with a planned run's settings are copied in (reproduce/adopt.ts). */
      adopt: { type: 'string' },
      /** The committed records of finished runs (reproduce/records.ts); default: <results>/runs/<dataset>. */
      records: { type: 'string' },
    },
  });
  if (!values.data) throw new UsageError('--data <path> is required (e.g. ../shared/datasets/ml-100k)');
  let chosen: ReturnType<typeof chooseProfile>;
  try {
    chosen = chooseProfile(values.data, values.profile);
  } catch (error) {
    throw new UsageError(`--profile: ${(error as Error).message}`);
  }
  const { name: dataset, profile } = chosen;
  const runsAt = runsName(dataset, profile);
  const cache = values.cache ?? reproduceCacheDir(runsAt);
  const defaultSeeds = (profile.seeds ?? DEFAULT_SEEDS).join(',');
  const seedsArg = values.seeds ?? defaultSeeds;
  const seeds = seedsArg.split(',').map(Number);
  const jobs = Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`--jobs must be a positive integer, got ${values.jobs}`);
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new UsageError(`--workers must be a positive integer, got ${values.workers}`);
  const withWorkers = (args: string[]) => (workers > 1 ? [...args, '--workers', String(workers)] : args);
  const plan = planRuns(seeds).filter(profile.keep);
  const selected = values.only ? selectRuns(plan, values.only.split(',').map((s) => s.trim())) : plan;
  const finished = new Map<string, FinishedRun>();
  const stale = new Map<string, StaleRun>();
  const recordsAt = values.records ?? recordsDir(values.results, runsAt);
  const records = readRunRecords(recordsAt);
  const refresh = () => {
    for (const spec of plan) {
      const t = findTraining(join(cache, spec.key));
      const why = t && staleReason(spec, t, { data: values.data!, cacheDir: cache, profile });
      const record = records.get(spec.key);
      if (t && !why) {
        finished.set(spec.key, { spec, ...t });
        stale.delete(spec.key);
      } else if (record && settingsChanges(trainArgs(spec, values.data!, cache, profile), record.training).length === 0) {
        // Finished in an earlier checkout: its record stands in for it (a record of other settings does not).
        finished.set(spec.key, { spec, training: record.training, recorded: record });
        stale.delete(spec.key);
      } else {
        finished.delete(spec.key);
        if (why) stale.set(spec.key, why);
      }
    }
  };
  refresh();
  if (values.adopt) {
    const sources = values.adopt.split(',').map((s) => s.trim()).filter(Boolean);
    const adopted = adoptRuns(selected.filter((r) => !finished.has(r.key)), sources, { data: values.data, cacheDir: cache, profile });
    for (const a of adopted) console.log(`adopted ${a.key} from ${a.from}`);
    refresh();
  }
  const todo = selected.filter((r) => !finished.has(r.key));
  console.log(`${plan.length} runs planned, ${finished.size} finished, ${selected.length} selected, ${todo.length} to run`);
  if (values.list) {
    for (const r of selected) {
      const why = stale.get(r.key);
      const run = finished.get(r.key);
      const from = run && !run.artifactDir ? ` (record, commit ${run.training.code?.commit?.slice(0, 7) ?? 'not recorded'})` : '';
      const base = r.pretrained && !finished.has(baseRunKey(r)) ? ` (freezes ${baseRunKey(r)}, not finished: selected alone it is refused)` : '';
      console.log(run ? `done  ${r.key}${from}` : why ? `todo  ${r.key} (${why.reason})` : `todo  ${r.key}${base}`);
    }
    return;
  }
  // A frozen-pretrained run whose Base is a record: the record's weights go back into the cache first.
  const weightless = values.report
    ? []
    : todo.filter((r) => {
        const base = finished.get(baseRunKey(r));
        return r.pretrained && base !== undefined && !base.artifactDir && !restoreBaseWeights(recordsAt, base.spec.key, join(cache, base.spec.key));
      });
  if (weightless.length > 0) {
    const bases = [...new Set(weightless.map(baseRunKey))];
    throw new UsageError(
      `${weightless.map((r) => r.key).join(', ')} freeze${weightless.length === 1 ? 's' : ''} ${bases.join(', ')}, kept as a record in ${recordsAt} without its weights (<key>.best.json and .bin). ` +
        `Put the Base's run folder into ${cache}, or remove its record to train it again; or leave these runs out with --only.`,
    );
  }
  // A frozen-pretrained run freezes its Base's best checkpoint, which exists, and changes, while that Base
  // trains: selected without an unfinished Base (--only, or another invocation training it), it waits for nothing.
  const todoKeys = new Set(todo.map((r) => r.key));
  const baseless = values.report ? [] : todo.filter((r) => r.pretrained && !finished.has(baseRunKey(r)) && !todoKeys.has(baseRunKey(r)));
  if (baseless.length > 0) {
    const bases = [...new Set(baseless.map(baseRunKey))];
    throw new UsageError(
      `${baseless.map((r) => r.key).join(', ')} freeze${baseless.length === 1 ? 's' : ''} ${bases.join(', ')}, not finished in ${cache} nor in ${recordsAt}. ` +
        `Train ${bases.length === 1 ? 'it' : 'them'} first (--only ${bases.join(' and --only ')}), or wait until the invocation training ${bases.length === 1 ? 'it' : 'them'} is done.`,
    );
  }
  // Rows come from every finished run, whichever invocation (and --only) trained it.
  const command = reproduceCommand(values.data, values.profile, seedsArg, defaultSeeds);
  const cacheDir = cache.replace(/[\\/]+$/, '');
  const diagnosticsDir = values.diagnostics ?? join(dirname(cacheDir), `${basename(cacheDir)}-diagnostics`);
  let split: SplitDataset | undefined;
  const loadSplit = () => (split ??= prepareDataset(loadDataset(values.data!).interactions, { k: profile.kCore }).split);
  let shares = new Map<string, number>();
  let spreads = new Map<string, StrategySpread>();
  let atQuantBudget = new Map<string, RecordedEval>();
  let ranks = new Map<string, TestRanks>();
  let controls = new Map<string, StrategyControls>();
  let others = new Map<string, TestRanks>();
  /** Reads the sidecar diagnostics (computing the missing ones only when asked: that takes seconds to minutes per run). */
  const readShares = async (compute: boolean) => {
    const opts = { diagnosticsDir, workers, ...(compute ? { split: loadSplit, log: (l: string) => console.log(l) } : {}) };
    shares = await historyShares(finished, opts);
    spreads = await strategySpreads(finished, opts);
    atQuantBudget = await quantBudgetEvals(finished, opts);
    ranks = await testRanks(finished, opts);
    controls = await strategyControls(finished, opts);
    others = await othersStrategyRanks(finished, opts);
  };
  // What the profile adds per backbone, as both results files record it.
  const trainArgsByBackbone = byBackbone(profile.extraArgs);
  const hypernetArgsByBackbone = byBackbone((b) => profile.hypernetArgs?.(b) ?? []);
  const write = () => {
    mkdirSync(values.results, { recursive: true });
    const rows = aggregate(finished, { historyShares: shares, spreads, atQuantBudget, controls });
    const paired = pairedComparisons(finished, ranks);
    const controlPaired = controlComparisons(finished, ranks, others, controls);
    const json = {
      dataset,
      protocol: { kCore: profile.kCore, split: 'leave-last-one-out', ranking: 'full', selection: 'validation NDCG@10 (unmasked)' },
      command,
      train_args: [...COMMON_ARGS, ...kCoreArgs(profile)],
      train_args_by_backbone: trainArgsByBackbone,
      hypernet_args_by_backbone: hypernetArgsByBackbone,
      rows,
      per_seed: compareSeeds(finished),
      chord_mode: chooseChordMode(finished),
      paired_ndcg10: paired,
      controls_paired_ndcg10: controlPaired,
      watched_test: watchedTestRows(finished),
    };
    const md = markdown(dataset, command, rows, plan, finished, paired, controlPaired, { cacheDir, recordsDir: recordsAt, kCore: profile.kCore, ...(profile.variantOf ? { published: profile.variantOf } : {}), trainArgs: trainArgsByBackbone, hypernetArgs: hypernetArgsByBackbone });
    // Never fewer runs than the committed table reports: a report short of them is written beside it.
    const written = writeReport(values.results, dataset, new Set(finished.keys()), (j) => (j as typeof json).rows.flatMap((r) => r.runs), { json, markdown: md, indent: 2 });
    const recorded = writeRunRecords(finished, diagnosticsDir, recordsAt);
    if (recorded.length > 0) console.log(`recorded ${recorded.join(', ')} in ${recordsAt}`);
    return written;
  };
  await readShares(values.report);
  const written = write();
  if (values.report) {
    console.log(`wrote ${join(values.results, `${written}.json`)} and .md from ${finished.size} finished runs`);
    return;
  }
  const bar = new cliProgress.SingleBar(
    { format: 'reproduce [{bar}] {value}/{total} runs | {run} | elapsed {duration_formatted} | ETA {eta_formatted}', etaBuffer: 3 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(todo.length, 0, { run: todo[0]?.key ?? '-' });
  let diagnosing: Promise<void> = Promise.resolve();
  let done = 0;
  // A frozen-pretrained run starts once its Base is finished (a Base not run here is finished already).
  const ready = (r: RunSpec) => {
    if (!r.pretrained) return true;
    refresh();
    return finished.has(baseRunKey(r));
  };
  await runQueue(todo, jobs, ready, async (r) => {
    bar.update(done, { run: r.key });
    refresh();
    // Another reproduce process may have finished this run in the meantime.
    if (!finished.has(r.key)) {
      const why = stale.get(r.key);
      if (why?.kind === 'base-changed' || why?.kind === 'settings-changed') {
        // A run from the old Base or settings: kept aside (not deleted), and this one starts afresh.
        const aside = join(`${cacheDir}-stale`, `${r.key}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
        mkdirSync(dirname(aside), { recursive: true });
        renameSync(join(cache, r.key), aside);
        console.log(`\n${r.key}: ${why.reason}; the old run is in ${aside}`);
      }
      await runTrain(withWorkers(trainArgs(r, values.data!, cache, profile)), r.key);
    }
    refresh();
    // The finished run's diagnostics now, not at the end: its record then holds them even if this
    // invocation never ends. One at a time when several runs finish together.
    await (diagnosing = diagnosing.then(async () => {
      await readShares(true);
      write();
    }));
    bar.update(++done, { run: r.key });
  });
  bar.update(todo.length, { run: 'done' });
  bar.stop();
  await readShares(true);
  console.log(`wrote ${join(values.results, `${write()}.json`)} and .md (${finished.size}/${plan.length} runs)`);
}

/**
 * The command the results name as their source: seeds other than the profile's default are part of
 * the plan the report counts runs against, so a rerun of the command must give them.
 */
export function reproduceCommand(data: string, profile: string | undefined, seeds: string, defaultSeeds = DEFAULT_SEEDS.join(',')): string {
  return `npm run reproduce -- --data ${data}${profile ? ` --profile ${profile}` : ''}${seeds === defaultSeeds ? '' : ` --seeds ${seeds}`}`;
}

const REPRODUCE_USAGE = `usage: npm run reproduce -- --data <dataset dir or file> [--only sasrec,chord,s1] [--seeds 1,2,3] [--list] [--report]
       [--profile <name>] [--diagnostics <dir>] [--cache <dir>] [--records <dir>] [--jobs 1] [--workers 1] [--adopt <cache dir>,...]
  Trains every run of the paper's ML-100K tables that is not done yet (resumable; .cache/reproduce/<key>/, or
  .cache/reproduce-<dataset>/ for another dataset, named by its folder) and rewrites results/<dataset>.json and .md.
  --profile ml-100k-items21 runs the second ML-100K protocol (the paper's item counts: items with 21 ratings or
  more), into .cache/reproduce-ml-100k-items21/ and results/ml-100k-items21.*; --profile ml-100k-seeds plans seeds 1-8
  of frozen-pretrained SASRec's Base, Quant, Quant on CHORD's examples, +Custom and CHORD, in ML-100K's own cache and
  records (its seeds 1-3 are those runs), into results/ml-100k-seeds.*. --only keeps runs matching every token (backbone, method, ablation group, s<seed> or a run key); --list shows
  what is done and why a run is due; --report only rewrites the results; --jobs N trains N runs at once (one core each);
  --workers N gives each run N threads (its steps unless --z-norm or --contrast couple a batch, its final
  evaluation), and the report's evaluations too.
  --adopt copies in the finished runs of other cache folders (e.g. the strategy study's .cache/study) that were
  trained with a planned run's very settings, instead of training them again; the results name each one.
  Every finished run is also recorded without its weights (training.json, per-user ranks, diagnostics) in
  results/runs/<dataset>/<key>.json.gz (--records <dir>), a Base with the weights its frozen-pretrained runs freeze:
  committed, a checkout without the cache counts them as finished and trains the rest from the same Bases.`;

if (import.meta.url === `file://${process.argv[1]}`) {
  await runCli({ program: 'reproduce', usage: REPRODUCE_USAGE, main });
}
