/**
 * The model's quantizable weights on the GPU: `adapt` quantizes the frozen f32 weights to a
 * strategy in one submit, and later kernels bind each layer's packed buffers (core layout)
 * through `layer()`.
 *
 * Memory (QuantizedWeightsOptions; `memory` reports what is allocated):
 * - Frozen weights: by default they are on the GPU only while adapt() runs (uploaded into a
 *   transient buffer, freed once the GPU has finished), because between adaptations only the
 *   packed form is read and the f32 copy is 8-16x its size. Re-adapting uploads them again from
 *   the arrays given to create() or from a function that regenerates them (from the seed, in a
 *   few ms). `frozenResidency: 'resident'` keeps them on the GPU for devices with memory to spare.
 * - Packed words: `wordCapacity: 'any'` (default) reserves each layer's widest packing, so buffers
 *   never change and bind groups can be cached for the object's life. `'fit'` packs the layers of
 *   the current strategy back to back in one buffer sized to it (plus headroom) and reallocates
 *   it when a strategy needs more, or much less: `generation` then increments and bind groups
 *   holding the old `buffers.words` must be rebuilt.
 * - Per-channel tables (meta, scale, zero, max) cover every channel at any width: fixed size.
 */
import { TIER_BASE_LEVEL, tierSize } from '../core/allocation.ts';
import { ChordError } from '../core/errors.ts';
import { META_STRIDE, type PackedLayer, wordsPerRow } from '../core/packing.ts';
import { QuantizeError } from '../core/quantize.ts';
import { DEFAULT_LEVELS, type Strategy } from '../core/strategy.ts';
import { adaptProgram, type AdaptOptions, encodeAdapt } from './adapt-program.ts';
import {
  awaitGpu,
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
  REGION_ALIGN_BYTES,
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

/** Frozen weights: one array per layer, or all layers concatenated in layer order. */
export type FrozenWeightArrays = Float32Array | readonly Float32Array[];

/**
 * Where adapt() reads the frozen weights when they are not resident: the arrays themselves (kept
 * by reference, not copied: leave them unchanged) or a function that produces them again.
 */
export type FrozenWeightsSource = FrozenWeightArrays | (() => FrozenWeightArrays | Promise<FrozenWeightArrays>);

export interface QuantizedWeightsOptions {
  /** 'transient' (default): frozen weights on the GPU only during adapt(). 'resident': always. */
  readonly frozenResidency?: 'transient' | 'resident';
  /** 'any' (default): words for any strategy, buffers never change. 'fit': sized to the strategy. */
  readonly wordCapacity?: 'any' | 'fit';
  /**
   * 'fit' only: spare words allocated on top of a strategy's need whenever the words buffer is
   * (re)allocated, as a fraction of the need (default 0: exact). Headroom trades memory for fewer
   * reallocations when strategies widen a little; a reallocation itself is cheap (no copy, the
   * adaptation rewrites every word) but invalidates bind groups. Before the first adapt() the need
   * is estimated as Γ's tier shares (beta 0.125: 1/8 of each layer's channels at 8 bits, 1/8 at
   * 4, the rest at 2).
   */
  readonly headroom?: number;
}

/** Bytes allocated on the GPU for the quantizable weights. */
export interface WeightMemory {
  /** Packed words buffer (capacity, not just the part the strategy uses). */
  readonly words: number;
  /** Bytes of words the current strategy packs into (0 before the first adapt). */
  readonly wordsUsed: number;
  /** meta (16 B per channel) + scale, zero, max (4 B each per channel). */
  readonly tables: number;
  readonly meta: number;
  /** Frozen f32 weights kept between adaptations (0 with frozenResidency 'transient'). */
  readonly frozen: number;
  /** words + tables + frozen: what stays allocated while reranking. */
  readonly resident: number;
  /** Largest total during the last adapt(): resident + frozen upload + adapt row table. */
  readonly peakAdapt: number;
}

export interface ModelWeightBuffers {
  /** Frozen f32 weights, layers concatenated (LayerRegion.weightStart); only when resident. */
  readonly frozen?: GPUBuffer;
  readonly words: GPUBuffer;
  /** vec4<u32> per packed position (LayerRegion.tableStart). */
  readonly meta: GPUBuffer;
  readonly scale: GPUBuffer;
  readonly zero: GPUBuffer;
  readonly max: GPUBuffer;
}

/** Layer-level matmul arguments: everything of MixedMatmulArgs except the layer's own buffers. */
export type LayerMatmulArgs = Omit<MixedMatmulArgs, 'layer'>;

const ALIGN_ELEMENTS = REGION_ALIGN_BYTES / 4;
const DEFAULT_HEADROOM = 0;
/** 'fit' shrinks the words buffer once it exceeds the wanted size by more than a third. */
const SHRINK_BELOW = 3 / 4;

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** Checks lengths (LayerLayoutError) and values (QuantizeError) of the frozen weights. */
function checkFrozen(regions: ModelRegions, frozen: FrozenWeightArrays): void {
  const arrays: readonly Float32Array[] = frozen instanceof Float32Array ? [frozen] : frozen;
  if (frozen instanceof Float32Array) {
    if (frozen.length !== regions.weightCount) {
      throw new LayerLayoutError(`frozen weights have ${frozen.length} values, the layers ${regions.weightCount}`);
    }
  } else {
    if (frozen.length !== regions.layers.length) {
      throw new LayerLayoutError(`${frozen.length} weight arrays for ${regions.layers.length} layers`);
    }
    regions.layers.forEach((layer, l) => {
      const w = frozen[l]!;
      if (w.length !== layer.outChannels * layer.rowLength) {
        throw new LayerLayoutError(`${layer.name}: ${w.length} weights, expected ${layer.outChannels * layer.rowLength}`);
      }
    });
  }
  let index = 0;
  for (const weights of arrays) {
    for (let i = 0; i < weights.length; i++, index++) {
      const w = weights[i]!;
      if (!Number.isFinite(w)) throw new QuantizeError('QUANT_NON_FINITE', `frozen weight ${index} is ${w}`);
      if (Math.abs(w) >= MAX_ABS_WEIGHT) {
        throw new QuantizeError('QUANT_RANGE_OVERFLOW', `frozen weight ${index} = ${w} exceeds ±2^125`);
      }
    }
  }
}

/** One buffer with every layer's frozen weights at its weightStart, written while mapped. */
function uploadFrozen(device: GPUDevice, regions: ModelRegions, frozen: FrozenWeightArrays, label: string): GPUBuffer {
  const buffer = device.createBuffer({ label, size: Math.max(4, regions.weightCount * 4), usage: storageUsage(), mappedAtCreation: true });
  const view = new Float32Array(buffer.getMappedRange());
  if (frozen instanceof Float32Array) view.set(frozen);
  else regions.layers.forEach((layer, l) => view.set(frozen[l]!, layer.weightStart));
  buffer.unmap();
  return buffer;
}

/** `base` with the layers' words back to back, each region exactly `words[l]` (aligned). */
function fitRegions(base: ModelRegions, words: readonly number[]): ModelRegions {
  let wordStart = 0;
  const layers = base.layers.map((layer, l) => {
    const wordCapacity = alignUp(words[l]!, ALIGN_ELEMENTS);
    const region = { ...layer, wordStart, wordCapacity };
    wordStart += wordCapacity;
    return region;
  });
  if (wordStart >= 2 ** 32) throw new LayerLayoutError('model too large for u32 indexing');
  return { ...base, layers, wordLength: wordStart };
}

/** Words of Γ's tier shares at beta 0.125 on the default level table (levels 0, 1, 3: 2/4/8 bits). */
function gammaShareWords(layers: readonly QuantizableLayer[]): number[] {
  const [low, mid, top] = TIER_BASE_LEVEL.map((level) => DEFAULT_LEVELS[level]!) as [number, number, number];
  return layers.map(({ outChannels: n, rowLength }) => {
    const k = tierSize(n, 0.125);
    return k * wordsPerRow(top, rowLength) + k * wordsPerRow(mid, rowLength) + (n - 2 * k) * wordsPerRow(low, rowLength);
  });
}

interface Buffers {
  frozen: GPUBuffer | undefined;
  words: GPUBuffer;
  readonly meta: GPUBuffer;
  readonly scale: GPUBuffer;
  readonly zero: GPUBuffer;
  readonly max: GPUBuffer;
}

export class QuantizedModelWeights {
  readonly device: GPUDevice;
  readonly frozenResidency: 'transient' | 'resident';
  readonly wordCapacity: 'any' | 'fit';
  /** Regions with each layer's weight and table offsets; words as laid out by planModelRegions. */
  readonly #base: ModelRegions;
  readonly #buffers: Buffers;
  readonly #adaptPipeline: GPUComputePipeline;
  readonly #matmulPipeline: GPUComputePipeline;
  readonly #headroom: number;
  /** Where transient frozen weights come from; undefined once resident. */
  readonly #source: FrozenWeightsSource | undefined;
  #regions: ModelRegions;
  #packings: readonly LayerPacking[] | undefined;
  #strategy: Strategy | undefined;
  #generation = 0;
  #peakAdapt = 0;
  #destroyed = false;

  private constructor(
    device: GPUDevice,
    base: ModelRegions,
    regions: ModelRegions,
    buffers: Buffers,
    pipelines: { adapt: GPUComputePipeline; matmul: GPUComputePipeline },
    options: Required<QuantizedWeightsOptions>,
    source: FrozenWeightsSource | undefined,
  ) {
    this.device = device;
    this.#base = base;
    this.#regions = regions;
    this.#buffers = buffers;
    this.#adaptPipeline = pipelines.adapt;
    this.#matmulPipeline = pipelines.matmul;
    this.frozenResidency = options.frozenResidency;
    this.wordCapacity = options.wordCapacity;
    this.#headroom = options.headroom;
    this.#source = source;
  }

  /**
   * Checks the frozen weights (one array per layer, all concatenated in layer order, or a function
   * returning either), allocates the packed buffers and compiles both kernels ahead of first use.
   * The frozen weights are uploaded here only with frozenResidency 'resident'.
   */
  static async create(
    device: GPUDevice,
    layers: readonly QuantizableLayer[],
    frozen: FrozenWeightsSource,
    options: QuantizedWeightsOptions = {},
  ): Promise<QuantizedModelWeights> {
    void deviceLoss(device);
    throwIfLost(device);
    const opts: Required<QuantizedWeightsOptions> = {
      frozenResidency: options.frozenResidency ?? 'transient',
      wordCapacity: options.wordCapacity ?? 'any',
      headroom: options.headroom ?? DEFAULT_HEADROOM,
    };
    if (!(opts.headroom >= 0 && opts.headroom <= 4)) throw new RangeError(`headroom ${opts.headroom} outside [0, 4]`);
    const base = planModelRegions(layers);
    const regions = opts.wordCapacity === 'fit' ? fitRegions(base, gammaShareWords(base.layers)) : base;
    const weights = typeof frozen === 'function' ? await frozen() : frozen;
    checkFrozen(base, weights);
    const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    if (base.weightCount * 4 > limit || base.tableLength * META_STRIDE * 4 > limit || regions.wordLength * 4 > limit) {
      throw new LayerLayoutError(`model buffers exceed this device's ${limit}-byte buffer limit`);
    }
    try {
      await awaitGpu(device, preparePipelines(device, quantizedWeightPrograms));
    } catch (err) {
      if (err instanceof ChordError) throw err;
      throw new GpuCommandError('compiling the adapt / matmul kernels failed', { cause: err });
    }
    // Cached by now: these resolve without compiling again.
    const [adapt, matmul] = await Promise.all([getPipeline(device, adaptProgram), getPipeline(device, mixedMatmulProgram)]);
    const resident = opts.frozenResidency === 'resident';
    const initialWords = opts.wordCapacity === 'fit' ? alignUp(Math.ceil(regions.wordLength * (1 + opts.headroom)), ALIGN_ELEMENTS) : regions.wordLength;
    const buffers = await withErrorScopes(device, 'allocating model weight buffers', (): Buffers => {
      const usage = storageUsage();
      const make = (label: string, elements: number): GPUBuffer =>
        device.createBuffer({ label, size: Math.max(4, elements * 4), usage });
      return {
        frozen: resident ? uploadFrozen(device, base, weights, 'frozen weights') : undefined,
        words: make('packed words', initialWords),
        meta: make('packed meta', base.tableLength * META_STRIDE),
        scale: make('packed scale', base.tableLength),
        zero: make('packed zero', base.tableLength),
        max: make('packed max', base.tableLength),
      };
    });
    return new QuantizedModelWeights(device, base, regions, buffers, { adapt, matmul }, opts, resident ? undefined : frozen);
  }

  /** Where each layer lives in the model-wide buffers; with 'fit', word offsets follow the strategy. */
  get regions(): ModelRegions {
    return this.#regions;
  }

  /** The model-wide buffers, for kernels that address layers through `regions`. */
  get buffers(): ModelWeightBuffers {
    this.#checkAlive();
    const { frozen, words, meta, scale, zero, max } = this.#buffers;
    return frozen ? { frozen, words, meta, scale, zero, max } : { words, meta, scale, zero, max };
  }

  /** How many times adapt() replaced the words buffer ('fit' only): rebuild bind groups when it changes. */
  get generation(): number {
    return this.#generation;
  }

  get memory(): WeightMemory {
    const b = this.#buffers;
    const meta = b.meta.size;
    const tables = meta + b.scale.size + b.zero.size + b.max.size;
    const frozen = b.frozen?.size ?? 0;
    const words = b.words.size;
    const resident = words + tables + frozen;
    const wordsUsed = (this.#packings ?? []).reduce((sum, p) => sum + p.wordCount * 4, 0);
    return { words, wordsUsed, tables, meta, frozen, resident, peakAdapt: this.#peakAdapt };
  }

  /** The strategy of the last adapt(), if any. */
  get strategy(): Strategy | undefined {
    return this.#strategy;
  }

  layerIndex(ref: number | string): number {
    const i = typeof ref === 'number' ? ref : this.#base.layers.findIndex((l) => l.name === ref);
    if (!Number.isInteger(i) || i < 0 || i >= this.#base.layers.length) {
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
   * per-weight work is one dispatch in one submit. Resolves when the GPU has finished. A strategy
   * that does not fit the layers is refused before any buffer changes.
   */
  async adapt(strategy: Strategy, options: AdaptOptions = {}): Promise<void> {
    this.#checkAlive();
    const { device } = this;
    const base = this.#base;
    const bits = strategyBits(strategy, base.layers);
    const packings = bits.map((b, l) => planLayerPacking(b, base.layers[l]!.rowLength));
    let upload: FrozenWeightArrays | undefined;
    if (!this.#buffers.frozen) {
      const source = this.#source!;
      upload = typeof source === 'function' ? await source() : source;
      // A regenerating function is checked each time; arrays were checked by create().
      if (typeof source === 'function') checkFrozen(base, upload);
      this.#checkAlive();
    }
    const regions = this.wordCapacity === 'fit' ? fitRegions(base, packings.map((p) => p.wordCount)) : base;
    const rows = buildAdaptRows(regions, packings);
    const meta = new Uint32Array(base.tableLength * META_STRIDE);
    regions.layers.forEach((layer, l) => meta.set(packings[l]!.meta, layer.tableStart * META_STRIDE));
    const b = this.#buffers;
    const transient = new TransientBuffers(device);
    try {
      await withErrorScopes(device, 'adapt', () => {
        this.#fitWords(regions.wordLength);
        const frozen = b.frozen ?? uploadFrozen(device, base, upload!, 'frozen weights (adapt)');
        const rowsBuffer = transient.from(rows, storageUsage(), 'adapt rows');
        device.queue.writeBuffer(b.meta, 0, meta);
        const encoder = device.createCommandEncoder({ label: 'adapt' });
        const pass = encoder.beginComputePass({ label: 'adapt' });
        encodeAdapt(
          device,
          pass,
          this.#adaptPipeline,
          { weights: { buffer: frozen }, rows: { buffer: rowsBuffer }, words: { buffer: b.words },
            scale: { buffer: b.scale }, zero: { buffer: b.zero }, max: { buffer: b.max } },
          base.channelCount,
          transient,
          options,
        );
        pass.end();
        device.queue.submit([encoder.finish()]);
        // WebGPU keeps a destroyed buffer alive for the work already submitted.
        if (frozen !== b.frozen) frozen.destroy();
        this.#peakAdapt = this.memory.resident + (frozen === b.frozen ? 0 : frozen.size) + rowsBuffer.size;
        // Work encoded from now on sees the new packing, in queue order with the GPU writes.
        this.#regions = regions;
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

  /**
   * 'fit': makes the words buffer hold `need` words, reallocating (contents are about to be
   * rewritten) when it is too small or more than a third larger than need plus headroom.
   */
  #fitWords(need: number): void {
    if (this.wordCapacity !== 'fit') return;
    const capacity = this.#buffers.words.size / 4;
    const wanted = alignUp(Math.ceil(need * (1 + this.#headroom)), ALIGN_ELEMENTS);
    if (need <= capacity && wanted >= capacity * SHRINK_BELOW) return;
    const limit = Math.min(this.device.limits.maxStorageBufferBindingSize, this.device.limits.maxBufferSize);
    if (wanted * 4 > limit) throw new LayerLayoutError(`packed words (${wanted * 4} bytes) exceed this device's ${limit}-byte buffer limit`);
    const words = this.device.createBuffer({ label: 'packed words', size: Math.max(4, wanted * 4), usage: storageUsage() });
    this.#buffers.words.destroy();
    this.#buffers.words = words;
    this.#generation++;
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
    for (const buffer of Object.values(this.#buffers)) buffer?.destroy();
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
