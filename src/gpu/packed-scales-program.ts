import wgsl from '../../shaders/packed_scales.wgsl?raw';
import type { PackedLayerBindings, TransientBuffers } from './buffers.ts';
import { bindInOrder, encodeDispatch } from './dispatch.ts';
import { groupTiles } from './packed-layer-ref.ts';
import type { ComputeProgram } from './pipeline-cache.ts';
import { MAX_GROUPS, WORKGROUP_SIZE } from './shader-constants.ts';
import { withWgslLibs } from './wgsl-libs.ts';

/**
 * Verification only: the step of every packed position of a layer as the dequantizing kernels
 * recompute it (shaders/packed_scales.wgsl), for readPacked in tests/browser/pages/weights-probes.ts.
 */
export const packedScalesProgram: ComputeProgram = { shaderKey: 'packed_scales', wgsl: withWgslLibs(wgsl, 'packed') };

const HEADER_U32 = 4;

/** Records the dispatch; returns the buffer (in `transient`) that receives outChannels u32 (f32 bits). */
export function encodePackedScales(
  device: GPUDevice,
  pass: GPUComputePassEncoder,
  pipeline: GPUComputePipeline,
  layer: PackedLayerBindings,
  transient: TransientBuffers,
  usage: number,
): GPUBuffer {
  // The kernel reads each group's bits and first position.
  const { rows } = groupTiles(layer, 1, 0);
  const params = new Uint32Array(HEADER_U32 + 4 * MAX_GROUPS);
  params.set([layer.tableStart, layer.outChannels, rows.length]);
  rows.forEach((row, g) => params.set(row, HEADER_U32 + 4 * g));
  const out = transient.create(layer.outChannels * 4, usage, 'packed scales');
  const bindGroup = bindInOrder(device, pipeline, 'packed_scales', [
    { buffer: transient.uniform(params, 'packed scales params') },
    layer.ranges,
    { buffer: out },
  ]);
  encodeDispatch(pass, pipeline, bindGroup, Math.ceil(layer.outChannels / WORKGROUP_SIZE));
  return out;
}
