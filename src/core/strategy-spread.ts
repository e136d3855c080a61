/**
 * How personal a set of users' strategies is: how many channels get another bit width from one
 * user to the next, how many channels every user leaves at the same width, and how far the
 * users' average bits lie apart. A diagnostic for the cloud's hypernet: a personalised method
 * whose strategies barely differ between users cannot be worth much over a shared one.
 */
import { averageBits } from './allocation.ts';
import { ChordError } from './errors.ts';
import type { Strategy } from './strategy.ts';

/** Strategies that cannot be compared channel by channel (none, or other layer shapes). */
export class StrategySpreadInputError extends ChordError<'StrategySpreadInputError'> {
  override readonly name = 'StrategySpreadInputError';
  constructor(message: string) {
    super('STRATEGY_SPREAD_INPUT', message);
  }
}

export interface StrategySpread {
  readonly users: number;
  /** Output channels over all layers (the same for every user). */
  readonly channels: number;
  /**
   * Mean over the consecutive pairs (u, u + 1 mod n) of the share of channels whose bit width
   * differs: the pairs of the evaluation's "another user's strategy" (user u gets u + 1's).
   */
  readonly pairDiffer: number;
  /** Share of channels with the same bit width for every user. */
  readonly globalChannels: number;
  /** Per-user weight-weighted average bits (as allocation's averageBits): min, mean, max over users. */
  readonly averageBits: { readonly min: number; readonly mean: number; readonly max: number };
  /**
   * Per layer, in model order: its share of all weights and its bits per weight, mean over users.
   * Says where Λ puts the bits: moving a layer up or down shifts the model's average by that
   * layer's weight share, so one large layer moved up for most users raises the average far more
   * than Γ's β suggests.
   */
  readonly layers: readonly LayerBits[];
}

export interface LayerBits {
  readonly name: string;
  /** The layer's weights over all quantized weights of the model. */
  readonly weightShare: number;
  /** Mean over users of the layer's bits per weight (all rows of a layer are equally long). */
  readonly meanBits: number;
}

/**
 * The spread of `strategies` (one per user, in user order) of one model. Bit widths are compared,
 * not level indices, so strategies with different level tables compare by what the device applies.
 */
export function strategySpread(strategies: readonly Strategy[], rowLengths: readonly number[]): StrategySpread {
  const first = strategies[0];
  if (!first) throw new StrategySpreadInputError('no strategies');
  const widths = strategies.map((s, u) => channelWidths(s, first, u));
  const channels = widths[0]!.length;
  if (channels === 0) throw new StrategySpreadInputError('strategies have no channels');
  const n = widths.length;
  let differSum = 0;
  for (let u = 0; u < n; u++) {
    const a = widths[u]!;
    const b = widths[(u + 1) % n]!;
    let differ = 0;
    for (let c = 0; c < channels; c++) if (a[c] !== b[c]) differ++;
    differSum += differ / channels;
  }
  let global = 0;
  for (let c = 0; c < channels; c++) if (widths.every((w) => w[c] === widths[0]![c])) global++;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  // Summed in user order and divided once, as the deployment evaluation averages them.
  for (const s of strategies) {
    const bits = averageBits(s, rowLengths);
    min = Math.min(min, bits);
    max = Math.max(max, bits);
    sum += bits;
  }
  return {
    users: n,
    channels,
    pairDiffer: differSum / n,
    globalChannels: global / channels,
    averageBits: { min, mean: sum / n, max },
    layers: layerBits(strategies, widths, rowLengths),
  };
}

/** Per-layer weight share and mean bits; `widths` are the users' channel widths, all layers in order. */
function layerBits(strategies: readonly Strategy[], widths: readonly Uint8Array[], rowLengths: readonly number[]): LayerBits[] {
  const layers = strategies[0]!.layers;
  // averageBits above has checked that there is one positive row length per layer.
  const total = layers.reduce((t, l, i) => t + l.levels.length * rowLengths[i]!, 0);
  const out: LayerBits[] = [];
  let offset = 0;
  layers.forEach((layer, l) => {
    const n = layer.levels.length;
    let bits = 0;
    for (const w of widths) for (let c = offset; c < offset + n; c++) bits += w[c]!;
    out.push({ name: layer.name, weightShare: (n * rowLengths[l]!) / total, meanBits: n === 0 ? 0 : bits / (n * widths.length) });
    offset += n;
  });
  return out;
}

/** One user's bit width per channel, all layers in order; the layer shapes must be `like`'s. */
function channelWidths(s: Strategy, like: Strategy, user: number): Uint8Array {
  if (s.layers.length !== like.layers.length) {
    throw new StrategySpreadInputError(`user ${user} has ${s.layers.length} layers, user 0 has ${like.layers.length}`);
  }
  const out = new Uint8Array(s.layers.reduce((n, l) => n + l.levels.length, 0));
  let o = 0;
  s.layers.forEach((layer, l) => {
    const want = like.layers[l]!;
    if (layer.name !== want.name || layer.levels.length !== want.levels.length) {
      throw new StrategySpreadInputError(
        `user ${user} layer ${l} is ${layer.name} × ${layer.levels.length}, user 0 has ${want.name} × ${want.levels.length}`,
      );
    }
    for (const level of layer.levels) out[o++] = s.levelTable[level]!;
  });
  return out;
}
