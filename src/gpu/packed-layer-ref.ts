/**
 * Where a layer's packed form lives in the model-wide buffers of QuantizedModelWeights, with its
 * width groups under the current strategy: what the engine's kernels need to address one layer
 * (or several in one dispatch) without binding per-layer buffer ranges.
 */
import { GROUP_BITS, GROUP_END, GROUP_START, GROUP_STRIDE } from '../core/packing.ts';
import { ChordError } from '../core/errors.ts';
import type { QuantizedModelWeights } from './quantized-weights.ts';
import { MAX_BITS } from '../core/quantize.ts';
import { MAX_GROUPS } from './shader-constants.ts';

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

export class KernelPlanError extends ChordError<'KernelPlanError'> {
  override readonly name = 'KernelPlanError';
  constructor(message: string) {
    super('GPU_KERNEL_PLAN', message);
  }
}

/** The layer `name` under the strategy of the last adapt() (throws before the first). */
export function packedLayerRef(weights: QuantizedModelWeights, name: string): PackedLayerRef {
  const { outChannels, rowLength, tableStart, wordStart, groups } = weights.layer(name);
  return { name, outChannels, rowLength, tableStart, wordStart, groups };
}

/**
 * Tiles of `tile` packed positions per width group, numbered from `firstTile`: the uniform's
 * (bits, start, end, first tile) rows and the number of tiles used. The kernels find a row's
 * first word by summing the rows of the groups before it, so the groups must cover the packed
 * positions [0, outChannels) in order; anything else throws `fail(message)`.
 */
export function groupTiles(
  layer: Pick<PackedLayerRef, 'outChannels' | 'groups'> & { readonly name?: string },
  tile: number,
  firstTile: number,
  fail: (message: string) => Error = (message) => new KernelPlanError(message),
): { rows: [number, number, number, number][]; tiles: number } {
  const where = layer.name === undefined ? '' : `${layer.name}: `;
  const count = layer.groups.length / GROUP_STRIDE;
  if (!Number.isInteger(count) || count < 1 || count > MAX_GROUPS) throw fail(`${where}${layer.groups.length} group entries`);
  const rows: [number, number, number, number][] = [];
  let tiles = 0;
  let next = 0;
  for (let g = 0; g < count; g++) {
    const bits = layer.groups[g * GROUP_STRIDE + GROUP_BITS]!;
    const start = layer.groups[g * GROUP_STRIDE + GROUP_START]!;
    const end = layer.groups[g * GROUP_STRIDE + GROUP_END]!;
    if (bits > MAX_BITS || start !== next || end <= start || end > layer.outChannels) {
      throw fail(`${where}bad width group ${g} (bits ${bits}, [${start}, ${end}))`);
    }
    rows.push([bits, start, end, firstTile + tiles]);
    tiles += Math.ceil((end - start) / tile);
    next = end;
  }
  if (next !== layer.outChannels) throw fail(`${where}width groups cover ${next} of ${layer.outChannels} channels`);
  return { rows, tiles };
}
