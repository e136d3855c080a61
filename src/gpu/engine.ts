/**
 * GpuRerankEngine: the whole rerank (backbone forward, candidate scores, top-k) on WebGPU, with the
 * ranking of the CPU path (src/core/forward: createForward + scoreCandidates + topK).
 *
 *   const engine = await GpuRerankEngine.create(device, manifest, trainedTensors, frozenLayers);
 *   await engine.applyStrategy(strategy);            // adapt on the GPU, one submit
 *   const { ids, scores } = await engine.rerank(recentItemIds, candidateIds, 10);
 *   const top = await engine.recommend(recentItemIds, 10);   // the whole catalogue, no candidate list
 *
 * Item table: with `itemTable` (core's 8-bit table) the kernels that look items up read its codes
 * and f16 scales from the `items` buffer (a quarter of the float32 table's bytes), dequantizing
 * each value in the kernel exactly as core does; without it, item_emb is float32 in `model`.
 *
 * Resident: trained tensors, packed weights (QuantizedModelWeights), activations, uniforms and bind
 * groups are created once; a strategy rewrites packed buffers and uniforms. The frozen f32 weights
 * are on the GPU only during applyStrategy, and the packed words are sized exactly to the strategy:
 * when a strategy needs a different number of words, the words buffer is replaced and the bind
 * groups are rebuilt. Per channel only min, max and the channel index stay on the GPU (10 bytes);
 * the kernels derive widths and word offsets from the width groups in their uniforms and recompute
 * the step (see packed-layout.ts).
 * A rerank writes the history/candidates with queue.writeBuffer, records every dispatch into one
 * compute pass, copies the top-k pairs to a resident staging buffer: ONE submit, ONE mapAsync.
 * Operations run one at a time, in call order.
 *
 * Device loss: every pending or later call rejects with GpuDeviceLostError; `lost` resolves with
 * it, so the caller can rebuild the engine on a new device.
 */
import { backboneLayers, type BackboneConfig } from '../core/backbones.ts';
import {
  type CandidateBound,
  candidateBound,
  type CandidateEmbedding,
  type CaserUserEmbedding,
  CheckedCandidates,
  createForward,
  representationL1Bound,
  ForwardError,
  SASREC_LN_EPS,
} from '../core/forward/index.ts';
import type { FrozenLayer } from '../core/frozen.ts';
import { itemTableScalesOffset, type ItemTableQ8 } from '../core/item-table.ts';
import type { Strategy } from '../core/strategy.ts';
import type { TensorMap } from '../core/tensor-file.ts';
import { awaitGpu, createBufferFrom, deviceLoss, GpuCommandError, storageUsage, throwIfLost } from './buffers.ts';
import { buildCaserPlan } from './caser-plan.ts';
import { encodeDispatch } from './dispatch.ts';
import { createEngineBindGroup, type EngineResources, RUN_BYTES, runUniform } from './engine-bindings.ts';
import type { BackbonePlan, Step } from './engine-plan.ts';
import { GpuDeviceLostError, GpuEngineError } from './errors.ts';
import { getPipeline, preparePipelines } from './pipeline-cache.ts';
import { QuantizedModelWeights, type WeightMemory } from './quantized-weights.ts';
import { buildSasrecPlan } from './sasrec-plan.ts';
import { CAND_MODE_ALL, CAND_MODE_EMBEDDINGS, CAND_MODE_IDS } from './shader-constants.ts';
import type { ItemTableLayout } from './embed-program.ts';
import { decodeTopk } from './topk-merge-program.ts';

