import { WebGpuUnavailableError } from './errors.ts';

export interface GpuContext {
  adapter: GPUAdapter;
  device: GPUDevice;
  /** Human-readable adapter name, e.g. "SwiftShader Device (Subzero)". */
  adapterDescription: string;
}

/** Requests an adapter and a device, or throws WebGpuUnavailableError saying which step failed. */
export async function acquireGpu(options: GPURequestAdapterOptions = {}): Promise<GpuContext> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new WebGpuUnavailableError('navigator.gpu is not available in this browser');
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter(options);
  } catch (cause) {
    throw new WebGpuUnavailableError('requestAdapter() failed', { cause });
  }
  if (!adapter) throw new WebGpuUnavailableError('no WebGPU adapter was granted');
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize },
    });
  } catch (cause) {
    throw new WebGpuUnavailableError('requestDevice() failed', { cause });
  }
  const info = adapter.info;
  const adapterDescription =
    [info?.description, info?.vendor, info?.architecture].filter((s) => s && s.length > 0).join(' / ') || 'unknown adapter';
  return { adapter, device, adapterDescription };
}
