import fixWgsl from '../../shaders/adapt_fix_ties.wgsl?raw';
import wgsl from '../../shaders/adapt_quantize_pack.wgsl?raw';
import type { TransientBuffers } from './buffers.ts';
import { bindInOrder, encodeDispatch } from './dispatch.ts';
import type { ComputeProgram } from './pipeline-cache.ts';
import { withWgslLibs } from './wgsl-libs.ts';

/**
 * One-pass adaptation: min-max quantization and packing of every channel of a model in one
 * dispatch, one invocation per channel, workgroups per width group of each layer (see
 * shaders/adapt_quantize_pack.wgsl); codes within f32 error of a rounding boundary are left to
 * adaptFixProgram, the next dispatch of the same pass. Output words equal core's packLayer.
 */
export const adaptProgram: ComputeProgram = { shaderKey: 'adapt_quantize_pack', wgsl: withWgslLibs(wgsl, 'packed', 'adaptSegments') };

/** Exact codes for the words adaptProgram listed (shaders/adapt_fix_ties.wgsl). */
export const adaptFixProgram: ComputeProgram = { shaderKey: 'adapt_fix_ties', wgsl: withWgslLibs(fixWgsl, 'packed', 'adaptSegments') };

/** Workgroups (of WORKGROUP_SIZE) striding over the fix list: it is short, and a few keep the dispatch cheap. */
export const FIX_WORKGROUPS = 8;

/** Bytes of the fix list for `words` packed words: a u32 count, padding, one (u32, u32) entry per word. */
export function fixListBytes(words: number): number {
  return 8 + 8 * Math.max(1, words);
}

/** Buffer ranges the adapt kernel reads and writes, in the layout of packed-layout.ts. */
export interface AdaptBindings {
  /** Frozen f32 weights of all layers, concatenated. */
  readonly weights: GPUBufferBinding;
  /** SEGMENT_STRIDE u32 per segment (buildAdaptSegments). */
  readonly segments: GPUBufferBinding;
  /** u16 channel index per packed position (buildChannelTable). */
  readonly chan: GPUBufferBinding;
  readonly words: GPUBufferBinding;
  readonly ranges: GPUBufferBinding;
  /** Zero-filled, fixListBytes(capacity) bytes (a new buffer is: WebGPU zero-initialises). */
  readonly fixes: GPUBufferBinding;
}

/**
 * A grid of exactly-or-more `count` workgroups within the per-dimension limit: x first, folded
 * into y (the kernel rebuilds the index as y * num_workgroups.x + x and skips the excess).
 */
export function foldedGrid(count: number, maxPerDimension: number): [number, number] {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`workgroup count ${count}`);
  if (count <= maxPerDimension) return [count, 1];
  const y = Math.ceil(count / maxPerDimension);
  if (y > maxPerDimension) throw new RangeError(`${count} workgroups exceed a ${maxPerDimension}^2 grid`);
  return [Math.ceil(count / y), y];
}

export interface AdaptOptions {
  /**
   * Verification only: quantize every weight with the integer path (adapt_fix_ties.wgsl) instead of
   * only those whose f32 quotient lies near a .5 boundary. Same bytes.
   */
  readonly exactPathOnly?: boolean;
}

export interface AdaptDispatch {
  readonly segmentCount: number;
  /** Workgroups of the first kernel (buildAdaptSegments). */
  readonly tiles: number;
  /** Entries the fix list holds: the number of words the strategy packs. */
  readonly fixCapacity: number;
}

/**
 * Records the adaptation into `pass`: the quantize-and-pack dispatch, then the exact fix-up of the
 * codes it listed (WebGPU orders the two dispatches' storage accesses).
 */
export function encodeAdapt(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  pipelines: { readonly pack: GPUComputePipeline; readonly fix: GPUComputePipeline },
  bindings: AdaptBindings,
  dispatch: AdaptDispatch,
  transient: TransientBuffers,
  options: AdaptOptions = {},
): void {
  const { segmentCount, tiles, fixCapacity } = dispatch;
  // Bindings 1-6 are the same for both kernels (1-4 declared in adapt_segments_lib.wgsl).
  const shared = [bindings.weights, bindings.segments, bindings.chan, bindings.words, bindings.ranges, bindings.fixes];
  const packParams = transient.uniform(new Uint32Array([segmentCount, options.exactPathOnly ? 1 : 0, fixCapacity, 0]), 'adapt params');
  const fixParams = transient.uniform(new Uint32Array([segmentCount, fixCapacity, 0, 0]), 'adapt fix params');
  const group = (pipeline: GPUComputePipeline, params: GPUBuffer, label: string) =>
    bindInOrder(device, pipeline, label, [{ buffer: params }, ...shared]);
  const [x, y] = foldedGrid(tiles, device.limits.maxComputeWorkgroupsPerDimension);
  encodeDispatch(pass, pipelines.pack, group(pipelines.pack, packParams, 'adapt'), x, y);
  encodeDispatch(pass, pipelines.fix, group(pipelines.fix, fixParams, 'adapt fix'), FIX_WORKGROUPS);
}
