import wgsl from '../../shaders/matmul_fused.wgsl?raw';
import { type EngineProgram, ParamsWriter, type RowMode, rowCount, runKernelProgram } from './engine-bindings.ts';
import { plannedStep, type Step } from './engine-plan.ts';
import { groupTiles, KernelPlanError, packedLayerRef, type PackedLayerRef } from './packed-layer-ref.ts';
import {
  FUSED_BIAS,
  FUSED_MAX_JOBS,
  FUSED_RELU,
  FUSED_RESIDUAL,
  FUSED_ROWS_PER_INVOCATION,
  FUSED_TILE_M,
  FUSED_TILE_N,
  MAX_GROUPS,
} from './shader-constants.ts';

const JOB_U32 = 16 + 4 * MAX_GROUPS;
const HEADER_U32 = 4;

/**
 * Mixed-bit matmul of up to FUSED_MAX_JOBS layers in one dispatch with a bias / ReLU / residual epilogue
 * (shaders/matmul_fused.wgsl), addressing layers inside the model-wide packed buffers.
 */
export const fusedMatmulProgram: EngineProgram = runKernelProgram({
  shaderKey: 'matmul_fused',
  kernel: wgsl,
  libs: ['packed', 'packedDot'],
  more: ['model', 'words', 'ranges', 'chan'],
  paramsBytes: (HEADER_U32 + FUSED_MAX_JOBS * JOB_U32) * 4,
});

/** Rows per workgroup: row blocks of FUSED_ROWS_PER_INVOCATION rows. */
const FUSED_ROWS_PER_WORKGROUP = FUSED_TILE_M * FUSED_ROWS_PER_INVOCATION;

export interface MatmulJob {
  readonly layer: PackedLayerRef;
  readonly rowMode: RowMode;
  readonly fixedRows?: number;
  /** act offsets (elements); strides default to the layer's row length and out channels. */
  readonly xOffset: number;
  readonly xStride?: number;
  readonly yOffset: number;
  readonly yStride?: number;
  /** model offset of the bias (original channel order). */
  readonly biasOffset?: number;
  readonly relu?: boolean;
  /** y = residual + (x W^T + b): act offset and row stride of the residual rows. */
  readonly residual?: { readonly offset: number; readonly stride: number };
}

export interface FusedMatmulPlan {
  readonly params: Uint32Array<ArrayBuffer>;
  /** Channel tiles of all jobs and groups (the grid's x). */
  readonly tiles: number;
  readonly jobs: readonly MatmulJob[];
}

export function planFusedMatmul(jobs: readonly MatmulJob[]): FusedMatmulPlan {
  if (jobs.length < 1 || jobs.length > FUSED_MAX_JOBS) throw new KernelPlanError(`${jobs.length} matmul jobs`);
  const w = new ParamsWriter(fusedMatmulProgram.paramsBytes).u(0, jobs.length);
  let tiles = 0;
  jobs.forEach((job, j) => {
    const { layer } = job;
    const base = HEADER_U32 + j * JOB_U32;
    const g = groupTiles(layer, FUSED_TILE_N, tiles);
    const flags = (job.biasOffset !== undefined ? FUSED_BIAS : 0) | (job.relu ? FUSED_RELU : 0) | (job.residual ? FUSED_RESIDUAL : 0);
    w.us(base, [
      layer.tableStart,
      layer.wordStart,
      layer.rowLength,
      g.rows.length,
      job.xOffset,
      job.xStride ?? layer.rowLength,
      job.yOffset,
      job.yStride ?? layer.outChannels,
      job.biasOffset ?? 0,
      job.residual?.offset ?? 0,
      job.residual?.stride ?? 0,
      flags,
      job.rowMode,
      job.fixedRows ?? 0,
      tiles,
      0,
    ]);
    g.rows.forEach((row, i) => w.us(base + 16 + 4 * i, row));
    tiles += g.tiles;
  });
  return { params: w.u32, tiles, jobs };
}

/** Workgroups for n real history rows: all tiles by the row tiles of the job with most rows. */
export function fusedMatmulGrid(plan: FusedMatmulPlan, n: number): [number, number] {
  const rows = Math.max(...plan.jobs.map((j) => rowCount(j.rowMode, n, j.fixedRows ?? 0)));
  return [rows === 0 ? 0 : plan.tiles, Math.ceil(rows / FUSED_ROWS_PER_WORKGROUP)];
}

/** A step running the jobs `jobs` builds for the current strategy (`layer` resolves a layer name). */
export function fusedMatmulStep(label: string, jobs: (layer: (name: string) => PackedLayerRef) => MatmulJob[]): Step {
  return plannedStep(
    label,
    fusedMatmulProgram,
    (weights) => planFusedMatmul(jobs((name) => packedLayerRef(weights, name))),
    (plan) => plan.params,
    fusedMatmulGrid,
  );
}