export interface GpuEngineOptions {
  /** Per-token (SASRec) / per-tensor (Caser) activation fake-quantization bits at matmul inputs. */
  readonly activationBits?: number;
  /** SASRec layer-norm epsilon; default SASREC_LN_EPS. */
  readonly lnEps?: number;
  /** Caser's user half of the representation; default 'mean'. */
  readonly userEmbedding?: CaserUserEmbedding;
  /** Most candidates one rerank may score (sizes the resident buffers). Default 1024. */
  readonly maxCandidates?: number;
  /** Packed words sized exactly to each strategy ('fit', default) or for any strategy ('any'). */
  readonly wordCapacity?: 'any' | 'fit';
  /** Frozen f32 weights on the GPU only while adapting ('transient', default) or always ('resident'). */
  readonly frozenResidency?: 'transient' | 'resident';
  /**
   * The 8-bit item table (core/item-table.ts) to embed and score with instead of the float32
   * item_emb, which then only serves validation and is not uploaded. Its rows x dim must be
   * item_emb's.
   */
  readonly itemTable?: ItemTableQ8;
}

/** GPU bytes of the item table the kernels read. */
export interface ItemTableMemory {
  readonly format: 'int8' | 'float32';
  readonly bytes: number;
}

export interface RerankResult<Id> {
  /** Candidate ids, best first (k of them). */
  readonly ids: Id[];
  /** Indices into the candidate list, best first. */
  readonly order: Uint32Array;
  /** Scores of `ids`, as the GPU computed them (f32). */
  readonly scores: Float32Array;
}

/** Frozen weights: core's FrozenLayer list (generateFrozenWeights) or arrays by layer name. */
export type FrozenWeightsInput = readonly FrozenLayer[] | ReadonlyMap<string, Float32Array>;

export const DEFAULT_MAX_CANDIDATES = 1024;
const PARAMS_ALIGN = 256;

interface PreparedStep {
  readonly step: Step;
  readonly pipeline: GPUComputePipeline;
  /** Rebuilt when the packed weights' buffers change (QuantizedModelWeights.generation). */
  bindGroup: GPUBindGroup;
  readonly offset: number;
}

interface EngineBuffers extends Omit<EngineResources, 'weights'> {
  readonly params: GPUBuffer;
  readonly staging: GPUBuffer;
}

function frozenByName(frozen: FrozenWeightsInput): ReadonlyMap<string, Float32Array> {
  if (frozen instanceof Map) return frozen;
  return new Map((frozen as readonly FrozenLayer[]).map((l) => [l.spec.name, l.weights]));
}

type Candidates = ArrayLike<number> | readonly CandidateEmbedding[] | CheckedCandidates;

function isEmbeddingList(c: Candidates): c is readonly CandidateEmbedding[] {
  return Array.isArray(c) && c.length > 0 && typeof c[0] === 'object' && c[0] !== null;
}

export class GpuRerankEngine {
  readonly device: GPUDevice;
  readonly config: BackboneConfig;
  /** Length of the user representation (SASRec hidden, Caser 2d). */
  readonly repDim: number;
  readonly numItems: number;
  readonly maxCandidates: number;
  /** What candidate embeddings may hold (core/forward/candidates.ts): scores cannot overflow float32. */
  readonly candidateBound: CandidateBound;
  /** Resolves (never rejects) with the loss error once the device is lost. */
  readonly lost: Promise<GpuDeviceLostError>;

  readonly #weights: QuantizedModelWeights;
  readonly #plan: BackbonePlan;
  readonly #buffers: EngineBuffers;
  readonly #steps: readonly PreparedStep[];
  readonly #idsScratch: Uint32Array<ArrayBuffer>;
  readonly #itemTableMemory: ItemTableMemory;
  #chain: Promise<unknown> = Promise.resolve();
  #strategy: Strategy | undefined;
  #destroyed = false;
  #submits = 0;
  #readbacks = 0;
  #boundGeneration: number;

