/**
 * The strategy probe: can the bits of a trained artifact carry anything about the user at all?
 * Every test user is ranked through the deployment path with the backbone's input unchanged (the
 * honest history) and the strategy computed from
 *   honest       the honest history (what the page does),
 *   own target   the history plus the user's own test item (an oracle z that knows the answer),
 *   other target the history plus another user's test item (same extra click, wrong answer),
 *   other user   another user's honest history (the personalisation check).
 * If "own target" does not beat "other target", no strategy this model can send moves the target
 * up: the bits cannot carry item identity on this backbone. The mean |Δ log2(rank + 1)| of the
 * target between the honest and the other user's strategy separates "the strategy changes
 * nothing" (≈ 0) from "it changes the ranking, but not usefully" (large, with a null mean
 * difference). inputSpread says where the users' differences are lost before the strategy: the
 * GRU's state, the hypernet trunk's tanh, or the channel scores.
 *
 *   npm run probe -- <artifact dir> --data ../shared/datasets/ml-100k [--k-core 10] [--out file.json]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UsageError, runCli } from '../src/cli/run-cli.ts';
import { channelScores } from '../src/core/allocation.ts';
import { profileClicks } from '../src/core/gru.ts';
import { pairedDifference, type PairedDifference } from '../src/core/paired.ts';
import { ndcgAtK } from '../src/core/metrics.ts';
import { parseCoreThreshold } from '../src/data/kcore.ts';
import { loadDataset } from '../src/data/load.ts';
import { prepareDataset } from '../src/data/split.ts';
import type { SplitDataset } from '../src/data/types.ts';
import { testHistories } from '../src/model/chord/data.ts';
import { DeploymentWorkers, withDeploymentWorkers } from '../src/model/chord/deploy-workers.ts';
import { anotherUser, prepareDeployment, userStrategy, type Deployment, type DeployOptions } from '../src/model/chord/deployed.ts';
import type { UserRanks } from '../src/model/evaluate.ts';
import { readArtifact } from '../src/model/export.ts';

export const PROBE_ARMS = ['honest', 'ownTarget', 'otherTarget', 'otherUser'] as const;
export type ProbeArm = (typeof PROBE_ARMS)[number];

export interface ProbeResult {
  readonly artifact: string;
  readonly modelId: string;
  readonly users: number;
  /** Mean NDCG@10 of each arm, unmasked and masked. */
  readonly ndcg10: Record<ProbeArm, { unmasked: number; masked: number }>;
  /** Per-user NDCG@10 differences with 95% intervals. */
  readonly paired: Record<'ownTarget_vs_honest' | 'ownTarget_vs_otherTarget' | 'honest_vs_otherUser', { unmasked: PairedDifference; masked: PairedDifference }>;
  /** Mean over users of |log2(rank_a + 1) − log2(rank_b + 1)| of the target (unmasked). */
  readonly meanAbsLog2RankShift: { honest_vs_otherUser: number; ownTarget_vs_otherTarget: number };
  /** Mean share of channels whose level differs from the honest strategy's. */
  readonly channelsChanged: { ownTarget: number; otherUser: number };
}

/**
 * Where a hypernet's input loses the users' differences, over the first `sampleUsers` test users'
 * honest histories: the page GRU's state z, the hypernet trunk's tanh, and the channel scores Γ
 * ranks. Cheap (no ranking).
 */
export interface InputSpread {
  readonly users: number;
  /** Mean |z_i| over users and components, and the share of components beyond ±0.95 (the GRU state saturating). */
  readonly zMeanAbs: number;
  readonly zSaturated: number;
  /** Mean over users of ‖z_u − z̄‖ / ‖z̄‖. */
  readonly zRelativeSpread: number;
  /** Share of (user, trunk unit) pairs whose pre-activation is beyond ±3 (tanh within 0.5% of ±1). */
  readonly trunkSaturated: number;
  /**
   * Per layer, the mean over channels of a channel score's standard deviation across users, over
   * the standard deviation across channels of their mean scores; averaged over layers. 0: every user
   * gets the same scores; near 1: users differ as much as channels do.
   */
  readonly scoreSpreadRatio: number;
}

/** The saturation beyond which a component or unit counts as saturated (InputSpread). */
const Z_SATURATED = 0.95;
const TRUNK_SATURATED = 3;

