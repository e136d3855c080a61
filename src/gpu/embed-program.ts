import wgsl from '../../shaders/embed_positions.wgsl?raw';
import { type EngineProgram, ParamsWriter, rowCount, runKernelProgram } from './engine-bindings.ts';
import type { ROWS_ALL, ROWS_FIXED } from './shader-constants.ts';

/** Embedding gather with optional scaled positions (shaders/embed_positions.wgsl). */
export const embedProgram: EngineProgram = runKernelProgram({
  shaderKey: 'embed_positions',
  kernel: wgsl,
  libs: ['itemTable'],
  more: ['model', 'ids', 'items'],
  paramsBytes: 13 * 4,
});

/** Where the 8-bit item table's parts are in the `items` buffer (u32 words). */
export interface ItemTableLayout {
  /** Words of codes per row. */
  readonly rowWords: number;
  /** Word offset of the f16 scales. */
  readonly scalesOffset: number;
}

export interface EmbedParams {
  readonly d: number;
  /** ROWS_ALL: rows [0, n) (SASRec's compacted real items); ROWS_FIXED: rows [0, fixedRows). */
  readonly rowMode: typeof ROWS_ALL | typeof ROWS_FIXED;
  readonly fixedRows?: number;
  readonly outOffset: number;
  /** model offset of the item table (row 0 = padding); unused with `itemTable`. */
  readonly embOffset: number;
  /** model offset of the position table, if positions are added. */
  readonly posOffset?: number;
  readonly scale: number;
  /** ids offsets of the row ids and (with positions) of their window slots. */
  readonly idsOffset: number;
  readonly slotsOffset?: number;
  /** Read the item table from the 8-bit `items` buffer instead of `model`. */
  readonly itemTable?: ItemTableLayout;
}

export function embedParams(p: EmbedParams): Uint32Array<ArrayBuffer> {
  return new ParamsWriter(embedProgram.paramsBytes)
    .us(0, [p.d, p.rowMode, p.fixedRows ?? 0, p.outOffset, p.embOffset, p.posOffset ?? 0, p.posOffset === undefined ? 0 : 1])
    .f(7, p.scale)
    .us(8, [p.idsOffset, p.slotsOffset ?? 0, p.itemTable ? 1 : 0, p.itemTable?.rowWords ?? 0, p.itemTable?.scalesOffset ?? 0]).u32;
}

export function embedGrid(p: EmbedParams, n: number): [number, number] {
  return [rowCount(p.rowMode, n, p.fixedRows ?? 0), 1];
}
