/**
 * The model's quantizable weights on the GPU: `adapt` quantizes the frozen f32 weights to a
 * strategy in one submit, and later kernels bind each layer's packed buffers (core layout)
 * through `layer()`. Only this production path lives here: the checks' and benchmarks' readback
 * and standalone matmul are in tests/browser/pages/weights-probes.ts.
 *
 * Memory (QuantizedWeightsOptions; `memory` reports what is allocated):
 * - Frozen weights: by default they are on the GPU only while adapt() runs (uploaded into a
 *   transient buffer, freed once the GPU has finished), because between adaptations only the
 *   packed form is read and the f32 copy is 8-16x its size. Re-adapting uploads them again from
 *   the arrays given to create() or from a function that regenerates them (from the seed, in a
 *   few ms). `frozenResidency: 'resident'` keeps them on the GPU for devices with memory to spare.
 * - Packed words: `wordCapacity: 'any'` (default) reserves each layer's widest packing, so buffers
 *   never change and bind groups can be cached for the object's life. `'fit'` packs the layers of
 *   the current strategy back to back in one buffer sized exactly to it (plus optional headroom),
 *   reallocated when a strategy needs more than it holds or less than it holds minus the headroom:
 *   `generation` then increments and bind groups holding the old `buffers.words` must be rebuilt.
 * - Per-channel tables, fixed size (layout of packed-layout.ts): `ranges` (min and max, 8 B per
 *   channel) and `chan` (u16 original channel per packed position, 2 B). Core's other per-channel
 *   arrays are not stored: widths and word offsets follow from the width groups that the kernels'
 *   uniforms carry, and the step is recomputed exactly from (min, max, bits).
 */
import { TIER_BASE_LEVEL, tierSize } from '../core/allocation.ts';
import { ChordError } from '../core/errors.ts';
import { wordsPerRow } from '../core/packing.ts';
import { QuantizeError } from '../core/quantize.ts';
import { DEFAULT_LEVELS, type Strategy } from '../core/strategy.ts';
import { adaptFixProgram, adaptProgram, type AdaptOptions, encodeAdapt, fixListBytes } from './adapt-program.ts';
import {
  awaitGpu,
  GpuCommandError,
  deviceLoss,
  type PackedLayerBindings,
  storageUsage,
  throwIfLost,
  TransientBuffers,
  withErrorScopes,
} from './buffers.ts';
import {
  buildAdaptSegments,
  buildChannelTable,
  LayerLayoutError,
  type LayerPacking,
  type ModelRegions,
  planLayerPacking,
  planModelRegions,
  type QuantizableLayer,
  SEGMENT_STRIDE,
  strategyBits,
  withWords,
} from './packed-layout.ts';
import { type ComputeProgram, getPipeline, preparePipelines } from './pipeline-cache.ts';

/** The kernels this module dispatches (the adaptation's two); create() compiles them ahead of first use. */
export const quantizedWeightPrograms: readonly ComputeProgram[] = [adaptProgram, adaptFixProgram];

/** Used after destroy(), or before the first adapt() where packed weights are needed. */
export class WeightsStateError extends ChordError<'WeightsStateError'> {
  override readonly name = 'WeightsStateError';
  constructor(message: string) {
    super('GPU_WEIGHTS_STATE', message);
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
  /** Per-channel tables: ranges (min and max, 8 B per channel) + meta. */
  readonly tables: number;
  /** The channel index table `chan` (u16 per channel); widths and word offsets are not stored. */
  readonly meta: number;
  /** Frozen f32 weights kept between adaptations (0 with frozenResidency 'transient'). */
  readonly frozen: number;
  /** words + tables + frozen: what stays allocated while reranking. */
  readonly resident: number;
  /** Largest total during the last adapt(): resident + frozen upload + adapt segment table and fix list. */
  readonly peakAdapt: number;
}

export interface ModelWeightBuffers {
  /** Frozen f32 weights, layers concatenated (LayerRegion.weightStart); only when resident. */
  readonly frozen?: GPUBuffer;
  readonly words: GPUBuffer;
  /** vec2<u32> per packed position (LayerRegion.tableStart): min and max as f32 bits. */
  readonly ranges: GPUBuffer;
  /** u16 original channel per packed position, two per u32. */
  readonly chan: GPUBuffer;
}

const DEFAULT_HEADROOM = 0;

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
  readonly ranges: GPUBuffer;
  readonly chan: GPUBuffer;
}

