/**
 * The WebGPU backend: an adapter from the Reranker's backend interface to GpuRerankEngine
 * (src/gpu/engine.ts), which holds the frozen weights, adapts them to a strategy in one submit
 * and runs forward + scoring + top-k with one submit and one readback per rerank.
 *
 * The backend owns its GPUDevice: dispose() destroys the engine and the device. A loss of the
 * device that dispose() did not cause resolves `lost`, and the Reranker falls back to the CPU.
 */
import type { BackboneConfig } from '../core/backbones.ts';
import type { CheckedCandidates } from '../core/forward/index.ts';
import type { FrozenLayer } from '../core/frozen.ts';
import type { ItemTableQ8 } from '../core/item-table.ts';
import type { Strategy } from '../core/strategy.ts';
import type { TensorMap } from '../core/tensor-file.ts';
import { acquireGpu } from '../gpu/device.ts';
import { GpuRerankEngine } from '../gpu/engine.ts';
import type { BackendGpuMemory, BackendRanking, RerankBackend } from './backend.ts';
import type { AdapterSignal } from './resources.ts';

export interface WebGpuBackendOptions {
  /** Most candidates one rerank may score (sizes the GPU buffers). */
  readonly maxCandidates: number;
  readonly powerPreference?: GPUPowerPreference;
  /** The 8-bit item table the kernels embed and score with (tensors' item_emb must be its values). */
  readonly itemTable?: ItemTableQ8;
}

export class WebGpuBackend implements RerankBackend {
  readonly kind = 'webgpu' as const;
  readonly name: string;
  readonly adapter: AdapterSignal;
  readonly lost: Promise<Error>;
  readonly #engine: GpuRerankEngine;
  readonly #device: GPUDevice;
  #disposed = false;

  private constructor(engine: GpuRerankEngine, device: GPUDevice, adapter: AdapterSignal) {
    this.#engine = engine;
    this.#device = device;
    this.adapter = adapter;
    this.name = adapter.description;
    // A loss we caused by disposing is not news: that promise just never settles.
    this.lost = engine.lost.then((error) => (this.#disposed ? new Promise<never>(() => undefined) : error));
  }

  /** Requests a device and builds the engine (compiles every kernel); throws if either fails. */
  static async create(
    config: BackboneConfig,
    tensors: TensorMap,
    frozen: readonly FrozenLayer[],
    options: WebGpuBackendOptions,
  ): Promise<WebGpuBackend> {
    const { adapter, device, adapterDescription } = await acquireGpu(
      options.powerPreference ? { powerPreference: options.powerPreference } : {},
    );
    try {
      const engine = await GpuRerankEngine.create(device, config, tensors, frozen, {
        maxCandidates: options.maxCandidates,
        ...(options.itemTable ? { itemTable: options.itemTable } : {}),
      });
      return new WebGpuBackend(engine, device, {
        description: adapterDescription,
        isFallbackAdapter: Boolean(adapter.info?.isFallbackAdapter),
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
      });
    } catch (error) {
      device.destroy();
      throw error;
    }
  }

  /** queue.submit calls and mapAsync readbacks so far (for tests and profiling). */
  get counters(): { readonly submits: number; readonly readbacks: number } {
    return { submits: this.#engine.submits, readbacks: this.#engine.readbacks };
  }

  applyStrategy(strategy: Strategy): Promise<void> {
    return this.#engine.applyStrategy(strategy);
  }

  async rerank(
    history: readonly number[],
    candidates: Uint32Array | CheckedCandidates,
    k: number,
  ): Promise<BackendRanking> {
    const result = await this.#engine.rerank(history, candidates, k);
    return { order: result.order, scores: result.scores };
  }

  async recommend(history: readonly number[], k: number): Promise<BackendRanking> {
    const result = await this.#engine.recommend(history, k);
    return { order: Uint32Array.from(result.ids), scores: result.scores };
  }

  gpuMemory(): BackendGpuMemory {
    return { quantizedLayers: this.#engine.weightMemory.resident, itemTable: this.#engine.itemTableMemory.bytes };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#engine.destroy();
    this.#device.destroy();
  }
}
