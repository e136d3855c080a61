/**
 * The model's quantizable weights on the GPU: the frozen f32 weights stay resident, `adapt`
 * re-quantizes all of them to a strategy in one submit, and later kernels bind each layer's
 * packed buffers (core layout) through `layer()`. Buffers are sized for any strategy at creation,
 * so adapting again never reallocates and buffer identities stay stable for cached bind groups.
 */
import { ChordError } from '../core/errors.ts';
import { META_STRIDE, type PackedLayer } from '../core/packing.ts';
import { QuantizeError } from '../core/quantize.ts';
import type { Strategy } from '../core/strategy.ts';
import { adaptProgram, type AdaptOptions, encodeAdapt } from './adapt-program.ts';
import {
  awaitGpu,
  createBufferFrom,
  GpuCommandError,
  deviceLoss,
  type PackedLayerBindings,
  readBuffers,
  storageUsage,
  throwIfLost,
  TransientBuffers,
  withErrorScopes,
} from './buffers.ts';
import { encodeMixedMatmul, type MixedMatmulArgs, mixedMatmulProgram } from './matmul-program.ts';
import {
  ADAPT_ROW_STRIDE,
  buildAdaptRows,
  LayerLayoutError,
  type LayerPacking,
  type ModelRegions,
  planLayerPacking,
  planModelRegions,
  type QuantizableLayer,
  strategyBits,
} from './packed-layout.ts';
import { type ComputeProgram, getPipeline, preparePipelines } from './pipeline-cache.ts';

/** The kernels this module dispatches; pass to preparePipelines() at start-up to compile early. */
export const quantizedWeightPrograms: readonly ComputeProgram[] = [adaptProgram, mixedMatmulProgram];

/** Used after destroy(), or before the first adapt() where packed weights are needed. */
export class WeightsStateError extends ChordError {
  constructor(message: string) {
    super('gpu-weights-state', message);
  }
}

/**
 * Largest |weight| accepted: below 2^125 a channel's range and n * scale stay finite in f32 for
 * every width, so the GPU never meets the reference's QUANT_RANGE_OVERFLOW case.
 */
export const MAX_ABS_WEIGHT = 2 ** 125;

export interface ModelWeightBuffers {
  /** Frozen f32 weights, layers concatenated (LayerRegion.weightStart). */
  readonly frozen: GPUBuffer;
  readonly words: GPUBuffer;
  /** vec4<u32> per packed position (LayerRegion.tableStart). */
  readonly meta: GPUBuffer;
  readonly scale: GPUBuffer;
  readonly zero: GPUBuffer;
  readonly max: GPUBuffer;
}

/** Layer-level matmul arguments: everything of MixedMatmulArgs except the layer's own buffers. */
export type LayerMatmulArgs = Omit<MixedMatmulArgs, 'layer'>;

function concatFrozen(regions: ModelRegions, frozen: Float32Array | readonly Float32Array[]): Float32Array {
  if (frozen instanceof Float32Array) {
    if (frozen.length !== regions.weightCount) {
      throw new LayerLayoutError(`frozen weights have ${frozen.length} values, the layers ${regions.weightCount}`);
    }
    return frozen;
  }
  if (frozen.length !== regions.layers.length) {
    throw new LayerLayoutError(`${frozen.length} weight arrays for ${regions.layers.length} layers`);
  }
  const all = new Float32Array(regions.weightCount);
  regions.layers.forEach((layer, l) => {
    const w = frozen[l]!;
    if (w.length !== layer.outChannels * layer.rowLength) {
      throw new LayerLayoutError(`${layer.name}: ${w.length} weights, expected ${layer.outChannels * layer.rowLength}`);
    }
    all.set(w, layer.weightStart);
  });
  return all;
}

function checkWeightValues(weights: Float32Array): void {
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i]!;
    if (!Number.isFinite(w)) throw new QuantizeError('QUANT_NON_FINITE', `frozen weight ${i} is ${w}`);
    if (Math.abs(w) >= MAX_ABS_WEIGHT) {
      throw new QuantizeError('QUANT_RANGE_OVERFLOW', `frozen weight ${i} = ${w} exceeds ±2^125`);
    }
  }
}

export class QuantizedModelWeights {
  readonly device: GPUDevice;
  readonly regions: ModelRegions;
  readonly #buffers: ModelWeightBuffers & { readonly rows: GPUBuffer };
  readonly #adaptPipeline: GPUComputePipeline;
  readonly #matmulPipeline: GPUComputePipeline;
  #packings: readonly LayerPacking[] | undefined;
  #strategy: Strategy | undefined;
  #destroyed = false;

