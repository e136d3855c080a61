import wgsl from '../../shaders/caser_conv_v.wgsl?raw';
import { type EngineProgram, ParamsWriter } from './engine-bindings.ts';
import type { PackedLayerRef } from './packed-layer-ref.ts';

/** Caser's vertical convolution over the embedding image (shaders/caser_conv_v.wgsl). */
export const caserConvVProgram: EngineProgram = {
  shaderKey: 'caser_conv_v',
  wgsl,
  bindings: ['params', 'act', 'model', 'words', 'meta', 'scale', 'zero', 'max'],
  paramsBytes: 7 * 4,
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
  return new ParamsWriter(caserConvVProgram.paramsBytes).us(0, [
    p.layer.tableStart,
    p.layer.wordStart,
    p.layer.rowLength,
    p.d,
    p.imgOffset,
    p.outOffset,
    p.biasOffset,
  ]).u32;
}

/** x: column tiles of 64, y: one packed position (filter) each. */
export function caserConvVGrid(p: CaserConvVParams): [number, number] {
  return [Math.ceil(p.d / 64), p.layer.outChannels];
}