  private constructor(
    device: GPUDevice,
    config: BackboneConfig,
    repDim: number,
    numItems: number,
    maxCandidates: number,
    bound: CandidateBound,
    weights: QuantizedModelWeights,
    plan: BackbonePlan,
    buffers: EngineBuffers,
    steps: readonly PreparedStep[],
    itemTableMemory: ItemTableMemory,
  ) {
    this.#itemTableMemory = itemTableMemory;
    this.device = device;
    this.config = config;
    this.repDim = repDim;
    this.numItems = numItems;
    this.maxCandidates = maxCandidates;
    this.candidateBound = bound;
    this.#weights = weights;
    this.#plan = plan;
    this.#buffers = buffers;
    this.#steps = steps;
    this.#idsScratch = new Uint32Array(plan.idsLength);
    this.#boundGeneration = weights.generation;
    this.lost = device.lost.then(
      (info) => new GpuDeviceLostError(info.reason, `GPU device lost (${info.reason}): ${info.message}`),
    );
  }

  /**
   * Validates the inputs as the CPU forward does, uploads everything, compiles every kernel ahead
   * of first use. `config` is a manifest or any BackboneConfig.
   */
  static async create(
    device: GPUDevice,
    config: BackboneConfig,
    tensors: TensorMap,
    frozen: FrozenWeightsInput,
    options: GpuEngineOptions = {},
  ): Promise<GpuRerankEngine> {
    void deviceLoss(device);
    throwIfLost(device);
    const maxCandidates = options.maxCandidates ?? DEFAULT_MAX_CANDIDATES;
    if (!Number.isInteger(maxCandidates) || maxCandidates < 1) {
      throw new ForwardError('FORWARD_BAD_OPTION', `maxCandidates ${maxCandidates} must be a positive integer`);
    }
    const frozenMap = frozenByName(frozen);
    // The CPU forward's constructor validates dims, tensors, weights and options: same errors here.
    const reference = createForward(config, tensors, frozenMap, {
      ...(options.activationBits === undefined ? {} : { activationBits: options.activationBits }),
      ...(options.lnEps === undefined ? {} : { lnEps: options.lnEps }),
      ...(options.userEmbedding === undefined ? {} : { userEmbedding: options.userEmbedding }),
    });
    const layers = backboneLayers(config);
    const bound = candidateBound(
      representationL1Bound(config, tensors, frozenMap, options.userEmbedding === undefined ? {} : { userEmbedding: options.userEmbedding }),
    );
    const table = options.itemTable;
    const tableDim = config.backbone === 'sasrec' ? config.dims.hidden : config.dims.d;
    let tableLayout: ItemTableLayout | undefined;
    if (table) {
      if (table.rows !== reference.numItems + 1 || table.dim !== tableDim) {
        throw new ForwardError(
          'FORWARD_BAD_SHAPE',
          `the 8-bit item table is ${table.rows} x ${table.dim}; item_emb is ${reference.numItems + 1} x ${tableDim}`,
        );
      }
      tableLayout = { rowWords: table.rowStride / 4, scalesOffset: itemTableScalesOffset(table) / 4 };
    }
    let plan: BackbonePlan;
    if (config.backbone === 'sasrec') {
      plan = buildSasrecPlan(config.dims, tensors, {
        lnEps: options.lnEps ?? SASREC_LN_EPS,
        maxCandidates,
        ...(tableLayout ? { itemTable: tableLayout } : {}),
        ...(options.activationBits === undefined ? {} : { activationBits: options.activationBits }),
      });
    } else {
      plan = buildCaserPlan(config.dims, tensors, {
        userEmbedding: options.userEmbedding ?? 'mean',
        maxCandidates,
        ...(tableLayout ? { itemTable: tableLayout } : {}),
        ...(options.activationBits === undefined ? {} : { activationBits: options.activationBits }),
      });
    }

    const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    if (plan.model.byteLength > limit || plan.actLength * 4 > limit) {
      throw new GpuEngineError('GPU_ENGINE_LIMIT', `the trained tensors (${plan.model.byteLength} bytes) exceed this device's ${limit}-byte buffer limit`);
    }

    const programs = [...new Set(plan.steps.map((s) => s.program))];
    const [made, compiled] = await Promise.allSettled([
      QuantizedModelWeights.create(
        device,
        layers.map(({ name, outChannels, rowLength }) => ({ name, outChannels, rowLength })),
        layers.map((l) => frozenMap.get(l.name)!),
        {
          wordCapacity: options.wordCapacity ?? 'fit',
          frozenResidency: options.frozenResidency ?? 'transient',
        },
      ),
      awaitGpu(device, preparePipelines(device, programs)),
    ]);
    if (made.status === 'rejected') throw made.reason;
    const weights = made.value;
    if (compiled.status === 'rejected') {
      weights.destroy();
      throw compiled.reason;
    }
    // Already compiled: these resolve from the cache.
    const pipelines = await Promise.all(plan.steps.map((step) => getPipeline(device, step.program)));

    const repDim = reference.repDim;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let buffers: EngineBuffers | undefined;
    const steps: PreparedStep[] = [];
    let failure: unknown;
    try {
      buffers = GpuRerankEngine.#allocate(device, plan, repDim, maxCandidates, table);
      const res: EngineResources = { ...buffers, weights: weights.buffers };
      let offset = 0;
      for (const [i, step] of plan.steps.entries()) {
        const pipeline = pipelines[i]!;
        const bindGroup = GpuRerankEngine.#bindGroup(device, pipeline, step, res, buffers.params, offset);
        steps.push({ step, pipeline, bindGroup, offset });
        offset += Math.ceil(Math.ceil(step.program.paramsBytes / 16) * 16 / PARAMS_ALIGN) * PARAMS_ALIGN;
      }
    } catch (err) {
      failure = err;
    }
    const [validation, oom] = await awaitGpu(device, Promise.all([device.popErrorScope(), device.popErrorScope()]));
    const gpuError = validation ?? oom;
    if (failure === undefined && gpuError) {
      failure = new GpuCommandError(`creating the rerank engine: ${gpuError.message}`, { cause: gpuError });
    }
    if (failure !== undefined || !buffers) {
      weights.destroy();
      if (buffers) for (const b of Object.values(buffers)) b.destroy();
      throw failure;
    }
    const itemTableMemory: ItemTableMemory = table
      ? { format: 'int8', bytes: buffers.items.size }
      : { format: 'float32', bytes: (reference.numItems + 1) * tableDim * 4 };
    return new GpuRerankEngine(device, config, repDim, reference.numItems, maxCandidates, bound, weights, plan, buffers, steps, itemTableMemory);
  }