export function inputSpread(dep: Deployment, ds: SplitDataset, gruWindow: number, sampleUsers = 2000): InputSpread {
  const hypernet = dep.hypernet;
  if (!hypernet) throw new UsageError(`${dep.artifact.manifest.modelId} has no hypernet`);
  const tensors = dep.artifact.hypernet!.tensors;
  const trunkW = tensors.get('hyper.trunk.w')!.data;
  const trunkB = tensors.get('hyper.trunk.b')!.data;
  const { zDim, hidden, layers } = hypernet.config;
  const test = testHistories(ds);
  const n = Math.min(sampleUsers, ds.numUsers);
  const zs: Float32Array[] = [];
  const scores: Float32Array[][] = [];
  let zAbs = 0;
  let zSat = 0;
  let trunkSat = 0;
  for (let u = 0; u < n; u++) {
    const z = profileClicks(dep.gru, dep.itemEmbeddings, Array.from(test.histories[u]!).filter((i) => i > 0), { window: gruWindow });
    zs.push(z);
    for (const v of z) {
      zAbs += Math.abs(v);
      if (Math.abs(v) > Z_SATURATED) zSat++;
    }
    for (let r = 0; r < hidden; r++) {
      let a = trunkB[r]!;
      for (let c = 0; c < zDim; c++) a += trunkW[r * zDim + c]! * z[c]!;
      if (Math.abs(a) > TRUNK_SATURATED) trunkSat++;
    }
    const s = hypernet.sensitivities(z);
    scores.push(layers.map((ly, i) => channelScores(s.alphaF[i]!, s.alphaE[i]!, ly.outChannels, ly.rowLength)));
  }
  const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((t, x) => t + x * x, 0));
  const zMean = Array.from({ length: zDim }, (_, c) => zs.reduce((t, z) => t + z[c]!, 0) / n);
  const zRelativeSpread = zs.reduce((t, z) => t + norm(Array.from(z, (x, c) => x - zMean[c]!)), 0) / n / norm(zMean);
  const ratios = layers.map((ly, l) => {
    const channels = ly.outChannels;
    const m = Array.from({ length: channels }, (_, c) => scores.reduce((t, sc) => t + sc[l]![c]!, 0) / n);
    const within = m.reduce((t, mc, c) => t + Math.sqrt(scores.reduce((v, sc) => v + (sc[l]![c]! - mc) ** 2, 0) / n), 0) / channels;
    const mm = mean(m);
    const across = Math.sqrt(m.reduce((t, x) => t + (x - mm) ** 2, 0) / channels);
    return across > 0 ? within / across : 0;
  });
  return {
    users: n,
    zMeanAbs: zAbs / (n * zDim),
    zSaturated: zSat / (n * zDim),
    zRelativeSpread,
    trunkSaturated: trunkSat / (n * hidden),
    scoreSpreadRatio: mean(ratios),
  };
}

export function inputSpreadLine(r: InputSpread): string {
  return (
    `input spread (${r.users} users): z mean |z_i| ${r.zMeanAbs.toFixed(3)}, beyond ±${Z_SATURATED} ${r.zSaturated.toFixed(3)}, ` +
    `relative spread ${r.zRelativeSpread.toFixed(3)}; trunk units saturated ${r.trunkSaturated.toFixed(3)}; channel-score spread ratio ${r.scoreSpreadRatio.toFixed(4)}`
  );
}

/** Per-user NDCG@10 of 0-based target ranks. */
export const ndcgs = (ranks: Int32Array) => Float64Array.from(ranks, (r) => ndcgAtK(r, 10));
export const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, x) => s + x, 0) / a.length;

function levelShare(a: ReturnType<typeof userStrategy>, b: ReturnType<typeof userStrategy>): number {
  let differ = 0;
  let total = 0;
  a.layers.forEach((layer, l) => {
    const other = b.layers[l]!.levels;
    layer.levels.forEach((level, c) => {
      differ += level === other[c] ? 0 : 1;
      total++;
    });
  });
  return differ / total;
}

/**
 * Runs the probe on the deployed artifact of `artifactDir` (named in the result) over the test
 * users of `ds` (the artifact's dataset and split).
 */