  private constructor(
    device: GPUDevice,
    regions: ModelRegions,
    buffers: ModelWeightBuffers & { readonly rows: GPUBuffer },
    adaptPipeline: GPUComputePipeline,
    matmulPipeline: GPUComputePipeline,
  ) {
    this.device = device;
    this.regions = regions;
    this.#buffers = buffers;
    this.#adaptPipeline = adaptPipeline;
    this.#matmulPipeline = matmulPipeline;
  }

  /**
   * Uploads the frozen weights (one array per layer, or all concatenated in layer order), allocates
   * the packed buffers for any strategy and compiles both kernels ahead of first use.
   */
  static async create(
    device: GPUDevice,
    layers: readonly QuantizableLayer[],
    frozen: Float32Array | readonly Float32Array[],
  ): Promise<QuantizedModelWeights> {
    void deviceLoss(device);
    throwIfLost(device);
    const regions = planModelRegions(layers);
    const weights = concatFrozen(regions, frozen);
    checkWeightValues(weights);
    const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    if (weights.byteLength > limit || regions.tableLength * META_STRIDE * 4 > limit || regions.wordLength * 4 > limit) {
      throw new LayerLayoutError(`model buffers exceed this device's ${limit}-byte buffer limit`);
    }
    try {
      await awaitGpu(device, preparePipelines(device, quantizedWeightPrograms));
    } catch (err) {
      if (err instanceof ChordError) throw err;
      throw new GpuCommandError('compiling the adapt / matmul kernels failed', { cause: err });
    }
    // Cached by now: these resolve without compiling again.
    const [adaptPipeline, matmulPipeline] = await Promise.all([
      getPipeline(device, adaptProgram),
      getPipeline(device, mixedMatmulProgram),
    ]);
    const buffers = await withErrorScopes(device, 'allocating model weight buffers', () => {
      const usage = storageUsage();
      const make = (label: string, elements: number): GPUBuffer =>
        device.createBuffer({ label, size: Math.max(4, elements * 4), usage });
      return {
        frozen: createBufferFrom(device, weights, usage, 'frozen weights'),
        rows: make('adapt rows', regions.channelCount * ADAPT_ROW_STRIDE),
        words: make('packed words', regions.wordLength),
        meta: make('packed meta', regions.tableLength * META_STRIDE),
        scale: make('packed scale', regions.tableLength),
        zero: make('packed zero', regions.tableLength),
        max: make('packed max', regions.tableLength),
      };
    });
    return new QuantizedModelWeights(device, regions, buffers, adaptPipeline, matmulPipeline);
  }

  /** The model-wide buffers, for kernels that address layers through `regions`. */
  get buffers(): ModelWeightBuffers {
    this.#checkAlive();
    const { frozen, words, meta, scale, zero, max } = this.#buffers;
    return { frozen, words, meta, scale, zero, max };
  }

  /** The strategy of the last adapt(), if any. */
  get strategy(): Strategy | undefined {
    return this.#strategy;
  }

  layerIndex(ref: number | string): number {
    const i = typeof ref === 'number' ? ref : this.regions.layers.findIndex((l) => l.name === ref);
    if (!Number.isInteger(i) || i < 0 || i >= this.regions.layers.length) {
      throw new RangeError(`no layer ${JSON.stringify(ref)}`);
    }
    return i;
  }

  /** Bits per original channel of a layer under the current strategy. */
  bitsOf(ref: number | string): Uint8Array {
    return this.#packing(this.layerIndex(ref)).bits.slice();
  }

  /**
   * Quantizes and packs every layer to `strategy`: tables are computed here (O(channels)), the
   * per-weight work is one dispatch in one submit. Resolves when the GPU has finished.
   */
  async adapt(strategy: Strategy, options: AdaptOptions = {}): Promise<void> {
    this.#checkAlive();
    const { device, regions } = this;
    const bits = strategyBits(strategy, regions.layers);
    const packings = bits.map((b, l) => planLayerPacking(b, regions.layers[l]!.rowLength));
    const rows = buildAdaptRows(regions, packings);
    const meta = new Uint32Array(regions.tableLength * META_STRIDE);
    regions.layers.forEach((layer, l) => meta.set(packings[l]!.meta, layer.tableStart * META_STRIDE));
    const b = this.#buffers;
    const transient = new TransientBuffers(device);
    try {
      await withErrorScopes(device, 'adapt', () => {
        device.queue.writeBuffer(b.rows, 0, rows);
        device.queue.writeBuffer(b.meta, 0, meta);
        const encoder = device.createCommandEncoder({ label: 'adapt' });
        const pass = encoder.beginComputePass({ label: 'adapt' });
        encodeAdapt(
          device,
          pass,
          this.#adaptPipeline,
          { weights: { buffer: b.frozen }, rows: { buffer: b.rows }, words: { buffer: b.words },
            scale: { buffer: b.scale }, zero: { buffer: b.zero }, max: { buffer: b.max } },
          regions.channelCount,
          transient,
          options,
        );
        pass.end();
        device.queue.submit([encoder.finish()]);
        // Work encoded from now on sees the new packing, in queue order with the GPU writes.
        this.#packings = packings;
        this.#strategy = strategy;
      });
      await awaitGpu(device, device.queue.onSubmittedWorkDone());
    } catch (err) {
      this.#packings = undefined;
      this.#strategy = undefined;
      throw err;
    } finally {
      transient.destroyAll();
    }
  }

