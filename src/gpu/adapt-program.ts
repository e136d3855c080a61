import wgsl from '../../shaders/adapt_quantize_pack.wgsl?raw';
import type { TransientBuffers } from './buffers.ts';
import type { ComputeProgram } from './pipeline-cache.ts';

/**
 * One-pass adaptation: min-max quantization and packing of every channel of a model, one
 * workgroup per channel (see shaders/adapt_quantize_pack.wgsl). Output bytes equal core's packLayer.
 */
export const adaptProgram: ComputeProgram = { shaderKey: 'adapt_quantize_pack', wgsl };

/** Buffer ranges the adapt kernel reads and writes, in the layout of packed-layout.ts. */
export interface AdaptBindings {
  /** Frozen f32 weights of all layers, concatenated. */
  readonly weights: GPUBufferBinding;
  /** ADAPT_ROW_STRIDE u32 per channel (buildAdaptRows). */
  readonly rows: GPUBufferBinding;
  readonly words: GPUBufferBinding;
  readonly scale: GPUBufferBinding;
  readonly zero: GPUBufferBinding;
  readonly max: GPUBufferBinding;
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
   * Verification only: quantize every weight on the emulated-f64 path instead of only those whose
   * f32 quotient lies near a .5 boundary. Same bytes, several times slower.
   */
  readonly exactPathOnly?: boolean;
}

/** Records the adapt dispatch for `rowCount` channels into `pass`. */
export function encodeAdapt(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  pipeline: GPUComputePipeline,
  bindings: AdaptBindings,
  rowCount: number,
  transient: TransientBuffers,
  options: AdaptOptions = {},
): void {
  const params = transient.uniform(new Uint32Array([rowCount, options.exactPathOnly ? 1 : 0, 0, 0]), 'adapt params');
  const bindGroup = device.createBindGroup({
    label: 'adapt',
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: params } },
      { binding: 1, resource: bindings.weights },
      { binding: 2, resource: bindings.rows },
      { binding: 3, resource: bindings.words },
      { binding: 4, resource: bindings.scale },
      { binding: 5, resource: bindings.zero },
      { binding: 6, resource: bindings.max },
    ],
  });
  const [x, y] = foldedGrid(Math.ceil(rowCount / 64), device.limits.maxComputeWorkgroupsPerDimension);
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(x, y);
}
