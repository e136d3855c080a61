/**
 * Evaluation through the deployment path, from an artifact directory: per user, z from core's
 * GRU over the last N clicks, the strategy from core's Hypernet (Γ, Λ), optionally the resource
 * transform T (applyBudget), the frozen weights dequantized by core's fakeQuantize at that
 * strategy, and core's CPU forward and scoring (the page's CPU path). The numbers are what the
 * page would get.
 */
import { averageBits } from '../../core/allocation.ts';
import { applyBudget, channelRangesFromWeights, type FrozenLayerInfo } from '../../core/budget.ts';
import { createForward, scoreCandidates, type BackboneForward } from '../../core/forward/index.ts';
import { gruWeightsFromTensors, itemEmbeddingsFromTensors, profileClicks } from '../../core/gru.ts';
import type { GruWeights, ItemEmbeddings } from '../../core/gru.ts';
import { Hypernet } from '../../core/hypernet.ts';
import { frozenWeightsOrigin, resolveFrozenWeights } from '../../core/manifest.ts';
import { fakeQuantize } from '../../core/quantize.ts';
import type { Strategy } from '../../core/strategy.ts';
import { shuffleChannelsWithinLayers, uniformStrategy } from '../../core/strategy-controls.ts';
import { rankUserRows, summarizeUserRows, usersWithTarget, type EvalResult, type UserRankRows, type UserRanks, type UserScorer } from '../evaluate.ts';
import type { ArtifactFiles } from '../export.ts';
import type { HistorySet } from './data.ts';
import { ChordTrainError } from './errors.ts';
import { CHORD_DEFAULTS } from './model.ts';

export interface DeployOptions {
  /** N of the page's GruProfiler (window mode). */
  readonly gruWindow: number;
  /** Average-bit budget for T; none = the strategy as the hypernet sends it. */
  readonly budget?: number;
  /** Activation fake-quantization bits at matmul inputs (w3a3: 3). */
  readonly activationBits?: number;
  /**
   * Whose clicks the strategy is computed from (default: the user's own). A diagnostic: giving
   * every user another user's strategy measures what the personalisation itself is worth.
   */
  readonly strategyUser?: (user: number) => number;
  /**
   * The clicks the strategy is computed from, replacing the (strategyUser's) history; the backbone
   * still ranks from the user's own history. A diagnostic: the strategy probe adds a test item.
   */
  readonly strategyHistory?: (user: number) => ArrayLike<number>;
  /**
   * Replaces the strategy a user gets, after T (default: none). A diagnostic: core's control
   * strategies (channels shuffled within each layer, one uniform width) measure what the
   * hypernet's choice of channels is worth. A named control (NamedControl) can also be evaluated
   * on worker threads (deploy-workers.ts), a function only on this one.
   */
  readonly strategyControl?: ((strategy: Strategy, user: number) => Strategy) | NamedControl;
}

/**
 * The options a run's own final evaluation deployed it with, from the options its training.json
 * records (activationBits null when off; without a GRU window, CHORD's default).
 */
export function recordedDeployOptions(options: { readonly gruWindow?: number; readonly activationBits?: number | null } | undefined): DeployOptions {
  const activationBits = options?.activationBits ?? undefined;
  return { gruWindow: options?.gruWindow ?? CHORD_DEFAULTS.gruWindow, ...(activationBits === undefined ? {} : { activationBits }) };
}

/**
 * Core's control strategies by name (core/strategy-controls.ts): `shuffled` gives each user their own
 * widths on channels shuffled within each layer (seeded by the user index), `uniform` every channel
 * `bits` bits.
 */
export type NamedControl = { readonly kind: 'shuffled' } | { readonly kind: 'uniform'; readonly bits: number };

/** The strategy a named control puts in place of user `user`'s own. */
export function namedControl(control: NamedControl): (strategy: Strategy, user: number) => Strategy {
  switch (control.kind) {
    case 'shuffled':
      return (s, u) => shuffleChannelsWithinLayers(s, u);
    case 'uniform':
      return (s) => uniformStrategy(s, control.bits);
  }
}

/**
 * The user whose strategy user u gets in the personalisation check: the next user (wrapping). The
 * training run records it, the report's paired comparison re-ranks it: one definition for both.
 */
export function anotherUser(numUsers: number): (user: number) => number {
  return (u) => (u + 1) % numUsers;
}

