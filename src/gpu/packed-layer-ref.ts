/**
 * Where a layer's packed form lives in the model-wide buffers of QuantizedModelWeights, with its
 * width groups under the current strategy: what the engine's kernels need to address one layer
 * (or several in one dispatch) without binding per-layer buffer ranges.
 */
import { GROUP_BITS, GROUP_END, GROUP_START, GROUP_STRIDE } from '../core/packing.ts';
import { ChordError } from '../core/errors.ts';
import type { QuantizedModelWeights } from './quantized-weights.ts';

export interface PackedLayerRef {
  readonly name: string;
  readonly outChannels: number;
  readonly rowLength: number;
  /** Packed position 0 of the layer in ranges / chan (elements). */
  readonly tableStart: number;
  /** Word 0 of the layer in words; its groups' rows follow back to back. */
  readonly wordStart: number;
  /** core's width groups (bits, start, end)*, widths descending. */
  readonly groups: Uint32Array;
}

/** Width groups a kernel's uniform holds per layer (one per width 1..8). */
export const MAX_GROUPS = 8;

export class KernelPlanError extends ChordError {
  constructor(message: string) {
    super('gpu-kernel-plan', message);
  }
}

/** The layer `name` under the strategy of the last adapt() (throws before the first). */
export function packedLayerRef(weights: QuantizedModelWeights, name: string): PackedLayerRef {
  const l = weights.layerIndex(name);
  const region = weights.regions.layers[l]!;
  return {
    name,
    outChannels: region.outChannels,
    rowLength: region.rowLength,
    tableStart: region.tableStart,
    wordStart: region.wordStart,
    groups: weights.layer(l).groups,
  };
}

/**
 * Tiles of `tile` packed positions per width group, numbered from `firstTile`: the uniform's
 * (bits, start, end, first tile) rows and the number of tiles used.
 */
export function groupTiles(layer: PackedLayerRef, tile: number, firstTile: number): { rows: number[][]; tiles: number } {
  const count = layer.groups.length / GROUP_STRIDE;
  if (!Number.isInteger(count) || count < 1 || count > MAX_GROUPS) {
    throw new KernelPlanError(`${layer.name}: ${layer.groups.length} group entries`);
  }
  const rows: number[][] = [];
  let tiles = 0;
  for (let g = 0; g < count; g++) {
    const bits = layer.groups[g * GROUP_STRIDE + GROUP_BITS]!;
    const start = layer.groups[g * GROUP_STRIDE + GROUP_START]!;
    const end = layer.groups[g * GROUP_STRIDE + GROUP_END]!;
    if (bits < 1 || bits > 8 || end <= start || end > layer.outChannels) {
      throw new KernelPlanError(`${layer.name}: bad width group ${g} (bits ${bits}, [${start}, ${end}))`);
    }
    rows.push([bits, start, end, firstTile + tiles]);
    tiles += Math.ceil((end - start) / tile);
  }
  return { rows, tiles };
}
