/**
 * The post-hoc diagnostics of finished reproduce runs (history share, strategy spread, test at
 * Quant's budget, per-user test ranks, per-user ranks with another user's strategy, control
 * strategies), each kept in a sidecar outside the read-only run directory.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RankingMetrics } from '../../core/metrics.ts';
import { strategySpread, type StrategySpread } from '../../core/strategy-spread.ts';
import type { Strategy } from '../../core/strategy.ts';
import type { DeploymentWorkers } from '../chord/deploy-workers.ts';
import type { NamedControl } from '../chord/deployed.ts';
import type { SplitDataset } from '../../data/types.ts';
import { personalised, QUANT_BUDGET, type RecordedEval, type FinishedRun } from './plan.ts';

export const f4 = (x: number) => x.toFixed(4);

/** A run's history-share diagnostic, kept outside its (read-only) run directory. */
export interface HistoryShareSidecar {
  format: 'chord-history-share';
  version: 1;
  run: string;
  /** SHA-256 over the artifact's file names and bytes: another artifact (a retrained run) is evaluated again. */
  artifactHash: string;
  historyShare10: number;
  /** The re-evaluated test NDCG@10; equal to training.json's when the evaluation path is unchanged. */
  ndcg10: { unmasked: number; masked: number };
  matchesTraining: boolean;
  seconds: number;
}

/** Hashes by artifact directory, with the file names, sizes and mtimes they were read at. */
const hashCache = new Map<string, { stamp: string; hash: string }>();

/**
 * SHA-256 over the artifact's file names and bytes. Every diagnostic needs it for every run, and
 * the report is rewritten after each run: the bytes are read again only when a file's name, size
 * or mtime changed (a retrained run rewrites its artifact).
 */