export interface DeployedEval extends EvalResult {
  /** Mean over users of the weight-weighted average bits (undefined for fp32 Base). */
  readonly averageBits: number | undefined;
}

export interface Deployment {
  readonly artifact: ArtifactFiles;
  readonly hypernet: Hypernet | undefined;
  /** The weights that get quantized: the seed's frozen weights, or the shipped ones. */
  readonly frozen: Map<string, Float32Array>;
  /** True when the backbone ships its own layer weights. */
  readonly shipped: boolean;
  readonly frozenInfo: FrozenLayerInfo[];
  readonly gru: GruWeights;
  readonly itemEmbeddings: ItemEmbeddings;
}

/**
 * Prepares an artifact for evaluation with the frozen weights its manifest pins, as every device
 * gets them: regenerated from the seed, or the shipped ones, checked against the manifest hash.
 */
export async function prepareDeployment(artifact: ArtifactFiles): Promise<Deployment> {
  const { manifest } = artifact;
  const layers = await resolveFrozenWeights(manifest, artifact.backbone);
  const frozen = new Map<string, Float32Array>(layers.map((l) => [l.spec.name, l.weights]));
  const hypernet = hypernetOf(artifact);
  const frozenInfo = manifest.layers.map((l) => ({
    rowLength: l.rowLength,
    ranges: channelRangesFromWeights(frozen.get(l.name)!, l.outChannels, l.rowLength),
  }));
  return {
    artifact,
    hypernet,
    frozen,
    shipped: frozenWeightsOrigin(manifest) === 'shipped',
    frozenInfo,
    gru: gruWeightsFromTensors(artifact.gru),
    itemEmbeddings: itemEmbeddingsFromTensors(artifact.backbone),
  };
}

function hypernetOf(artifact: ArtifactFiles): Hypernet | undefined {
  return artifact.hypernet ? new Hypernet(artifact.hypernet.config, artifact.hypernet.tensors) : undefined;
}

/** A Deployment without its Hypernet object: what structured clone carries to a worker thread. */
export type PortableDeployment = Omit<Deployment, 'hypernet'>;

export function portableDeployment(dep: Deployment): PortableDeployment {
  const { hypernet: _hypernet, ...rest } = dep;
  return rest;
}

/** The Deployment again, its Hypernet rebuilt from the artifact's tensors. */
export function deploymentFromPortable(p: PortableDeployment): Deployment {
  return { ...p, hypernet: hypernetOf(p.artifact) };
}

/** The dequantized layer weights of one strategy (core's quantizer, per-channel widths). */
export function strategyWeights(dep: Deployment, strategy: Strategy): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  dep.artifact.manifest.layers.forEach((spec, l) => {
    const levels = strategy.layers[l]!.levels;
    const bits = Uint8Array.from(levels, (level) => strategy.levelTable[level]!);
    out.set(spec.name, fakeQuantize(dep.frozen.get(spec.name)!, spec.shape, bits));
  });
  return out;
}

/** True when both strategies give every channel the same width. */
function sameStrategy(a: Strategy, b: Strategy): boolean {
  if (a.layers.length !== b.layers.length) return false;
  return a.layers.every((layer, l) => {
    const other = b.layers[l]!;
    if (layer.levels.length !== other.levels.length) return false;
    for (let j = 0; j < layer.levels.length; j++) {
      if (a.levelTable[layer.levels[j]!] !== b.levelTable[other.levels[j]!]) return false;
    }
    return true;
  });
}

/** The strategy the page would apply for a click history (z -> Hypernet -> optional T). */
export function userStrategy(dep: Deployment, history: ArrayLike<number>, opts: DeployOptions): Strategy {
  if (!dep.hypernet) throw new ChordTrainError('CHORD_BAD_ARTIFACT', 'artifact has no hypernet');
  const items = Array.from(history).filter((i) => i > 0);
  const z = profileClicks(dep.gru, dep.itemEmbeddings, items, { window: opts.gruWindow });
  const strategy = dep.hypernet.strategy(z);
  return opts.budget === undefined ? strategy : applyBudget(strategy, dep.frozenInfo, opts.budget).strategy;
}

/**
 * The page's scoring of `set`'s users through the deployment path, and the average bits of the
 * strategy each scored user got (none for fp32 Base).
 */