  /** A layer's packed buffers as core-layout ranges (valid until the next adapt()). */
  layer(ref: number | string): PackedLayerBindings {
    this.#checkAlive();
    const l = this.layerIndex(ref);
    const packing = this.#packing(l);
    const region = this.regions.layers[l]!;
    const b = this.#buffers;
    const table = (buffer: GPUBuffer, stride: number): GPUBufferBinding => ({
      buffer,
      offset: region.tableStart * stride * 4,
      size: region.outChannels * stride * 4,
    });
    return {
      outChannels: region.outChannels,
      rowLength: region.rowLength,
      groups: packing.groups.slice(),
      words: { buffer: b.words, offset: region.wordStart * 4, size: packing.wordCount * 4 },
      meta: table(b.meta, META_STRIDE),
      scale: table(b.scale, 1),
      zero: table(b.zero, 1),
      max: table(b.max, 1),
    };
  }

  /** Records y = x . deq(W_layer)^T (+ bias) into `pass`; its uniform goes to `transient`. */
  encodeMatmul(pass: GPUComputePassEncoder, ref: number | string, args: LayerMatmulArgs, transient: TransientBuffers): void {
    throwIfLost(this.device);
    encodeMixedMatmul(this.device, pass, this.#matmulPipeline, { ...args, layer: this.layer(ref) }, transient);
  }

  /** Convenience: uploads x [rows, rowLength] (and bias), runs one matmul and reads y [rows, outChannels]. */
  async matmul(ref: number | string, x: Float32Array, rows: number, bias?: Float32Array): Promise<Float32Array> {
    this.#checkAlive();
    const { device } = this;
    const region = this.regions.layers[this.layerIndex(ref)]!;
    const transient = new TransientBuffers(device);
    try {
      const usage = storageUsage();
      const y = await withErrorScopes(device, 'matmul', () => {
        const xBuf = transient.from(x, usage, 'matmul x');
        const yBuf = transient.create(rows * region.outChannels * 4, usage, 'matmul y');
        const biasBuf = bias ? transient.from(bias, usage, 'matmul bias') : undefined;
        const encoder = device.createCommandEncoder({ label: 'matmul' });
        const pass = encoder.beginComputePass({ label: 'matmul' });
        this.encodeMatmul(
          pass,
          ref,
          {
            rows,
            x: { buffer: xBuf, size: x.byteLength },
            y: { buffer: yBuf },
            ...(biasBuf && bias ? { bias: { buffer: biasBuf, size: bias.byteLength } } : {}),
          },
          transient,
        );
        pass.end();
        device.queue.submit([encoder.finish()]);
        return yBuf;
      });
      const [data] = await readBuffers(device, [{ buffer: y, size: rows * region.outChannels * 4 }]);
      return new Float32Array(data!);
    } finally {
      transient.destroyAll();
    }
  }

  /** Reads a layer's packed form back into core's PackedLayer shape (for checks and caching). */
  async readPacked(ref: number | string): Promise<PackedLayer> {
    const l = this.layerIndex(ref);
    const bindings = this.layer(l);
    const packing = this.#packing(l);
    const [words, meta, scale, zero, max] = await readBuffers(this.device, [
      bindings.words,
      bindings.meta,
      bindings.scale,
      bindings.zero,
      bindings.max,
    ]);
    return {
      outChannels: bindings.outChannels,
      rowLength: bindings.rowLength,
      words: new Uint32Array(words!),
      meta: new Uint32Array(meta!),
      scale: new Float32Array(scale!),
      zero: new Float32Array(zero!),
      max: new Float32Array(max!),
      position: packing.position.slice(),
      groups: packing.groups.slice(),
    };
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#packings = undefined;
    for (const buffer of Object.values(this.#buffers)) buffer.destroy();
  }

  #checkAlive(): void {
    if (this.#destroyed) throw new WeightsStateError('QuantizedModelWeights was destroyed');
    throwIfLost(this.device);
  }

  #packing(l: number): LayerPacking {
    const p = this.#packings?.[l];
    if (!p) throw new WeightsStateError('no strategy applied yet: call adapt() first');
    return p;
  }
}