export function artifactHash(dir: string): string {
  const files = readdirSync(dir)
    .sort()
    .map((name) => ({ name, path: join(dir, name), stat: statSync(join(dir, name)) }))
    .filter((f) => f.stat.isFile());
  const stamp = files.map((f) => `${f.name}:${f.stat.size}:${f.stat.mtimeMs}`).join('|');
  const cached = hashCache.get(dir);
  if (cached?.stamp === stamp) return cached.hash;
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f.name}\0`);
    h.update(readFileSync(f.path));
  }
  const hash = h.digest('hex');
  hashCache.set(dir, { stamp, hash });
  return hash;
}

export interface DiagnosticsOptions {
  /** Where the sidecars go (never inside a run directory). */
  diagnosticsDir: string;
  /** The test split the runs were trained on; without it, missing diagnostics stay missing (no evaluation). */
  split?: () => SplitDataset;
  log?: (line: string) => void;
  /** Threads each evaluation is split over (chord/deploy-workers.ts; default 1): the same numbers, sooner on idle cores. */
  workers?: number;
}

/** One diagnostic kept in sidecars: what it is called, which runs have it, and how it is computed. */
interface SidecarDiagnostic<S extends { format: string; version: number; artifactHash: string }, V> {
  /** In the log line of a run it could not be computed for: "<key>: no <name> (why)". */
  name: string;
  format: S['format'];
  version: S['version'];
  /** The sidecar's file name in the diagnostics directory. */
  file: (key: string) => string;
  /** The value the run recorded itself, if any: then no sidecar is read or written. */
  recorded?: (run: FinishedRun) => V | undefined;
  /** Runs the diagnostic means something for. */
  applies: (run: FinishedRun) => boolean;
  compute: (key: string, run: FinishedRun, hash: string, ds: SplitDataset, workers: number) => Promise<S>;
  value: (sidecar: S) => V;
  /** The log line of a freshly computed sidecar, after "<key>: ". */
  describe: (sidecar: S) => string;
}

/**
 * The value of diagnostic `d` per finished run: recorded by the run, else the sidecar of this very
 * artifact (same format and version), else (with `split`) computed from the artifact and written to
 * a new sidecar. A run whose artifact cannot be read is logged and left out; a run known from its
 * committed record (records.ts) has the sidecars it kept, and nothing is computed for it.
 */
async function sidecarValues<S extends { format: string; version: number; artifactHash: string }, V>(
  finished: ReadonlyMap<string, FinishedRun>,
  opts: DiagnosticsOptions,
  d: SidecarDiagnostic<S, V>,
): Promise<Map<string, V>> {
  const out = new Map<string, V>();
  for (const [key, run] of finished) {
    const recorded = d.recorded?.(run);
    if (recorded !== undefined) {
      out.set(key, recorded);
      continue;
    }
    if (!d.applies(run)) continue;
    if (!run.artifactDir) {
      // A run known from its record: the sidecar it kept, when it was computed from the recorded artifact.
      const kept = run.recorded?.sidecars[d.file(key)] as S | undefined;
      if (kept?.format === d.format && kept.version === d.version && kept.artifactHash === run.recorded!.artifactHash) out.set(key, d.value(kept));
      continue;
    }
    const hash = artifactHash(run.artifactDir);
    const file = join(opts.diagnosticsDir, d.file(key));
    if (existsSync(file)) {
      const cached = JSON.parse(readFileSync(file, 'utf8')) as S;
      if (cached.format === d.format && cached.version === d.version && cached.artifactHash === hash) {
        out.set(key, d.value(cached));
        continue;
      }
    }
    if (!opts.split) continue;
    let sidecar: S;
    try {
      sidecar = await d.compute(key, run, hash, opts.split(), opts.workers ?? 1);
    } catch (err) {
      // One unreadable artifact costs its own diagnostic, not the report.
      opts.log?.(`${key}: no ${d.name} (${err instanceof Error ? err.message : String(err)})`);
      continue;
    }
    mkdirSync(opts.diagnosticsDir, { recursive: true });
    writeFileSync(file, `${JSON.stringify(sidecar, null, 2)}\n`);
    opts.log?.(`${key}: ${d.describe(sidecar)}`);
    out.set(key, d.value(sidecar));
  }
  return out;
}

/**
 * Test historyShare10 per finished run: training.json's when train-cli recorded it, else the
 * sidecar of this very artifact, else (with `split`) a deployment-path evaluation of the artifact
 * on the test users, as train-cli's own final evaluation runs it, written to a new sidecar.
 */
export function historyShares(finished: ReadonlyMap<string, FinishedRun>, opts: DiagnosticsOptions): Promise<Map<string, number>> {
  return sidecarValues<HistoryShareSidecar, number>(finished, opts, {
    name: 'history share',
    format: 'chord-history-share',
    version: 1,
    file: (key) => `${key}.json`,
    recorded: (run) => {
      const x = run.training.metrics.test.historyShare10;
      return typeof x === 'number' ? x : undefined;
    },
    applies: () => true,
    compute: evaluateHistoryShare,
    value: (s) => s.historyShare10,
    describe: (s) =>
      `history share of the unmasked top-10 ${s.historyShare10.toFixed(4)} (${s.seconds.toFixed(1)}s` +
      `${s.matchesTraining ? '' : ', WARNING: test NDCG@10 differs from training.json'})`,
  });
}

/** The run's artifact as the evaluation deploys it, checked against the data it is evaluated on. */
async function deployRun(key: string, run: FinishedRun, ds: SplitDataset) {
  const { training, artifactDir } = run;
  if (!training.options || !training.data) throw new Error(`${key}: training.json has no options/data to re-evaluate with`);
  if (training.data.users !== ds.numUsers || training.data.items !== ds.numItems) {
    throw new Error(`${key}: trained on ${training.data.users} users × ${training.data.items} items, the data has ${ds.numUsers} × ${ds.numItems}`);
  }
  // Loaded here, not at the top: they pull in tfjs, which --list and the report rewrites never need.
  const [{ manifestForBackbone, readArtifact }, deployed, { testHistories }, threadsModule] = await Promise.all([
    import('../export.ts'),
    import('../chord/deployed.ts'),
    import('../chord/data.ts'),
    import('../chord/deploy-workers.ts'),
  ]);
  const files = readArtifact(artifactDir!);
  // An artifact from before manifests said frozenWeights ships its weights under a seed manifest;
  // the manifest writeArtifact would give it, in memory only: the run directory stays as it is.
  const dep = await deployed.prepareDeployment({ ...files, manifest: manifestForBackbone(files.manifest, files.backbone) });
  return {
    dep,
    deployed,
    options: training.options,
    /** The options of train-cli's final evaluation of the run. */
    deployOpts: deployed.recordedDeployOptions(training.options),
    test: testHistories(ds),
    /** Runs `f` with the deployment's evaluations split over `workers` threads. */
    onThreads: <T>(workers: number, f: (threads: DeploymentWorkers) => Promise<T>) => threadsModule.withDeploymentWorkers(dep, workers, f),
  };
}

/** A re-evaluation's NDCG@10 equals one training.json recorded under both protocols, to the bit: the run's own evaluation. */
function matchesRecorded(recorded: RecordedEval | undefined, unmasked: number, masked: number): boolean {
  return recorded !== undefined && unmasked === recorded.unmasked.ndcg10 && masked === recorded.masked.ndcg10;
}

/** Per-user ranks as the sidecars keep them (plain JSON arrays). */
function sidecarRanks(r: { users: ArrayLike<number>; unmasked: ArrayLike<number>; masked: ArrayLike<number> }): TestRanks {
  return { users: Array.from(r.users), unmasked: Array.from(r.unmasked), masked: Array.from(r.masked) };
}

async function evaluateHistoryShare(key: string, run: FinishedRun, hash: string, ds: SplitDataset, workers: number): Promise<HistoryShareSidecar> {
  const t0 = performance.now();
  const { deployOpts, test, onThreads } = await deployRun(key, run, ds);
  const r = await onThreads(workers, (threads) => threads.evaluate(test, deployOpts));
  return {
    format: 'chord-history-share',
    version: 1,
    run: key,
    artifactHash: hash,
    historyShare10: r.historyShare10,
    ndcg10: { unmasked: r.unmasked.ndcg10, masked: r.masked.ndcg10 },
    matchesTraining: matchesRecorded(run.training.metrics.test, r.unmasked.ndcg10, r.masked.ndcg10),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** A run's strategy-spread diagnostic (core's strategySpread over its test users), beside the history share's. */
export interface StrategySpreadSidecar {
  format: 'chord-strategy-spread';
  version: 2;
  run: string;
  artifactHash: string;
  spread: StrategySpread;
  /** The strategies' mean average bits equals training.json's test averageBits: the same strategies the run was scored with. */
  matchesTraining: boolean;
  seconds: number;
}

/**
 * How far the test users' strategies (trained bits, no T) differ, per finished quantized run:
 * from the sidecar of this very artifact, else (with `split`) computed through the deployment
 * path (page GRU over the test history -> hypernet) and written to a new sidecar. Base has no
 * strategy; Quant is included, and its one shared strategy gives no spread.
 */
export function strategySpreads(finished: ReadonlyMap<string, FinishedRun>, opts: DiagnosticsOptions): Promise<Map<string, StrategySpread>> {
  return sidecarValues<StrategySpreadSidecar, StrategySpread>(finished, opts, {
    name: 'strategy spread',
    format: 'chord-strategy-spread',
    version: 2,
    file: (key) => `${key}.strategy-spread.json`,
    applies: (run) => run.spec.method !== 'base',
    compute: evaluateStrategySpread,
    value: (s) => s.spread,
    describe: (s) => {
      const { pairDiffer, globalChannels, averageBits: b } = s.spread;
      return (
        `strategy spread over ${s.spread.users} test users: ${pairDiffer.toFixed(4)} of channels differ between consecutive users, ` +
        `${globalChannels.toFixed(4)} global, average bits ${b.min.toFixed(3)}–${b.max.toFixed(3)} (${s.seconds.toFixed(1)}s` +
        `${s.matchesTraining ? '' : ', WARNING: mean average bits differ from training.json'})`
      );
    },
  });
}

async function evaluateStrategySpread(key: string, run: FinishedRun, hash: string, ds: SplitDataset): Promise<StrategySpreadSidecar> {
  const t0 = performance.now();
  const { dep, deployed, options, test } = await deployRun(key, run, ds);
  // The evaluation's users (those with a test target), in user order: consecutive here are consecutive there.
  const strategies: Strategy[] = [];
  test.histories.forEach((h, u) => {
    if (test.targets[u]! > 0) strategies.push(deployed.userStrategy(dep, h, { gruWindow: options.gruWindow }));
  });
  const spread = strategySpread(strategies, dep.artifact.manifest.layers.map((l) => l.rowLength));
  return {
    format: 'chord-strategy-spread',
    version: 2,
    run: key,
    artifactHash: hash,
    spread,
    matchesTraining: spread.averageBits.mean === run.training.metrics.test.averageBits,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** A CHORD-family run's test evaluation at Quant's budget through T, beside its other diagnostics. */
export interface QuantBudgetSidecar {
  format: 'chord-quant-budget';
  version: 1;
  run: string;
  artifactHash: string;
  budget: number;
  /** What train-cli records as testAtBudget['3'] when run with --budgets 3. */
  test: RecordedEval;
  seconds: number;
}

/**
 * Test metrics of every finished CHORD-family run (custom, weighted, chord, either frozen mode)
 * with each user's strategy put through T to QUANT_BUDGET: training.json's testAtBudget when
 * train-cli recorded it, else the sidecar of this very artifact, else (with `split`) train-cli's
 * own budget evaluation run on the artifact and written to a new sidecar.
 */
export function quantBudgetEvals(finished: ReadonlyMap<string, FinishedRun>, opts: DiagnosticsOptions): Promise<Map<string, RecordedEval>> {
  return sidecarValues<QuantBudgetSidecar, RecordedEval>(finished, opts, {
    name: `evaluation at ${QUANT_BUDGET} bits`,
    format: 'chord-quant-budget',
    version: 1,
    file: (key) => `${key}.budget-${QUANT_BUDGET}.json`,
    recorded: (run) => (personalised(run.spec.method) ? run.training.metrics.testAtBudget?.[String(QUANT_BUDGET)] : undefined),
    applies: (run) => personalised(run.spec.method),
    compute: evaluateQuantBudget,
    value: (s) => s.test,
    describe: (s) =>
      `through T to ${s.budget} bits: ${s.test.averageBits?.toFixed(3)} average bits, test NDCG@10 ${f4(s.test.unmasked.ndcg10)}, ` +
      `masked ${f4(s.test.masked.ndcg10)} (${s.seconds.toFixed(1)}s)`,
  });
}

async function evaluateQuantBudget(key: string, run: FinishedRun, hash: string, ds: SplitDataset, workers: number): Promise<QuantBudgetSidecar> {
  const t0 = performance.now();
  const { deployOpts, test, onThreads } = await deployRun(key, run, ds);
  // train-cli's evaluation at one of its --budgets (chord/run.ts), with the options it evaluated the run with.
  const r = await onThreads(workers, (threads) => threads.evaluate(test, { ...deployOpts, budget: QUANT_BUDGET }));
  return { format: 'chord-quant-budget', version: 1, run: key, artifactHash: hash, budget: QUANT_BUDGET, test: r, seconds: (performance.now() - t0) / 1000 };
}

/** Every evaluated test user's 0-based ranks (users in user order), as the run's own test evaluation ranks them. */
export interface TestRanks {
  users: number[];
  unmasked: number[];
  masked: number[];
}

/** A run's per-user test ranks through one deployment (`format` says which), for paired comparisons. */
interface RanksSidecar<F extends string> {
  format: F;
  version: 1;
  run: string;
  artifactHash: string;
  ranks: TestRanks;
  /** NDCG@10 from these ranks equals what training.json recorded for this deployment, under both protocols: the run's own evaluation. */
  matchesTraining: boolean;
  seconds: number;
}

/** The ranks of the run's own test evaluation (each user's own strategy). */
export type TestRanksSidecar = RanksSidecar<'chord-test-ranks'>;

/**
 * Per-user ranks of a run's test evaluation through the deployment path, every user with their own
 * strategy or with another user's (train-cli's check, deployed.anotherUser), checked against
 * `recorded`, the evaluation training.json keeps for that deployment.
 */
async function rankRun<F extends string>(
  format: F,
  key: string,
  run: FinishedRun,
  hash: string,
  ds: SplitDataset,
  recorded: RecordedEval | undefined,
  strategies: 'own' | 'another user',
  workers: number,
): Promise<RanksSidecar<F>> {
  const t0 = performance.now();
  const { deployed, deployOpts, test, onThreads } = await deployRun(key, run, ds);
  const strategyUser = strategies === 'another user' ? { strategyUser: deployed.anotherUser(ds.numUsers) } : {};
  const ranks = sidecarRanks(await onThreads(workers, (threads) => threads.rank(test, { ...deployOpts, ...strategyUser })));
  return {
    format,
    version: 1,
    run: key,
    artifactHash: hash,
    ranks,
    matchesTraining: matchesRecorded(recorded, meanNdcg10(ranks.unmasked), meanNdcg10(ranks.masked)),
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * Each finished run's per-user test ranks (Base included): the sidecar of this very artifact, else
 * (with `split`) the deployment-path evaluation of train-cli, kept per user, written to a new sidecar.
 */
export function testRanks(finished: ReadonlyMap<string, FinishedRun>, opts: DiagnosticsOptions): Promise<Map<string, TestRanks>> {
  return sidecarValues<TestRanksSidecar, TestRanks>(finished, opts, {
    name: 'per-user test ranks',
    format: 'chord-test-ranks',
    version: 1,
    file: (key) => `${key}.ranks.json`,
    applies: () => true,
    compute: (key, run, hash, ds, workers) => rankRun('chord-test-ranks', key, run, hash, ds, run.training.metrics.test, 'own', workers),
    value: (s) => s.ranks,
    describe: (s) =>
      `per-user test ranks of ${s.ranks.users.length} users (${s.seconds.toFixed(1)}s` +
      `${s.matchesTraining ? '' : ', WARNING: their NDCG@10 differs from training.json'})`,
  });
}

/** Mean NDCG@10 of 0-based ranks, by core's RankingMetrics as the evaluation computes it. */
export function meanNdcg10(ranks: readonly number[]): number {
  const m = new RankingMetrics([10]);
  for (const r of ranks) m.add(r);
  return m.summary().ndcg[10]!;
}

/** A personalised run's per-user test ranks with every user given another user's strategy (train-cli's testOthersStrategy). */
export type OthersRanksSidecar = RanksSidecar<'chord-others-ranks'>;

/**
 * Each finished personalised run's per-user test ranks with user u given user u+1's strategy (the
 * evaluation behind training.json's testOthersStrategy, kept per user for a paired own − another's
 * comparison): the sidecar of this very artifact, else (with `split`) ranked and written to a new sidecar.
 */
export function othersStrategyRanks(finished: ReadonlyMap<string, FinishedRun>, opts: DiagnosticsOptions): Promise<Map<string, TestRanks>> {
  return sidecarValues<OthersRanksSidecar, TestRanks>(finished, opts, {
    name: "another user's strategy ranks",
    format: 'chord-others-ranks',
    version: 1,
    file: (key) => `${key}.others-ranks.json`,
    applies: (run) => personalised(run.spec.method),
    compute: (key, run, hash, ds, workers) => rankRun('chord-others-ranks', key, run, hash, ds, run.training.metrics.testOthersStrategy, 'another user', workers),
    value: (s) => s.ranks,
    describe: (s) =>
      `per-user test ranks with another user's strategy, NDCG@10 ${f4(meanNdcg10(s.ranks.unmasked))} (masked ${f4(meanNdcg10(s.ranks.masked))}; ${s.seconds.toFixed(1)}s` +
      `${s.matchesTraining ? '' : ", WARNING: differs from training.json's testOthersStrategy"})`,
  });
}

