import wgsl from '../../shaders/matmul_mixed.wgsl?raw';
import { ChordError } from '../core/errors.ts';
import { wordsPerRow } from '../core/packing.ts';
import { bindingSize, type PackedLayerBindings, type TransientBuffers } from './buffers.ts';
import { bindInOrder, encodeDispatch } from './dispatch.ts';
import { groupTiles } from './packed-layer-ref.ts';
import type { ComputeProgram } from './pipeline-cache.ts';
import { MATMUL_TILE_M, MATMUL_TILE_N, MAX_GROUPS } from './shader-constants.ts';
import { withWgslLibs } from './wgsl-libs.ts';

/** y = x . deq(W)^T + b over a packed layer, unpacking in registers (shaders/matmul_mixed.wgsl). */
export const mixedMatmulProgram: ComputeProgram = { shaderKey: 'matmul_mixed', wgsl: withWgslLibs(wgsl, 'packed', 'packedDot') };

const HEADER_U32 = 12;

export class MatmulArgumentError extends ChordError<'MatmulArgumentError'> {
  override readonly name = 'MatmulArgumentError';
  constructor(message: string) {
    super('GPU_MATMUL_ARGUMENTS', message);
  }
}

export interface MixedMatmulArgs {
  readonly layer: PackedLayerBindings;
  /** M: rows of x (sequence positions). */
  readonly rows: number;
  /** Row-major [rows, rowLength] f32, starting at element `xOffset`. */
  readonly x: GPUBufferBinding;
  readonly xOffset?: number;
  /** Output y[yOffset + m * yStride + channel], channels in original order; yStride defaults to outChannels. */
  readonly y: GPUBufferBinding;
  readonly yOffset?: number;
  readonly yStride?: number;
  /** outChannels f32 in original channel order. */
  readonly bias?: GPUBufferBinding;
}

export interface MatmulPlan {
  /** Contents of the uniform (struct Params in the shader). */
  readonly params: Uint32Array;
  /** Workgroups: channel tiles of all width groups, row tiles. */
  readonly grid: readonly [number, number];
}

function checkCount(v: number, what: string, min: number): number {
  if (!Number.isSafeInteger(v) || v < min) throw new MatmulArgumentError(`${what} = ${v}`);
  return v;
}

/** Uniform contents and grid for one matmul; validates sizes against the bound ranges. */
export function planMixedMatmul(args: MixedMatmulArgs, maxPerDimension = 65535): MatmulPlan {
  const { layer } = args;
  const rows = checkCount(args.rows, 'rows', 1);
  const xOffset = checkCount(args.xOffset ?? 0, 'xOffset', 0);
  const yOffset = checkCount(args.yOffset ?? 0, 'yOffset', 0);
  const yStride = checkCount(args.yStride ?? layer.outChannels, 'yStride', layer.outChannels);
  const K = layer.rowLength;
  const N = layer.outChannels;
  if (bindingSize(args.x) < (xOffset + rows * K) * 4) {
    throw new MatmulArgumentError(`x holds ${bindingSize(args.x) / 4} floats, needs ${xOffset + rows * K}`);
  }
  if (bindingSize(args.y) < (yOffset + (rows - 1) * yStride + N) * 4) {
    throw new MatmulArgumentError(`y holds ${bindingSize(args.y) / 4} floats, needs ${yOffset + (rows - 1) * yStride + N}`);
  }
  if (args.bias && bindingSize(args.bias) < N * 4) {
    throw new MatmulArgumentError(`bias holds ${bindingSize(args.bias) / 4} floats, needs ${N}`);
  }
  const { rows: groupRows, tiles } = groupTiles(layer, MATMUL_TILE_N, 0, (message) => new MatmulArgumentError(message));
  const params = new Uint32Array(HEADER_U32 + 4 * MAX_GROUPS);
  params.set([rows, K, N, groupRows.length, xOffset, yOffset, yStride, args.bias ? 1 : 0, layer.wordStart, layer.tableStart]);
  let words = 0;
  groupRows.forEach((row, g) => {
    const [bits, start, end] = row;
    params.set(row, HEADER_U32 + 4 * g);
    words += (end - start) * wordsPerRow(bits, K);
  });
  // The kernel reads words, ranges (8 B) and chan (u16 pairs) of the layer from its offsets.
  for (const [what, binding, need] of [
    ['words', layer.words, (layer.wordStart + words) * 4],
    ['ranges', layer.ranges, (layer.tableStart + N) * 8],
    ['chan', layer.chan, Math.ceil((layer.tableStart + N) / 2) * 4],
  ] as const) {
    if (bindingSize(binding) < need) throw new MatmulArgumentError(`${what} holds ${bindingSize(binding)} bytes, the layer needs ${need}`);
  }
  const rowTiles = Math.ceil(rows / MATMUL_TILE_M);
  if (tiles > maxPerDimension || rowTiles > maxPerDimension) {
    throw new MatmulArgumentError(`grid ${tiles} x ${rowTiles} exceeds ${maxPerDimension} per dimension`);
  }
  return { params, grid: [tiles, rowTiles] };
}

/** Records one mixed-bit matmul into `pass`; its uniform goes to `transient` (destroy after submit). */
export function encodeMixedMatmul(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  pipeline: GPUComputePipeline,
  args: MixedMatmulArgs,
  transient: TransientBuffers,
): void {
  const plan = planMixedMatmul(args, device.limits.maxComputeWorkgroupsPerDimension);
  const params = transient.uniform(plan.params, 'matmul params');
  const { layer } = args;
  const bindGroup = bindInOrder(device, pipeline, 'matmul_mixed', [
    { buffer: params },
    args.x,
    layer.words,
    layer.ranges,
    layer.chan,
    // Without a bias the kernel never reads binding 5, but 'auto' layouts still need it bound.
    args.bias ?? args.x,
    args.y,
  ]);
  encodeDispatch(pass, pipeline, bindGroup, plan.grid[0], plan.grid[1]);
}