function deploymentScorer(dep: Deployment, set: HistorySet, opts: DeployOptions): { score: UserScorer; bitsOf: Map<number, number> | undefined } {
  const { manifest, backbone } = dep.artifact;
  const rowLengths = manifest.layers.map((l) => l.rowLength);
  const numItems = manifest.numItems;
  const forwardOptions = opts.activationBits === undefined ? {} : { activationBits: opts.activationBits };
  // Base ships fp32 weights and has no hypernet: they are used as they are.
  const fixed = dep.hypernet ? undefined : dep.frozen;
  const forward: BackboneForward = createForward(manifest, backbone, fixed ?? dep.frozen, forwardOptions);
  const ids = Int32Array.from({ length: numItems }, (_, i) => i + 1);
  const bitsOf = fixed ? undefined : new Map<number, number>();
  const control = typeof opts.strategyControl === 'object' ? namedControl(opts.strategyControl) : opts.strategyControl;
  // Quantizing the frozen weights is most of a user's cost; users with the strategy of the user
  // before them (every user under Quant) reuse the weights already set.
  let applied: Strategy | undefined;
  const score: UserScorer = (users) => {
    const out = new Float32Array(users.length * numItems);
    users.forEach((u, k) => {
      const history = set.histories[u]!;
      if (bitsOf) {
        const clicks = opts.strategyHistory?.(u) ?? set.histories[opts.strategyUser?.(u) ?? u]!;
        const own = userStrategy(dep, clicks, opts);
        const strategy = control ? control(own, u) : own;
        bitsOf.set(u, averageBits(strategy, rowLengths));
        if (!applied || !sameStrategy(applied, strategy)) forward.setWeights(strategyWeights(dep, strategy));
        applied = strategy;
      }
      const rep = forward.represent(history);
      scoreCandidates(rep, forward.scoring, ids, out.subarray(k * numItems, (k + 1) * numItems));
    });
    return out;
  };
  return { score, bitsOf };
}

/** One part of a deployment evaluation: its users' ranks and (with a hypernet) their strategies' average bits. */
export interface DeploymentRows {
  readonly rows: UserRankRows;
  /** Per user of `rows` (same order); absent for fp32 Base. */
  readonly bits?: Float64Array;
}

/**
 * Ranks `users` of `set` (default: every user with a target) through the deployment path: a part
 * of an evaluation that deploy-workers.ts computes on several threads and mergeDeploymentRows joins.
 */
export function rankDeploymentRows(dep: Deployment, set: HistorySet, opts: DeployOptions, users?: readonly number[]): DeploymentRows {
  const { score, bitsOf } = deploymentScorer(dep, set, opts);
  const rows = rankUserRows(set, dep.artifact.manifest.numItems, score, 128, users ?? usersWithTarget(set));
  return { rows, ...(bitsOf ? { bits: Float64Array.from(rows.users, (u) => bitsOf.get(u)!) } : {}) };
}

/** The metrics, per-user ranks and mean bits (summed in user order) of the parts of one deployment evaluation. */
export function mergeDeploymentRows(parts: readonly DeploymentRows[]): { result: DeployedEval; ranks: UserRanks } {
  const { result, ranks } = summarizeUserRows(parts.map((p) => p.rows));
  const bitsOf = new Map<number, number>();
  for (const p of parts) p.bits?.forEach((b, i) => bitsOf.set(p.rows.users[i]!, b));
  let sum = 0;
  for (const u of ranks.users) sum += bitsOf.get(u) ?? 0;
  return { result: { ...result, averageBits: bitsOf.size ? sum / bitsOf.size : undefined }, ranks };
}

/** Full-ranking metrics of the artifact on `set` through the deployment path, and each user's ranks behind them. */
export function evaluateAndRankDeployment(dep: Deployment, set: HistorySet, opts: DeployOptions): { result: DeployedEval; ranks: UserRanks } {
  return mergeDeploymentRows([rankDeploymentRows(dep, set, opts)]);
}

/** Full-ranking metrics of the artifact on `set` through the deployment path. */
export function evaluateDeployment(dep: Deployment, set: HistorySet, opts: DeployOptions): DeployedEval {
  return evaluateAndRankDeployment(dep, set, opts).result;
}

/** Each test user's ranks through the deployment path: the per-user numbers behind evaluateDeployment's means. */
export function rankDeployment(dep: Deployment, set: HistorySet, opts: DeployOptions): UserRanks {
  return evaluateAndRankDeployment(dep, set, opts).ranks;
}