/** A control strategy's test evaluation of a run: the means, and each user's ranks behind them (for paired comparisons with the run's own). */
export interface ControlEval {
  test: RecordedEval;
  ranks: TestRanks;
}

/** A CHORD-family run's test evaluation with control strategies in place of each user's own. */
export interface StrategyControlsSidecar {
  format: 'chord-strategy-controls';
  version: 2;
  run: string;
  artifactHash: string;
  /** Each user's own strategy with its channels shuffled within each layer (shuffle seed: the user index). */
  shuffled: ControlEval;
  /** Every channel at `uniformBits` (QUANT_BUDGET: Quant's uniform strategy) on this run's trained model. */
  uniform: ControlEval;
  uniformBits: number;
  seconds: number;
}

export interface StrategyControls {
  shuffled: ControlEval;
  uniform: ControlEval;
}

/**
 * Test metrics and per-user ranks of every finished CHORD-family run with two control strategies:
 * the user's own with the same widths per layer on shuffled channels, and Quant's uniform width.
 * From the sidecar of this very artifact, else (with `split`) evaluated through the deployment
 * path and written to a new sidecar. With "another user's strategy" (train-cli) they split what a
 * strategy is worth into the user, the channels and the widths.
 */
export function strategyControls(finished: ReadonlyMap<string, FinishedRun>, opts: DiagnosticsOptions): Promise<Map<string, StrategyControls>> {
  return sidecarValues<StrategyControlsSidecar, StrategyControls>(finished, opts, {
    name: 'control strategies',
    format: 'chord-strategy-controls',
    version: 2,
    file: (key) => `${key}.controls.json`,
    applies: (run) => personalised(run.spec.method),
    compute: evaluateStrategyControls,
    value: (s) => ({ shuffled: s.shuffled, uniform: s.uniform }),
    describe: (s) => {
      const [sh, un] = [s.shuffled.test, s.uniform.test];
      return (
        `test NDCG@10 with channels shuffled within layers ${f4(sh.unmasked.ndcg10)} (masked ${f4(sh.masked.ndcg10)}), ` +
        `uniform ${s.uniformBits} bits ${f4(un.unmasked.ndcg10)} (masked ${f4(un.masked.ndcg10)}) (${s.seconds.toFixed(1)}s)`
      );
    },
  });
}

async function evaluateStrategyControls(key: string, run: FinishedRun, hash: string, ds: SplitDataset, workers: number): Promise<StrategyControlsSidecar> {
  const t0 = performance.now();
  const { deployOpts: base, test, onThreads } = await deployRun(key, run, ds);
  const [shuffled, uniform] = await onThreads(workers, async (threads) => {
    const control = async (strategyControl: NamedControl): Promise<ControlEval> => {
      const { result, ranks } = await threads.evaluateAndRank(test, { ...base, strategyControl });
      return { test: result, ranks: sidecarRanks(ranks) };
    };
    return [await control({ kind: 'shuffled' }), await control({ kind: 'uniform', bits: QUANT_BUDGET })];
  });
  return {
    format: 'chord-strategy-controls',
    version: 2,
    run: key,
    artifactHash: hash,
    shuffled,
    uniform,
    uniformBits: QUANT_BUDGET,
    seconds: (performance.now() - t0) / 1000,
  };
}
