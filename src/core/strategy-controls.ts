/**
 * Control strategies for a trained hypernet's own: what a user's strategy is worth against the same
 * bits put on other channels, or against one uniform width. A diagnostic: if a user's strategy
 * with its channels shuffled inside each layer scores as well as the strategy itself, the
 * hypernet's choice of channels carries nothing, only how many bits each layer gets.
 */
import { AllocationInputError, validateLevelTable } from './allocation.ts';
import { streamId, uniformU32 } from './prng.ts';
import { OFF_BITS, type LevelTable, type Strategy } from './strategy.ts';

const TWO_POW_32 = 2 ** 32;

/**
 * `strategy` with each layer's levels permuted by a Fisher–Yates shuffle keyed by (seed, layer
 * name): the same widths per layer, hence the same average bits, on other channels. Pure; the
 * same seed gives the same shuffle on every machine (core's Philox).
 */
export function shuffleChannelsWithinLayers(strategy: Strategy, seed: number): Strategy {
  const layers = strategy.layers.map((layer) => {
    const levels = Uint8Array.from(layer.levels);
    const stream = streamId(`shuffle:${layer.name}`);
    for (let i = levels.length - 1; i > 0; i--) {
      // A u32 scaled to [0, i + 1): no modulo bias worth the name at these channel counts (< 2^16).
      const j = Math.floor((uniformU32(seed, stream, i) / TWO_POW_32) * (i + 1));
      const t = levels[i]!;
      levels[i] = levels[j]!;
      levels[j] = t;
    }
    return { name: layer.name, levels };
  });
  return { levelTable: strategy.levelTable, beta: strategy.beta, layers };
}

/**
 * The level table of a uniform `bits`-wide strategy: it starts at `bits` (level 0, the lowest Γ
 * tier), and the other entries only keep the table valid. Throws AllocationInputError above 5 bits,
 * and at OFF_BITS: a uniform width of 0 would switch every channel off, which is no model.
 */
export function uniformLevelTable(bits: number): LevelTable {
  if (bits === OFF_BITS) throw new AllocationInputError('a uniform strategy needs at least 1 bit: 0 switches every channel off');
  return validateLevelTable([bits, bits + 1, bits + 2, bits + 3]);
}

/** Every channel of `template`'s layers at `bits` (level 0 of uniformLevelTable): what Quant applies. */
export function uniformStrategy(template: Strategy, bits: number): Strategy {
  return {
    levelTable: uniformLevelTable(bits),
    beta: 0,
    layers: template.layers.map((l) => ({ name: l.name, levels: new Uint8Array(l.levels.length) })),
  };
}
