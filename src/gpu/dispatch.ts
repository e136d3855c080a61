/** Recording one compute dispatch whose group-0 bindings are numbered in order (binding i = resources[i]). */

/** A bind group for group 0 of `pipeline` ('auto' layout) with binding i = resources[i]. */
export function bindInOrder(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  label: string,
  resources: readonly GPUBindingResource[],
): GPUBindGroup {
  return device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: resources.map((resource, binding) => ({ binding, resource })),
  });
}

/** Records `pipeline` with `bindGroup` as group 0 over x * y workgroups. */
export function encodeDispatch(pass: GPUComputePassEncoder, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, x: number, y = 1): void {
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(x, y);
}
