/**
 * A quantization strategy: for every quantizable layer of a model, one level index (0..3) per
 * output channel. The level table maps an index to a bit width, e.g. [2, 4, 6, 8]. This is what
 * the cloud sends (2 bits per channel) and what the device applies to its frozen weights.
 */
export type LevelTable = readonly [number, number, number, number];

export const DEFAULT_LEVELS: LevelTable = [2, 4, 6, 8];

/**
 * The width of an "off" channel: a level table may start at 0 bits, and a channel at that level
 * has all-zero weights (its output is its bias alone), so the strategy acts as a per-user channel
 * mask over the frozen weights. Only the first entry may be 0.
 */
export const OFF_BITS = 0;

/** Why `table` is not a level table (4 strictly increasing widths, the first in 0..8, the rest in 1..8), or null. */
export function levelTableProblem(table: readonly unknown[]): string | null {
  if (table.length !== 4) return `level table needs 4 entries, got ${table.length}`;
  for (let i = 0; i < 4; i++) {
    const b = table[i];
    const lowest = i === 0 ? OFF_BITS : 1;
    if (typeof b !== 'number' || !Number.isInteger(b) || b < lowest || b > 8) {
      return `level table entry ${i} = ${String(b)} is not an integer in ${lowest}..8`;
    }
    if (i > 0 && b <= (table[i - 1] as number)) return `level table ${JSON.stringify(table)} is not strictly increasing`;
  }
  return null;
}

export interface LayerStrategy {
  /** Layer name as in the model manifest. */
  readonly name: string;
  /** One level index (0..3) per output channel. */
  readonly levels: Uint8Array;
}

export interface Strategy {
  /** Bit width for each level index. Strictly increasing, each in 1..8; the first may be OFF_BITS. */
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