  static #bindGroup(
    device: GPUDevice,
    pipeline: GPUComputePipeline,
    step: Step,
    res: EngineResources,
    params: GPUBuffer,
    offset: number,
  ): GPUBindGroup {
    const size = Math.ceil(step.program.paramsBytes / 16) * 16;
    return createEngineBindGroup(device, pipeline, step.program, res, { buffer: params, offset, size });
  }

  static #allocate(device: GPUDevice, plan: BackbonePlan, repDim: number, maxCandidates: number, table: ItemTableQ8 | undefined): EngineBuffers {
    const storage = storageUsage();
    const paramsSize = plan.steps.reduce(
      (sum, s) => sum + Math.ceil(Math.ceil(s.program.paramsBytes / 16) * 16 / PARAMS_ALIGN) * PARAMS_ALIGN,
      0,
    );
    const act = device.createBuffer({ label: 'engine act', size: plan.actLength * 4, usage: storage });
    if (plan.actInit) device.queue.writeBuffer(act, plan.actInit.offset * 4, plan.actInit.data);
    return {
      params: device.createBuffer({ label: 'engine params', size: paramsSize, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }),
      run: device.createBuffer({ label: 'engine run', size: RUN_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }),
      act,
      model: createBufferFrom(device, plan.model, storage, 'engine model'),
      ids: device.createBuffer({ label: 'engine ids', size: plan.idsLength * 4, usage: storage }),
      cand: device.createBuffer({ label: 'engine candidates', size: maxCandidates * (repDim + 1) * 4, usage: storage }),
      out: device.createBuffer({ label: 'engine top-k', size: plan.outWords * 4, usage: storage }),
      items: table
        ? createBufferFrom(device, table.bytes, storage, 'engine item table (8-bit)')
        : device.createBuffer({ label: 'engine item table (none)', size: 4, usage: storage }),
      staging: device.createBuffer({
        label: 'engine readback',
        size: Math.max(maxCandidates * 8, repDim * 4),
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      }),
    };
  }

  /** queue.submit calls made by this engine (applyStrategy's adaptation included). */
  get submits(): number {
    return this.#submits;
  }

  /** mapAsync readbacks made by this engine. */
  get readbacks(): number {
    return this.#readbacks;
  }

  get strategy(): Strategy | undefined {
    return this.#strategy;
  }

  /**
   * GPU bytes of the quantizable weights: every buffer they need between adaptations (packed words,
   * per-channel min / max and channel index, frozen f32 weights if resident) and the peak during
   * the last adaptation.
   */
  get weightMemory(): WeightMemory {
    return this.#weights.memory;
  }

  /** GPU bytes of the item table the kernels embed and score with (8-bit, or float32 in `model`). */
  get itemTableMemory(): ItemTableMemory {
    return this.#itemTableMemory;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /**
   * Quantizes and packs the frozen weights to `strategy` on the GPU (one submit) and refreshes the
   * kernels' uniforms. Later reranks use it.
   */
  applyStrategy(strategy: Strategy): Promise<void> {
    return this.#enqueue(async () => {
      this.#checkAlive();
      const previous = this.#strategy;
      try {
        await this.#weights.adapt(strategy);
      } catch (err) {
        // adapt() checks the strategy before touching any buffer; if the weights still hold the
        // previous one, so do the uniforms, and reranks keep working with it.
        this.#strategy = previous !== undefined && this.#weights.strategy === previous ? previous : undefined;
        throw err;
      }
      this.#submits++; // QuantizedModelWeights.adapt records its dispatch in one submit
      this.#strategy = undefined;
      if (this.#weights.generation !== this.#boundGeneration) this.#rebind();
      for (const { step, offset } of this.#steps) {
        this.device.queue.writeBuffer(this.#buffers.params, offset, step.params(this.#weights));
      }
      this.#strategy = strategy;
    });
  }

  /**
   * The top k (default: all) of `candidates` for the shopper whose recent items are `history`
   * (oldest first, 0 = padding), best first, with core's tie-break. Candidates are catalogue ids
   * (1..numItems) or embeddings the shop sends (length repDim, optional bias), checked by the
   * candidate rule with this engine's candidateBound unless already checked.
   */
  rerank(history: ArrayLike<number>, candidates: ArrayLike<number>, k?: number): Promise<RerankResult<number>>;
  rerank(
    history: ArrayLike<number>,
    candidates: readonly CandidateEmbedding[] | CheckedCandidates,
    k?: number,
  ): Promise<RerankResult<string | number>>;
  rerank(history: ArrayLike<number>, candidates: Candidates, k?: number): Promise<RerankResult<string | number>>;
  rerank(history: ArrayLike<number>, candidates: Candidates, k?: number): Promise<RerankResult<string | number>> {
    return this.#enqueue(async () => {
      this.#checkReady();
      const checked = isEmbeddingList(candidates) ? CheckedCandidates.check(candidates, this.repDim, this.candidateBound) : candidates;
      const count = checked instanceof CheckedCandidates ? checked.count : checked.length;
      const kk = k ?? count;
      if (!Number.isInteger(kk) || kk < 0) throw new ForwardError('FORWARD_BAD_OPTION', `k = ${kk} must be a non-negative integer`);
      if (count > this.maxCandidates) {
        throw new GpuEngineError('GPU_ENGINE_LIMIT', `${count} candidates exceed this engine's maxCandidates (${this.maxCandidates})`);
      }
      const ids = this.#idsScratch;
      const n = this.#plan.encodeHistory(history, ids);
      const embeddings = checked instanceof CheckedCandidates;
      if (embeddings) this.#writeCandidateEmbeddings(checked);
      else this.#encodeCandidateIds(checked, ids);
      const size = Math.min(kk, count);
      if (size === 0) return { ids: [], order: new Uint32Array(0), scores: new Float32Array(0) };

      const mode = embeddings ? CAND_MODE_EMBEDDINGS : CAND_MODE_IDS;
      const pairs = new Uint32Array(await this.#run(n, count, size, mode, true, size * 8));
      const { order, scores } = decodeTopk(pairs, size);
      const chosen: (string | number)[] = Array.from(order, (i) => (embeddings ? checked.ids[i]! : checked[i]!));
      return { ids: chosen, order, scores };
    });
  }

  /**
   * The top k of the whole catalogue (items 1..numItems) for `history`, best first, with core's
   * tie-break: no candidate list to send. k is at most maxCandidates. `order` holds indices
   * into the catalogue (item id - 1), `ids` the item ids.
   */
  recommend(history: ArrayLike<number>, k: number): Promise<RerankResult<number>> {
    return this.#enqueue(async () => {
      this.#checkReady();
      if (!Number.isInteger(k) || k < 0) throw new ForwardError('FORWARD_BAD_OPTION', `k = ${k} must be a non-negative integer`);
      if (k > this.maxCandidates) {
        throw new GpuEngineError('GPU_ENGINE_LIMIT', `k = ${k} exceeds this engine's maxCandidates (${this.maxCandidates})`);
      }
      const n = this.#plan.encodeHistory(history, this.#idsScratch);
      const size = Math.min(k, this.numItems);
      if (size === 0) return { ids: [], order: new Uint32Array(0), scores: new Float32Array(0) };
      const pairs = new Uint32Array(await this.#run(n, this.numItems, size, CAND_MODE_ALL, true, size * 8));
      const { order, scores } = decodeTopk(pairs, size);
      return { ids: Array.from(order, (i) => i + 1), order, scores };
    });
  }

  /** The user representation after `history` (one submit, one readback): for checks and debugging. */
  represent(history: ArrayLike<number>): Promise<Float32Array> {
    return this.#enqueue(async () => {
      this.#checkReady();
      const n = this.#plan.encodeHistory(history, this.#idsScratch);
      return new Float32Array(await this.#run(n, 0, 0, CAND_MODE_IDS, false, this.repDim * 4));
    });
  }

  /** Frees every buffer of the engine (not the device). Later calls throw GpuEngineError. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#strategy = undefined;
    this.#weights.destroy();
    for (const b of Object.values(this.#buffers)) b.destroy();
  }

  /** New bind groups over the packed weights' current buffers (after adapt() replaced one). */
  #rebind(): void {
    const res: EngineResources = { ...this.#buffers, weights: this.#weights.buffers };
    for (const prepared of this.#steps) {
      prepared.bindGroup = GpuRerankEngine.#bindGroup(this.device, prepared.pipeline, prepared.step, res, this.#buffers.params, prepared.offset);
    }
    this.#boundGeneration = this.#weights.generation;
  }

  #encodeCandidateIds(candidates: ArrayLike<number>, ids: Uint32Array): void {
    const base = this.#plan.candIdsOffset;
    for (let i = 0; i < candidates.length; i++) {
      const id = candidates[i]!;
      if (!Number.isInteger(id) || id < 1 || id > this.numItems) {
        throw new ForwardError('FORWARD_BAD_ITEM', `candidate ${i} has id ${id}, expected an item id in 1..${this.numItems}`);
      }
      ids[base + i] = id;
    }
  }

  #writeCandidateEmbeddings(candidates: CheckedCandidates): void {
    if (candidates.dim !== this.repDim) {
      throw new ForwardError('FORWARD_BAD_CANDIDATE', `candidates were checked for length ${candidates.dim}, the representation has ${this.repDim}`);
    }
    const b = candidates.bound;
    if (b.maxAbsEmbedding > this.candidateBound.maxAbsEmbedding || b.maxAbsBias > this.candidateBound.maxAbsBias) {
      throw new ForwardError('FORWARD_BAD_CANDIDATE', "candidates were checked against a looser bound than this model's");
    }
    this.device.queue.writeBuffer(this.#buffers.cand, 0, candidates.embeddings);
    this.device.queue.writeBuffer(this.#buffers.cand, this.maxCandidates * this.repDim * 4, candidates.bias);
  }

  /**
   * Records the forward (and the scoring steps when `score`), one submit, one mapAsync of
   * `bytes` from the top-k pairs (score) or the representation.
   */
  async #run(n: number, candCount: number, k: number, candMode: number, score: boolean, bytes: number): Promise<ArrayBuffer> {
    const { device } = this;
    const b = this.#buffers;
    const plan = this.#plan;
    device.queue.writeBuffer(b.run, 0, runUniform(n, candCount, k, candMode));
    device.queue.writeBuffer(b.ids, 0, this.#idsScratch);

    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let encodeError: unknown;
    try {
      const encoder = device.createCommandEncoder({ label: 'rerank' });
      if (n === 0) {
        if (plan.emptyRepModelOffset === undefined) throw new GpuEngineError('GPU_ENGINE_STATE', 'n = 0 for a backbone without an empty-history representation');
        encoder.copyBufferToBuffer(b.model, plan.emptyRepModelOffset * 4, b.act, plan.repOffset * 4, this.repDim * 4);
      }
      const pass = encoder.beginComputePass({ label: 'rerank' });
      for (const { step, pipeline, bindGroup } of this.#steps) {
        if (step.stage === 'backbone' ? n === 0 : !score) continue;
        const [x, y] = step.grid(n, candCount);
        if (x === 0 || y === 0) continue;
        encodeDispatch(pass, pipeline, bindGroup, x, y);
      }
      pass.end();
      if (score) encoder.copyBufferToBuffer(b.out, plan.finalOffset * 4, b.staging, 0, bytes);
      else encoder.copyBufferToBuffer(b.act, plan.repOffset * 4, b.staging, 0, bytes);
      device.queue.submit([encoder.finish()]);
      this.#submits++;
    } catch (err) {
      encodeError = err;
    }
    const pops = Promise.all([device.popErrorScope(), device.popErrorScope()]);
    if (encodeError !== undefined) {
      await pops.catch(() => undefined);
      throw encodeError;
    }
    this.#readbacks++;
    const mapped = b.staging.mapAsync(GPUMapMode.READ, 0, bytes);
    try {
      const [[validation, oom]] = await awaitGpu(device, Promise.all([pops, mapped]));
      const error = validation ?? oom;
      if (error) throw new GpuCommandError(`rerank: ${error.message}`, { cause: error });
      return b.staging.getMappedRange(0, bytes).slice(0);
    } catch (err) {
      mapped.catch(() => undefined);
      if (this.#destroyed && !(err instanceof GpuDeviceLostError)) {
        throw new GpuEngineError('GPU_ENGINE_STATE', 'the engine was destroyed during the rerank');
      }
      throw err;
    } finally {
      if (b.staging.mapState === 'mapped') b.staging.unmap();
    }
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#chain.then(work, work);
    this.#chain = result.catch(() => undefined);
    return result;
  }

  #checkAlive(): void {
    if (this.#destroyed) throw new GpuEngineError('GPU_ENGINE_STATE', 'the engine was destroyed');
    throwIfLost(this.device);
  }

  #checkReady(): void {
    this.#checkAlive();
    if (!this.#strategy) throw new GpuEngineError('GPU_ENGINE_STATE', 'no strategy applied: call applyStrategy() first');
  }
}
