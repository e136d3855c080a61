/**
 * Compute pipelines compiled once per (device, shaderKey) and reused. `prepare` compiles ahead of first use
 * (createComputePipelineAsync), so the first rerank does not pay for shader compilation.
 */
export interface ComputeProgram {
  /** Identifies the compiled shader: the same key must always mean the same WGSL and entry point. */
  readonly shaderKey: string;
  readonly wgsl: string;
  readonly entryPoint?: string;
}

const caches = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

export function getPipeline(device: GPUDevice, program: ComputeProgram): Promise<GPUComputePipeline> {
  let cache = caches.get(device);
  if (!cache) {
    cache = new Map();
    caches.set(device, cache);
  }
  let pipeline = cache.get(program.shaderKey);
  if (!pipeline) {
    const module = device.createShaderModule({ label: program.shaderKey, code: program.wgsl });
    pipeline = device.createComputePipelineAsync({
      label: program.shaderKey,
      layout: 'auto',
      compute: { module, entryPoint: program.entryPoint ?? 'main' },
    });
    // A failed compile must not poison the cache for a later retry.
    pipeline.catch(() => cache!.delete(program.shaderKey));
    cache.set(program.shaderKey, pipeline);
  }
  return pipeline;
}

/** Compiles every program in parallel; resolves when all are ready. */
export async function preparePipelines(device: GPUDevice, programs: readonly ComputeProgram[]): Promise<void> {
  await Promise.all(programs.map((p) => getPipeline(device, p)));
}
