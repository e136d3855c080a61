import wgsl from '../../shaders/caser_conv_v.wgsl?raw';
import { type EngineProgram, ParamsWriter } from './engine-bindings.ts';
import { groupTiles, type PackedLayerRef } from './packed-layer-ref.ts';
import { MAX_GROUPS, WORKGROUP_SIZE } from './shader-constants.ts';
import { withWgslLibs } from './wgsl-libs.ts';

const HEADER_U32 = 8;

/** Caser's vertical convolution over the embedding image (shaders/caser_conv_v.wgsl). */
export const caserConvVProgram: EngineProgram = {
  shaderKey: 'caser_conv_v',
  wgsl: withWgslLibs(wgsl, 'packed', 'packedDot'),
  bindings: ['params', 'act', 'model', 'words', 'ranges', 'chan'],
  paramsBytes: (HEADER_U32 + 4 * MAX_GROUPS) * 4,
};

export interface CaserConvVParams {
  /** conv.v: nv channels of row length L. */
  readonly layer: PackedLayerRef;
  readonly d: number;
  readonly imgOffset: number;
  readonly outOffset: number;
  readonly biasOffset: number;
}

export function caserConvVParams(p: CaserConvVParams): Uint32Array<ArrayBuffer> {
  // One packed position per workgroup row: tiles of 1, so a group's first tile is its first position.
  const { rows } = groupTiles(p.layer, 1, 0);
  const w = new ParamsWriter(caserConvVProgram.paramsBytes).us(0, [
    p.layer.tableStart,
    p.layer.wordStart,
    p.layer.rowLength,
    p.d,
    p.imgOffset,
    p.outOffset,
    p.biasOffset,
    rows.length,
  ]);
  rows.forEach((row, g) => w.us(HEADER_U32 + 4 * g, row));
  return w.u32;
}

/** x: column tiles of WORKGROUP_SIZE, y: one packed position (filter) each. */
export function caserConvVGrid(p: CaserConvVParams): [number, number] {
  return [Math.ceil(p.d / WORKGROUP_SIZE), p.layer.outChannels];
}
