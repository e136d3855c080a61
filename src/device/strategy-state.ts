/**
 * The strategy the Reranker holds: the one received (or the default), and what T makes of it
 * under the current budget. The received strategy is kept as sent, so a budget can be lowered and
 * raised again locally without a request (T is monotone in the budget and never adds bits).
 *
 * Default strategy (before any strategy arrives and with none cached): every channel at the
 * level of 4 bits in the default level table [2, 4, 6, 8]. Why not ask the server for the z of an
 * empty history at load: it would be the same answer for every shopper, cost one request per page
 * view even for shoppers who never click, and not work offline. 4 bits keeps accuracy close to
 * full precision; the first click asks for the shopper's own strategy.
 */
import { averageBits } from '../core/allocation.ts';
import { strategyBitstreamSize } from '../core/bitstream.ts';
import { applyBudget } from '../core/budget.ts';
import type { FrozenLayerInfo } from '../core/budget.ts';
import type { ModelManifest } from '../core/manifest.ts';
import { DEFAULT_LEVELS } from '../core/strategy.ts';
import type { LevelTable, Strategy } from '../core/strategy.ts';

export type StrategySource =
  /** The built-in uniform strategy (see the module comment). */
  | 'default'
  /** The last good strategy from an earlier page load (Cache Storage), not yet refreshed. */
  | 'cache'
  /** Received from the strategy server. */
  | 'network';

/** A strategy as received, before T. */
export interface ReceivedStrategy {
  readonly strategy: Strategy;
  readonly source: StrategySource;
  /** True when this is a last good strategy served because the network failed. */
  readonly stale: boolean;
  /** Bitstream size in bytes (for the default: what it would take). */
  readonly bytes: number;
  /** First 16 hex digits of the bitstream's SHA-256; null for the default. */
  readonly revision: string | null;
  /** When it was fetched (ms since epoch); null for the default. */
  readonly fetchedAt: number | null;
}

/** Public description of the strategy in use (`reranker.strategy`). */
export interface StrategyInfo {
  readonly source: StrategySource;
  /**
   * True when the strategy was not computed for this session's clicks: restored from an earlier
   * load, or kept/served while the strategy server could not be reached.
   */
  readonly stale: boolean;
  readonly revision: string | null;
  readonly fetchedAt: number | null;
  /** Bits per level; a first entry of 0 (OFF_BITS) is the off level: its channels' weights are 0. */
  readonly levelTable: LevelTable;
  /** Weight-weighted average bits in use (after T). */
  readonly averageBits: number;
  /** Weight-weighted average bits as received (before T). */
  readonly receivedAverageBits: number;
  /** Channels it assigns bits to (all quantizable layers). */
  readonly channels: number;
  /** Channels at each level of levelTable, after T (with an off level, [0] counts the channels switched off). */
  readonly channelsPerLevel: readonly [number, number, number, number];
  /** Size of the strategy bitstream in bytes (what travels: 2 bits per channel + header). */
  readonly bytes: number;
  /** Bytes of fp32 frozen weights it personalises. */
  readonly weightBytes: number;
  /** T's target in average bits (after clamping to the lowest level), or null without T. */
  readonly budget: number | null;
}

export interface EffectiveStrategy {
  readonly strategy: Strategy;
  readonly info: StrategyInfo;
}

/** Every channel at the 4-bit level of the default level table. */
export function defaultStrategy(manifest: ModelManifest): ReceivedStrategy {
  const level = DEFAULT_LEVELS.indexOf(4);
  const strategy: Strategy = {
    levelTable: DEFAULT_LEVELS,
    beta: 0,
    layers: manifest.layers.map((l) => ({ name: l.name, levels: new Uint8Array(l.outChannels).fill(level) })),
  };
  return {
    strategy,
    source: 'default',
    stale: false,
    bytes: strategyBitstreamSize(
      manifest.layers.map((l) => l.outChannels),
      new TextEncoder().encode(manifest.modelId).length,
    ),
    revision: null,
    fetchedAt: null,
  };
}

/** T(received, budget) and its public description; budget null = no transform. */
export function effectiveStrategy(
  received: ReceivedStrategy,
  frozen: readonly FrozenLayerInfo[],
  budget: number | null,
): EffectiveStrategy {
  const rowLengths = frozen.map((f) => f.rowLength);
  const receivedAverageBits = averageBits(received.strategy, rowLengths);
  let strategy = received.strategy;
  let avg = receivedAverageBits;
  let target: number | null = null;
  if (budget !== null) {
    const result = applyBudget(received.strategy, frozen, budget);
    strategy = result.strategy;
    avg = result.averageBits;
    target = result.budget;
  }
  const perLevel: [number, number, number, number] = [0, 0, 0, 0];
  let channels = 0;
  let weights = 0;
  strategy.layers.forEach((layer, l) => {
    for (const level of layer.levels) perLevel[level] = perLevel[level]! + 1;
    channels += layer.levels.length;
    weights += layer.levels.length * rowLengths[l]!;
  });
  return {
    strategy,
    info: {
      source: received.source,
      stale: received.stale || received.source === 'cache',
      revision: received.revision,
      fetchedAt: received.fetchedAt,
      levelTable: strategy.levelTable,
      averageBits: avg,
      receivedAverageBits,
      channels,
      channelsPerLevel: perLevel,
      bytes: received.bytes,
      weightBytes: weights * 4,
      budget: target,
    },
  };
}
