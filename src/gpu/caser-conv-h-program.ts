import wgsl from '../../shaders/caser_conv_h.wgsl?raw';
import { type EngineProgram, ParamsWriter } from './engine-bindings.ts';
import { groupTiles, KernelPlanError, type PackedLayerRef } from './packed-layer-ref.ts';
import { CONV_H_MAX_JOBS, CONV_H_TILE, MAX_GROUPS } from './shader-constants.ts';
import { withWgslLibs } from './wgsl-libs.ts';

const JOB_U32 = 8 + 4 * MAX_GROUPS;
const HEADER_U32 = 4;

/** Caser's horizontal convolutions + max pooling + ReLU, several heights per dispatch (shaders/caser_conv_h.wgsl). */
export const caserConvHProgram: EngineProgram = {
  shaderKey: 'caser_conv_h',
  wgsl: withWgslLibs(wgsl, 'packed', 'packedDot'),
  bindings: ['params', 'act', 'model', 'words', 'ranges', 'chan'],
  paramsBytes: (HEADER_U32 + CONV_H_MAX_JOBS * JOB_U32) * 4,
};

export interface ConvHJob {
  /** conv.h<h>: nh channels of row length h * d. */
  readonly layer: PackedLayerRef;
  readonly h: number;
  /** act offset of this height's nh pooled features. */
  readonly outOffset: number;
  /** model offset of conv.h<h>.bias. */
  readonly biasOffset: number;
}

export interface ConvHPlan {
  readonly params: Uint32Array<ArrayBuffer>;
  readonly tiles: number;
}

export function planCaserConvH(d: number, window: number, imgOffset: number, jobs: readonly ConvHJob[]): ConvHPlan {
  if (jobs.length < 1 || jobs.length > CONV_H_MAX_JOBS) throw new KernelPlanError(`${jobs.length} conv.h jobs`);
  const w = new ParamsWriter(caserConvHProgram.paramsBytes).us(0, [jobs.length, d, window, imgOffset]);
  let tiles = 0;
  jobs.forEach((job, j) => {
    if (job.layer.rowLength !== job.h * d) throw new KernelPlanError(`${job.layer.name}: row length ${job.layer.rowLength} != ${job.h} x ${d}`);
    const base = HEADER_U32 + j * JOB_U32;
    const g = groupTiles(job.layer, CONV_H_TILE, tiles);
    w.us(base, [job.layer.tableStart, job.layer.wordStart, job.h, g.rows.length, job.outOffset, job.biasOffset, tiles, 0]);
    g.rows.forEach((row, i) => w.us(base + 8 + 4 * i, row));
    tiles += g.tiles;
  });
  return { params: w.u32, tiles };
}
