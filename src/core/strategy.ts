/**
 * A quantization strategy: for every quantizable layer of a model, one level index (0..3) per
 * output channel. The level table maps an index to a bit width, e.g. [2, 4, 6, 8]. This is what
 * the cloud sends (2 bits per channel) and what the device applies to its frozen weights.
 */
export type LevelTable = readonly [number, number, number, number];

export const DEFAULT_LEVELS: LevelTable = [2, 4, 6, 8];

export interface LayerStrategy {
  /** Layer name as in the model manifest. */
  readonly name: string;
  /** One level index (0..3) per output channel. */
  readonly levels: Uint8Array;
}

export interface Strategy {
  /** Bit width for each level index. Strictly increasing, each in 1..8. */
  readonly levelTable: LevelTable;
  /** Fraction of channels per tier used by Γ (e.g. 0.125); informational once decoded. */
  readonly beta: number;
  readonly layers: readonly LayerStrategy[];
}

/** Bits of one channel under a strategy. */
export function channelBits(strategy: Strategy, layer: number, channel: number): number {
  const l = strategy.layers[layer];
  if (!l) throw new RangeError(`layer ${layer} out of range`);
  const idx = l.levels[channel];
  if (idx === undefined) throw new RangeError(`channel ${channel} out of range`);
  return strategy.levelTable[idx]!;
}
