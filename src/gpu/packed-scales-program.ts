import wgsl from '../../shaders/packed_scales.wgsl?raw';
import { GROUP_STRIDE } from '../core/packing.ts';
import type { PackedLayerBindings, TransientBuffers } from './buffers.ts';
import { KernelPlanError, MAX_GROUPS } from './packed-layer-ref.ts';
import { withPackedScaleLib } from './packed-weights-lib.ts';
import type { ComputeProgram } from './pipeline-cache.ts';

/**
 * Verification only: the step of every packed position of a layer as the dequantizing kernels
 * recompute it (shaders/packed_scales.wgsl), for QuantizedModelWeights.readPacked.
 */
export const packedScalesProgram: ComputeProgram = { shaderKey: 'packed_scales', wgsl: withPackedScaleLib(wgsl) };

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
  const count = layer.groups.length / GROUP_STRIDE;
  if (!Number.isInteger(count) || count < 1 || count > MAX_GROUPS) throw new KernelPlanError(`${layer.groups.length} group entries`);
  const params = new Uint32Array(HEADER_U32 + 4 * MAX_GROUPS);
  params.set([layer.tableStart, layer.outChannels, count]);
  for (let g = 0; g < count; g++) params.set([layer.groups[3 * g]!, layer.groups[3 * g + 1]!, layer.groups[3 * g + 2]!], HEADER_U32 + 4 * g);
  const out = transient.create(layer.outChannels * 4, usage, 'packed scales');
  const bindGroup = device.createBindGroup({
    label: 'packed_scales',
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: transient.uniform(params, 'packed scales params') } },
      { binding: 1, resource: layer.ranges },
      { binding: 2, resource: { buffer: out } },
    ],
  });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(Math.ceil(layer.outChannels / 64));
  return out;
}
