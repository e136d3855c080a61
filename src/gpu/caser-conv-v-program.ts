import wgsl from '../../shaders/caser_conv_v.wgsl?raw';
import { type EngineProgram, ParamsWriter } from './engine-bindings.ts';
import { KernelPlanError, MAX_GROUPS, type PackedLayerRef } from './packed-layer-ref.ts';
import { withPackedScaleLib } from './packed-weights-lib.ts';

const HEADER_U32 = 8;

/** Caser's vertical convolution over the embedding image (shaders/caser_conv_v.wgsl). */
export const caserConvVProgram: EngineProgram = {
  shaderKey: 'caser_conv_v',
  wgsl: withPackedScaleLib(wgsl),
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
  const { groups } = p.layer;
  const count = groups.length / 3;
  if (!Number.isInteger(count) || count < 1 || count > MAX_GROUPS) {
    throw new KernelPlanError(`${p.layer.name}: ${groups.length} group entries`);
  }
  const w = new ParamsWriter(caserConvVProgram.paramsBytes).us(0, [
    p.layer.tableStart,
    p.layer.wordStart,
    p.layer.rowLength,
    p.d,
    p.imgOffset,
    p.outOffset,
    p.biasOffset,
    count,
  ]);
  for (let g = 0; g < count; g++) w.us(HEADER_U32 + 4 * g, [groups[3 * g]!, groups[3 * g + 1]!, groups[3 * g + 2]!, 0]);
  return w.u32;
}

/** x: column tiles of 64, y: one packed position (filter) each. */
export function caserConvVGrid(p: CaserConvVParams): [number, number] {
  return [Math.ceil(p.d / 64), p.layer.outChannels];
}