export class QuantizedModelWeights {
  readonly device: GPUDevice;
  readonly frozenResidency: 'transient' | 'resident';
  readonly wordCapacity: 'any' | 'fit';
  /** Regions with each layer's weight and table offsets; words as laid out by planModelRegions. */
  readonly #base: ModelRegions;
  readonly #buffers: Buffers;
  readonly #adaptPipelines: { readonly pack: GPUComputePipeline; readonly fix: GPUComputePipeline };
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
    pipelines: { pack: GPUComputePipeline; fix: GPUComputePipeline },
    options: Required<QuantizedWeightsOptions>,
    source: FrozenWeightsSource | undefined,
  ) {
    this.device = device;
    this.#base = base;
    this.#regions = regions;
    this.#buffers = buffers;
    this.#adaptPipelines = pipelines;
    this.frozenResidency = options.frozenResidency;
    this.wordCapacity = options.wordCapacity;
    this.#headroom = options.headroom;
    this.#source = source;
  }

  /**
   * Checks the frozen weights (one array per layer, all concatenated in layer order, or a function
   * returning either), allocates the packed buffers and compiles the two adaptation kernels ahead of first use.
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
    const regions = opts.wordCapacity === 'fit' ? withWords(base, gammaShareWords(base.layers)) : base;
    const weights = typeof frozen === 'function' ? await frozen() : frozen;
    checkFrozen(base, weights);
    const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    if (base.weightCount * 4 > limit || base.channelCount * 8 > limit || regions.wordLength * 4 > limit) {
      throw new LayerLayoutError(`model buffers exceed this device's ${limit}-byte buffer limit`);
    }
    try {
      await awaitGpu(device, preparePipelines(device, quantizedWeightPrograms));
    } catch (err) {
      if (err instanceof ChordError) throw err;
      throw new GpuCommandError('compiling the adapt kernels failed', { cause: err });
    }
    // Cached by now: these resolve without compiling again.
    const [pack, fix] = await Promise.all(quantizedWeightPrograms.map((p) => getPipeline(device, p)));
    const resident = opts.frozenResidency === 'resident';
    const initialWords = opts.wordCapacity === 'fit' ? Math.ceil(regions.wordLength * (1 + opts.headroom)) : regions.wordLength;
    const buffers = await withErrorScopes(device, 'allocating model weight buffers', (): Buffers => {
      const usage = storageUsage();
      const make = (label: string, elements: number): GPUBuffer =>
        device.createBuffer({ label, size: Math.max(4, elements * 4), usage });
      return {
        frozen: resident ? uploadFrozen(device, base, weights, 'frozen weights') : undefined,
        words: make('packed words', initialWords),
        ranges: make('packed ranges', base.channelCount * 2),
        chan: make('packed channels', Math.ceil(base.channelCount / 2)),
      };
    });
    return new QuantizedModelWeights(device, base, regions, buffers, { pack: pack!, fix: fix! }, opts, resident ? undefined : frozen);
  }

  /** Where each layer lives in the model-wide buffers; with 'fit', word offsets follow the strategy. */
  get regions(): ModelRegions {
    return this.#regions;
  }

  /** The model-wide buffers, for kernels that address layers through `regions`. */
  get buffers(): ModelWeightBuffers {
    this.#checkAlive();
    const { frozen, words, ranges, chan } = this.#buffers;
    return frozen ? { frozen, words, ranges, chan } : { words, ranges, chan };
  }

  /** How many times adapt() replaced the words buffer ('fit' only): rebuild bind groups when it changes. */
  get generation(): number {
    return this.#generation;
  }

  get memory(): WeightMemory {
    const b = this.#buffers;
    const meta = b.chan.size;
    const tables = meta + b.ranges.size;
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
   * Quantizes and packs every layer to `strategy`: the packing order and width groups are computed
   * here (O(channels)), the per-weight work is two dispatches (quantize + pack, exact codes near
   * rounding ties) in one submit. Resolves when the GPU has finished. A strategy that does not fit
   * the layers is refused before any buffer changes.
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
    const regions = this.wordCapacity === 'fit' ? withWords(base, packings.map((p) => p.wordCount)) : base;
    const { segments, tiles } = buildAdaptSegments(regions, packings);
    const chan = buildChannelTable(regions, packings);
    const b = this.#buffers;
    const transient = new TransientBuffers(device);
    try {
      await withErrorScopes(device, 'adapt', () => {
        this.#fitWords(regions.wordLength);
        const frozen = b.frozen ?? uploadFrozen(device, base, upload!, 'frozen weights (adapt)');
        const segmentsBuffer = transient.from(segments, storageUsage(), 'adapt segments');
        const fixCapacity = packings.reduce((sum, p) => sum + p.wordCount, 0);
        const fixes = transient.create(fixListBytes(fixCapacity), storageUsage(), 'adapt fix list');
        device.queue.writeBuffer(b.chan, 0, chan);
        const encoder = device.createCommandEncoder({ label: 'adapt' });
        const pass = encoder.beginComputePass({ label: 'adapt' });
        encodeAdapt(
          device,
          pass,
          this.#adaptPipelines,
          { weights: { buffer: frozen }, segments: { buffer: segmentsBuffer }, chan: { buffer: b.chan },
            words: { buffer: b.words }, ranges: { buffer: b.ranges }, fixes: { buffer: fixes } },
          { segmentCount: segments.length / SEGMENT_STRIDE, tiles, fixCapacity },
          transient,
          options,
        );
        pass.end();
        device.queue.submit([encoder.finish()]);
        // WebGPU keeps a destroyed buffer alive for the work already submitted.
        if (frozen !== b.frozen) frozen.destroy();
        this.#peakAdapt = this.memory.resident + (frozen === b.frozen ? 0 : frozen.size) + segmentsBuffer.size + fixes.size;
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
   * rewritten) to need plus headroom when it is too small or larger than that: with the default
   * headroom 0, exactly `need` for every strategy.
   */
  #fitWords(need: number): void {
    if (this.wordCapacity !== 'fit') return;
    const capacity = this.#buffers.words.size / 4;
    const wanted = Math.max(1, Math.ceil(need * (1 + this.#headroom)));
    if (need <= capacity && capacity <= wanted) return;
    const limit = Math.min(this.device.limits.maxStorageBufferBindingSize, this.device.limits.maxBufferSize);
    if (wanted * 4 > limit) throw new LayerLayoutError(`packed words (${wanted * 4} bytes) exceed this device's ${limit}-byte buffer limit`);
    const words = this.device.createBuffer({ label: 'packed words', size: Math.max(4, wanted * 4), usage: storageUsage() });
    this.#buffers.words.destroy();
    this.#buffers.words = words;
    this.#generation++;
  }

  /** A layer's packed buffers: the model-wide buffers and the layer's offsets (valid until the next adapt()). */
  layer(ref: number | string): PackedLayerBindings {
    this.#checkAlive();
    const l = this.layerIndex(ref);
    const packing = this.#packing(l);
    const region = this.regions.layers[l]!;
    const b = this.#buffers;
    return {
      outChannels: region.outChannels,
      rowLength: region.rowLength,
      groups: packing.groups.slice(),
      words: { buffer: b.words },
      wordStart: region.wordStart,
      ranges: { buffer: b.ranges },
      chan: { buffer: b.chan },
      tableStart: region.tableStart,
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