export async function probeStrategy(
  dep: Deployment,
  artifactDir: string,
  ds: SplitDataset,
  gruWindow: number,
  /** Arms the caller has already ranked with these very options (the study's own and another user's strategy). */
  ranked: Partial<Record<'honest' | 'otherUser', UserRanks>> = {},
  /** Threads for the arms' rankings, started on `dep` (default: this thread alone). */
  threads: DeploymentWorkers = DeploymentWorkers.start(dep, 1),
): Promise<ProbeResult> {
  if (!dep.hypernet) throw new UsageError(`${dep.artifact.manifest.modelId} has no hypernet: the probe needs a personalised model`);
  const test = testHistories(ds);
  const other = anotherUser(ds.numUsers);
  const plus = (u: number, item: number) => [...test.histories[u]!, item];
  const base: DeployOptions = { gruWindow };
  const arms: Record<ProbeArm, DeployOptions> = {
    honest: base,
    ownTarget: { ...base, strategyHistory: (u) => plus(u, test.targets[u]!) },
    otherTarget: { ...base, strategyHistory: (u) => plus(u, test.targets[other(u)]! || test.targets[u]!) },
    otherUser: { ...base, strategyUser: other },
  };
  const ranks = {} as Record<ProbeArm, UserRanks>;
  for (const arm of PROBE_ARMS) {
    ranks[arm] = (arm === 'honest' || arm === 'otherUser' ? ranked[arm] : undefined) ?? (await threads.rank(test, arms[arm]));
  }
  const pair = (a: ProbeArm, b: ProbeArm) => ({
    unmasked: pairedDifference(ndcgs(ranks[a].unmasked), ndcgs(ranks[b].unmasked)),
    masked: pairedDifference(ndcgs(ranks[a].masked), ndcgs(ranks[b].masked)),
  });
  const shift = (a: ProbeArm, b: ProbeArm) =>
    mean(Array.from(ranks[a].unmasked, (r, i) => Math.abs(Math.log2(r + 1) - Math.log2(ranks[b].unmasked[i]! + 1))));
  const changed = { ownTarget: [] as number[], otherUser: [] as number[] };
  for (const u of ranks.honest.users) {
    const honest = userStrategy(dep, test.histories[u]!, base);
    changed.ownTarget.push(levelShare(honest, userStrategy(dep, plus(u, test.targets[u]!), base)));
    changed.otherUser.push(levelShare(honest, userStrategy(dep, test.histories[other(u)]!, base)));
  }
  const ndcg10 = Object.fromEntries(
    PROBE_ARMS.map((arm) => [arm, { unmasked: mean(ndcgs(ranks[arm].unmasked)), masked: mean(ndcgs(ranks[arm].masked)) }]),
  ) as ProbeResult['ndcg10'];
  return {
    artifact: artifactDir,
    modelId: dep.artifact.manifest.modelId,
    users: ranks.honest.users.length,
    ndcg10,
    paired: {
      ownTarget_vs_honest: pair('ownTarget', 'honest'),
      ownTarget_vs_otherTarget: pair('ownTarget', 'otherTarget'),
      honest_vs_otherUser: pair('honest', 'otherUser'),
    },
    meanAbsLog2RankShift: { honest_vs_otherUser: shift('honest', 'otherUser'), ownTarget_vs_otherTarget: shift('ownTarget', 'otherTarget') },
    channelsChanged: { ownTarget: mean(changed.ownTarget), otherUser: mean(changed.otherUser) },
  };
}

const fmt = (d: PairedDifference) => `${d.mean >= 0 ? '+' : ''}${d.mean.toFixed(4)} [${d.lo.toFixed(4)}, ${d.hi.toFixed(4)}]`;

export function probeLines(r: ProbeResult): string[] {
  const lines = [`${r.modelId}: ${r.users} test users`];
  for (const arm of PROBE_ARMS) lines.push(`  ${arm.padEnd(12)} NDCG@10 ${r.ndcg10[arm].unmasked.toFixed(4)} (masked ${r.ndcg10[arm].masked.toFixed(4)})`);
  for (const [k, d] of Object.entries(r.paired)) lines.push(`  ${k.padEnd(26)} ${fmt(d.unmasked)} (masked ${fmt(d.masked)})`);
  lines.push(`  mean |Δ log2 rank|: honest vs other user ${r.meanAbsLog2RankShift.honest_vs_otherUser.toFixed(3)}, own vs other target ${r.meanAbsLog2RankShift.ownTarget_vs_otherTarget.toFixed(3)}`);
  lines.push(`  channels changed: by the own test item ${r.channelsChanged.ownTarget.toFixed(4)}, by another user ${r.channelsChanged.otherUser.toFixed(4)}`);
  return lines;
}

const USAGE = `usage: npm run probe -- <artifact dir> --data <dataset> [--k-core 10] [--gru-window N] [--workers 1] [--out result.json]

Ranks every test user with the strategy from the honest history, history + own test item, history +
another user's test item, and another user's history (backbone input unchanged); prints NDCG@10 per
arm, paired differences with 95% intervals, the mean |Δ log2 rank| and the channels changed; then
where the hypernet's input loses the users' differences (GRU state, trunk, channel scores).
--gru-window defaults to the run's own (training.json); --workers N ranks on N threads.`;

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      'k-core': { type: 'string', default: '10' },
      'gru-window': { type: 'string' },
      workers: { type: 'string', default: '1' },
      out: { type: 'string' },
    },
  });
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new UsageError(`--workers must be a positive integer, got ${values.workers}`);
  if (positionals.length !== 1) throw new UsageError('give exactly one artifact directory');
  if (!values.data) throw new UsageError('--data <dataset> is required');
  const dir = positionals[0]!;
  const artifact = readArtifact(dir);
  const training = artifact.training as { options?: { gruWindow?: number } } | undefined;
  const gruWindow = Number(values['gru-window'] ?? training?.options?.gruWindow ?? 20);
  const ds = prepareDataset(loadDataset(values.data).interactions, { k: parseCoreThreshold(values['k-core']!) }).split;
  const dep = await prepareDeployment(artifact);
  const result = await withDeploymentWorkers(dep, workers, (threads) => probeStrategy(dep, dir, ds, gruWindow, {}, threads));
  for (const line of probeLines(result)) console.log(line);
  const spread = inputSpread(dep, ds, gruWindow);
  console.log(`  ${inputSpreadLine(spread)}`);
  if (values.out) writeFileSync(values.out, `${JSON.stringify({ ...result, inputSpread: spread }, null, 1)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) void runCli({ program: 'probe', usage: USAGE, main });
