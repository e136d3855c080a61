/**
 * The public in-page SDK: `createReranker()` assembles the parts (model loader + weight store,
 * GRU profiler, drift detector, strategy client, resource transform T, CPU/WebGPU backends)
 * into one object a shop page uses:
 *
 *   const reranker = await createReranker({ model, strategyEndpoint });
 *   reranker.observe('sku-42');                          // a click
 *   const ranked = await reranker.rerank(candidateIds);  // [{ id, score }], best first
 *   const top = await reranker.recommend({ k: 20 });     // the whole catalogue, no candidate list
 *
 * Flow of a click: the GRU profile is updated (bounded work per click), the drift detector
 * decides; on 'initial' or 'drift' one strategy request starts in the background (the detector
 * holds further requests until it is answered). Reranks keep using the strategy in use until the
 * new one is applied (adapted on the GPU, or quantized + dequantized on the CPU); then 'strategy'
 * is emitted. Only z (and the model id) leaves the page; T runs here, so the budget never does.
 */
import {
  type CandidateBound,
  candidateBound,
  type CandidateEmbedding,
  CheckedCandidates,
  representationDim,
  representationL1Bound,
} from '../core/forward/index.ts';
import { frozenWeightsByName } from '../core/frozen.ts';
import { decodeStrategy } from '../core/bitstream.ts';
import { DriftDetector } from '../core/drift.ts';
import type { DriftOptions } from '../core/drift.ts';
import { ChordError } from '../core/errors.ts';
import { DEFAULT_GRU_WINDOW, GruProfiler } from '../core/gru.ts';
// The GPU engine's buffer capacity is the default limit on both backends.
import { DEFAULT_MAX_CANDIDATES } from '../gpu/engine.ts';
import { GpuDeviceLostError, WebGpuUnavailableError } from '../gpu/errors.ts';
import { StrategyFetchError } from '../sw/errors.ts';
import type { FetchPolicy } from '../sw/protocol.ts';
import { CacheStorageStrategyCache } from '../sw/strategy-cache.ts';
import { strategyCacheName } from '../sw/version.ts';
import type { BackendGpuMemory, BackendKind, RerankBackend } from './backend.ts';
import { CpuBackend } from './backend-cpu.ts';
import { WebGpuBackend } from './backend-webgpu.ts';
import { ArtifactError } from './errors.ts';
import type { StoreIntegrityError } from './errors.ts';
import { Emitter } from './events.ts';
import type { Handler } from './events.ts';
import { loadDeviceModel } from './model-loader.ts';
import type { DeviceModel } from './model-loader.ts';
import type { ProgressStage } from './progress.ts';
import { budgetFromResources, readResourceSignals } from './resources.ts';
import type { ResourceSignals } from './resources.ts';
import { RerankerDisposedError, RerankInputError, UnknownItemError } from './reranker-errors.ts';
import { StrategyClient } from './strategy-client.ts';
import type { StrategyResult, StrategyTransport } from './strategy-client.ts';
import { defaultStrategy, effectiveStrategy } from './strategy-state.ts';
import type { EffectiveStrategy, ReceivedStrategy, StrategyInfo } from './strategy-state.ts';
import { WeightStore } from './store.ts';

export type DevicePreference = 'auto' | 'webgpu' | 'cpu';
export type BudgetSetting = number | 'auto' | null;
export type UnknownItemPolicy = 'error' | 'skip';

/** Loading stages: the store/download/verify/frozen steps of progress.ts, then these. */
export type LoadStage = ProgressStage | 'backend' | 'strategy' | 'ready';

export interface LoadProgress {
  readonly stage: LoadStage;
  readonly item: string;
  /** Bytes for I/O stages, layers for 'frozen', steps otherwise. */
  readonly loaded: number;
  /** undefined when unknown (a download without a Content-Length, or a compressed one). */
  readonly total: number | undefined;
}

export interface DriftEvent {
  /** 'initial': first strategy of this session; 'drift': the profile moved away from the last one's. */
  readonly reason: 'initial' | 'drift';
  /** Distance of the profile to the one the strategy in use was computed for (NaN for 'initial'). */
  readonly distance: number;
  /** Clicks observed so far. */
  readonly clicks: number;
}

export type StrategyChangeReason = 'load' | 'initial' | 'drift' | 'budget' | 'last-good';

export interface StrategyEvent {
  readonly strategy: StrategyInfo;
  readonly previous: StrategyInfo | null;
  readonly reason: StrategyChangeReason;
  /** Milliseconds spent applying it (adapt on the GPU, or quantize on the CPU). */
  readonly applyMs: number;
}

export interface FallbackEvent {
  readonly from: 'webgpu';
  readonly to: 'cpu';
  /** 'unavailable': no WebGPU here; 'init-failed': the engine could not be built; 'device-lost'. */
  readonly reason: 'unavailable' | 'init-failed' | 'device-lost';
  readonly error: Error;
  /** The strategy carried over to the CPU backend (null if the fallback happened before one was applied). */
  readonly strategy: StrategyInfo | null;
}

export interface RerankerErrorEvent {
  /** A background failure; reranking goes on with the strategy in use. */
  readonly error: Error;
  readonly during: 'strategy-fetch' | 'strategy-apply';
  /** 'last-good': the network failed and the last good strategy was used instead. */
  readonly recovered: 'last-good' | 'kept-current';
}

export interface RerankerEvents {
  drift: DriftEvent;
  strategy: StrategyEvent;
  fallback: FallbackEvent;
  error: RerankerErrorEvent;
}

export type RerankerHandlers = { readonly [K in keyof RerankerEvents]?: Handler<RerankerEvents[K]> };

export interface CreateRerankerOptions {
  /** URL of the model artifact directory (manifest.json, items.json, backbone.*, gru.*). */
  readonly model: string | URL;
  /** Base URL of the strategy server (POST <endpoint>/v1/models/:modelId/strategy). */
  readonly strategyEndpoint: string | URL;
  /** 'auto' (default): WebGPU, else the CPU; 'webgpu': WebGPU or reject; 'cpu': never WebGPU. */
  readonly device?: DevicePreference;
  /**
   * Average bits for the resource transform T: a number, 'auto' (default: from the device's
   * signals, see resources.ts) or null (the strategy as sent). With an off level (a level table
   * starting at 0), T switches channels off only once every other demotion is spent.
   */
  readonly budget?: BudgetSetting;
  readonly onProgress?: (progress: LoadProgress) => void;
  /**
   * Fetch strategies through the strategy service worker (it keeps the backoff state and the last
   * good strategy across page loads). true: the package's prebuilt worker (`chord-rerank/strategy-sw.js`,
   * which Vite and webpack copy into the app's build; from this repository's sources, the worker Vite
   * builds from src/sw/strategy-sw.ts); a string/URL: where your site serves that file. Default
   * false: fetch from the page (same policy and the same Cache Storage). A worker that cannot be
   * registered is not an error: strategies are then fetched from the page (see strategyTransport).
   */
  readonly serviceWorker?: boolean | string | URL;
  /** Handlers registered before loading starts, so they also see load-time events ('fallback', 'strategy'). */
  readonly on?: RerankerHandlers;
  /** Candidates not in items.json: 'error' (default, UnknownItemError) or 'skip' (left out). */
  readonly unknownItems?: UnknownItemPolicy;
  /** Most candidates per rerank, on every backend (default 1024). */
  readonly maxCandidates?: number;
  /** Replays earlier clicks (shop ids, oldest first) into the profile without requests, e.g. from sessionStorage. */
  readonly history?: readonly string[];
  /** Clicks the GRU profile summarises (default 20). */
  readonly gruWindow?: number;
  /** Drift detector tuning (src/core/drift.ts). */
  readonly drift?: DriftOptions;
  /** Strategy request timeout and backoff. */
  readonly strategyPolicy?: Partial<FetchPolicy>;
  /** Keep trained tensors in IndexedDB (default true). */
  readonly persist?: boolean;
  /** fetch for artifacts and in-page strategy requests (default globalThis.fetch). */
  readonly fetch?: typeof fetch;
}

export interface ObserveResult {
  /** False when the id is not in items.json (the click is ignored). */
  readonly accepted: boolean;
  /** True when this click started a strategy request. */
  readonly requested: boolean;
  /** Profile distance to the strategy's reference (NaN when there is none). */
  readonly distance: number;
}

export interface RankedItem {
  readonly id: string;
  readonly score: number;
}

export interface RerankOptions {
  /** How many to return (default: all candidates). */
  readonly k?: number;
  readonly unknownItems?: UnknownItemPolicy;
}

export interface RecommendOptions {
  /** How many to return (default 10; at most maxCandidates). */
  readonly k?: number;
}

/** What the loaded model takes, in bytes (see Reranker.memory). */
export interface MemoryReport {
  readonly itemTable: {
    readonly rows: number;
    readonly dim: number;
    readonly bits: 8;
    /** Bytes of the 8-bit table (int8 codes + one f16 scale per row), as stored in IndexedDB and on the GPU. */
    readonly bytes: number;
    /** Bytes of the same table in float32. */
    readonly fp32Bytes: number;
    /** Where it came from this load. */
    readonly source: 'store' | 'network';
    /** How the model ships it: 8 = already 8-bit (item_emb.q8, manifest version 2), 32 = float32 in backbone.bin, quantized by the page. */
    readonly shippedBits: 8 | 32;
    /** A stored copy that failed its check (hash, length, layout) and was replaced by a download, else null. */
    readonly dropped: StoreIntegrityError | null;
  };
  /** GPU buffers of the weights the kernels read (WebGPU backend only, else null). */
  readonly gpu: BackendGpuMemory | null;
}

export type Candidate = string | { readonly id: string; readonly embedding: ArrayLike<number>; readonly bias?: number };


type ParsedCandidates =
  | { readonly kind: 'ids'; readonly ids: string[]; readonly indices: Uint32Array }
  | { readonly kind: 'embeddings'; readonly list: CheckedCandidates };

function toUrl(value: string | URL, name: string): string {
  try {
    return new URL(String(value), globalThis.location?.href).href;
  } catch {
    throw new RerankInputError(`${name} ${JSON.stringify(String(value))} is not a URL`);
  }
}

function checkBudget(budget: unknown): BudgetSetting {
  if (budget === null || budget === 'auto') return budget;
  if (typeof budget === 'number' && Number.isFinite(budget) && budget > 0) return budget;
  throw new RerankInputError(`budget must be a positive number of bits, 'auto' or null; got ${String(budget)}`);
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** The last good strategy an earlier load left in Cache Storage, if it still fits this model. */
async function restoreLastGood(model: DeviceModel): Promise<ReceivedStrategy | null> {
  const storage = globalThis.caches;
  const base = globalThis.location?.href;
  if (!storage || !base) return null;
  const { manifest } = model;
  try {
    const entry = await new CacheStorageStrategyCache(storage, strategyCacheName(), base).get(manifest.modelId, model.version);
    if (!entry) return null;
    const decoded = decodeStrategy(entry.bytes, {
      modelId: manifest.modelId,
      frozenWeightsHash: manifest.frozenWeightsHash,
      layers: manifest.layers,
    });
    return {
      strategy: decoded.strategy,
      source: 'cache',
      stale: true,
      bytes: entry.bytes.byteLength,
      revision: entry.revision,
      fetchedAt: entry.fetchedAt,
    };
  } catch {
    return null; // no Cache Storage here (opaque origin, insecure context) or a damaged entry
  }
}

export class Reranker {
  readonly #model: DeviceModel;
  readonly #client: StrategyClient;
  readonly #store: WeightStore | undefined;
  readonly #profiler: GruProfiler;
  readonly #drift: DriftDetector;
  readonly #events: Emitter<RerankerEvents>;
  readonly #unknownItems: UnknownItemPolicy;
  readonly #maxCandidates: number;
  readonly #historyLength: number;
  /** The candidate rule's bound for this model (the same on both backends). */
  readonly #candidateBound: CandidateBound;
  #history: number[] = [];
  #backend: RerankBackend;
  #received: ReceivedStrategy;
  #effective: EffectiveStrategy | null = null;
  #budget: number | null;
  #resources: ResourceSignals | null = null;
  #applyChain: Promise<unknown> = Promise.resolve();
  #fallback: Promise<void> | null = null;
  #disposed = false;

  /** Use createReranker(). */
  private constructor(parts: {
    model: DeviceModel;
    client: StrategyClient;
    store: WeightStore | undefined;
    profiler: GruProfiler;
    drift: DriftDetector;
    events: Emitter<RerankerEvents>;
    backend: RerankBackend;
    received: ReceivedStrategy;
    unknownItems: UnknownItemPolicy;
    maxCandidates: number;
  }) {
    this.#model = parts.model;
    this.#client = parts.client;
    this.#store = parts.store;
    this.#profiler = parts.profiler;
    this.#drift = parts.drift;
    this.#events = parts.events;
    this.#backend = parts.backend;
    this.#received = parts.received;
    this.#unknownItems = parts.unknownItems;
    this.#maxCandidates = parts.maxCandidates;
    const m = this.#model.manifest;
    this.#historyLength = Math.max(m.dims.maxLen, parts.profiler.window);
    this.#candidateBound = candidateBound(representationL1Bound(m, this.#model.backbone, frozenWeightsByName(this.#model.frozen)));
    this.#budget = null;
    this.#watch(parts.backend);
  }

  /** @internal The steps of createReranker, in order. */
  static async create(options: CreateRerankerOptions): Promise<Reranker> {
    if (typeof options !== 'object' || options === null) throw new RerankInputError('createReranker needs an options object');
    const baseUrl = toUrl(options.model, 'model');
    const endpoint = toUrl(options.strategyEndpoint, 'strategyEndpoint').replace(/\/+$/, '');
    const device = options.device ?? 'auto';
    if (!['auto', 'webgpu', 'cpu'].includes(device)) {
      throw new RerankInputError(`device must be 'auto', 'webgpu' or 'cpu'; got ${String(device)}`);
    }
    const budgetSetting = checkBudget(options.budget === undefined ? 'auto' : options.budget);
    const unknownItems = options.unknownItems ?? 'error';
    if (unknownItems !== 'error' && unknownItems !== 'skip') throw new RerankInputError(`unknownItems must be 'error' or 'skip'`);
    const maxCandidates = options.maxCandidates ?? DEFAULT_MAX_CANDIDATES;
    if (!Number.isInteger(maxCandidates) || maxCandidates < 1) throw new RerankInputError(`maxCandidates must be a positive integer`);
    const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
    const progress = options.onProgress;
    const report = (stage: LoadStage, item: string, loaded: number, total: number) => progress?.({ stage, item, loaded, total });

    const events = new Emitter<RerankerEvents>();
    for (const [type, handler] of Object.entries(options.on ?? {})) {
      if (handler) events.on(type as keyof RerankerEvents, handler as Handler<unknown>);
    }

    const store = options.persist === false ? undefined : await WeightStore.open();
    let backend: RerankBackend | undefined;
    try {
      const model = await loadDeviceModel({
        baseUrl,
        fetch: fetchFn,
        ...(store ? { store } : {}),
        ...(progress ? { onProgress: progress } : {}),
      });
      const { manifest } = model;
      const profiler = GruProfiler.fromTensors(model.gru, model.backbone, { window: options.gruWindow ?? DEFAULT_GRU_WINDOW });
      if (profiler.weights.hiddenDim !== manifest.userDim) {
        throw new ArtifactError(
          'ARTIFACT_INVALID',
          `${baseUrl.replace(/\/+$/, '')}/gru.json`,
          `GRU hidden size ${profiler.weights.hiddenDim} differs from the manifest's userDim ${manifest.userDim}`,
        );
      }

      const swUrl =
        options.serviceWorker === true
          ? (await import('../sw/url.ts')).default
          : typeof options.serviceWorker === 'string' || options.serviceWorker instanceof URL
            ? options.serviceWorker
            : null;
      const clientPromise = StrategyClient.create({
        endpoint,
        modelId: manifest.modelId,
        frozenWeightsHash: manifest.frozenWeightsHash,
        modelVersion: model.version,
        layers: manifest.layers,
        serviceWorkerUrl: swUrl,
        ...(options.strategyPolicy ? { policy: options.strategyPolicy } : {}),
        fetch: fetchFn,
      });

      report('backend', device, 0, 1);
      let loadFallback: Omit<FallbackEvent, 'strategy'> | null = null;
      if (device !== 'cpu') {
        try {
          backend = await WebGpuBackend.create(manifest, model.backbone, model.frozen, { maxCandidates, itemTable: model.itemTable.table });
        } catch (e) {
          if (device === 'webgpu') throw e;
          loadFallback = {
            from: 'webgpu',
            to: 'cpu',
            reason: e instanceof WebGpuUnavailableError ? 'unavailable' : 'init-failed',
            error: asError(e),
          };
        }
      }
      backend ??= new CpuBackend(manifest, model.backbone, model.frozen);
      report('backend', backend.name, 1, 1);
      const [client, restored] = await Promise.all([clientPromise, restoreLastGood(model)]);

      const reranker = new Reranker({
        model,
        client,
        store,
        profiler,
        drift: new DriftDetector(options.drift),
        events,
        backend,
        received: restored ?? defaultStrategy(manifest),
        unknownItems,
        maxCandidates,
      });
      if (loadFallback) events.emit('fallback', { ...loadFallback, strategy: null });
      if (options.history) reranker.#replay(options.history);
      report('strategy', restored ? 'cache' : 'default', 0, 1);
      await reranker.#setBudget(budgetSetting, 'load');
      report('strategy', restored ? 'cache' : 'default', 1, 1);
      report('ready', manifest.modelId, 1, 1);
      return reranker;
    } catch (e) {
      backend?.dispose();
      store?.close();
      throw e;
    }
  }

  /** 'webgpu' or 'cpu': where reranks run now (changes to 'cpu' on a fallback). */
  get backend(): BackendKind {
    return this.#backend.kind;
  }

  /** The GPU adapter's description, or the CPU path's name. */
  get backendName(): string {
    return this.#backend.name;
  }

  /** The strategy in use (never null once createReranker resolved: the default until one arrives). */
  get strategy(): StrategyInfo | null {
    return this.#effective?.info ?? null;
  }

  /**
   * How strategies are fetched: 'service-worker' when the `serviceWorker` option's worker
   * registered and activated, else 'direct' (from the page; `strategyTransportNote` says why).
   */
  get strategyTransport(): StrategyTransport {
    return this.#client.transport;
  }

  /** Why strategies are fetched from the page rather than the service worker (null when they are not). */
  get strategyTransportNote(): string | null {
    return this.#client.transport === 'service-worker' ? null : this.#client.fallbackReason;
  }

  /** The device signals the last 'auto' budget was chosen from (null if the budget was never 'auto'). */
  get resources(): ResourceSignals | null {
    return this.#resources;
  }

  /**
   * Bytes the model takes: the 8-bit item table (stored and on the GPU, against its float32 size)
   * and, on WebGPU, the GPU buffers of the quantized layers and the item table.
   */
  get memory(): MemoryReport {
    const t = this.#model.itemTable;
    return {
      itemTable: {
        rows: t.table.rows,
        dim: t.table.dim,
        bits: 8,
        bytes: t.bytes,
        fp32Bytes: t.fp32Bytes,
        source: t.source,
        shippedBits: t.shippedBits,
        dropped: t.dropped ?? null,
      },
      gpu: this.#backend.gpuMemory(),
    };
  }

  get modelId(): string {
    return this.#model.manifest.modelId;
  }

  /** Shop ids of the recent clicks the profile holds, oldest first (to persist across page loads). */
  get history(): string[] {
    return this.#history.map((i) => this.#model.items[i]!);
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  on<K extends keyof RerankerEvents>(type: K, handler: Handler<RerankerEvents[K]>): () => void {
    return this.#events.on(type, handler);
  }

  off<K extends keyof RerankerEvents>(type: K, handler: Handler<RerankerEvents[K]>): void {
    this.#events.off(type, handler);
  }

  /**
   * Records a click. Updates the GRU profile, runs the drift detector and, on a drift, starts one
   * background strategy request. Clicks on ids not in items.json are ignored (`accepted: false`):
   * a shop's newest products should not break its pages.
   */
  observe(click: string | { readonly id: string }): ObserveResult {
    this.#checkAlive();
    const id = typeof click === 'string' ? click : (click as { id?: unknown } | null)?.id;
    if (typeof id !== 'string') throw new RerankInputError('observe() takes a shop id or an object with an `id` string');
    const index = this.#model.index.get(id);
    if (index === undefined) return { accepted: false, requested: false, distance: NaN };
    const z = this.#record(index);
    const decision = this.#drift.observe(z);
    if (decision.request) {
      const reason = decision.reason === 'initial' ? 'initial' : 'drift';
      this.#events.emit('drift', { reason, distance: decision.distance, clicks: this.#profiler.clicks });
      void this.#requestStrategy(z, reason);
    }
    return { accepted: true, requested: decision.request, distance: decision.distance };
  }

  /**
   * Ranks `candidates` for the shopper, best first: shop ids (scored against the model's item
   * table) or `{ id, embedding }` objects (the shop's own vectors in the model's output space).
   * Ties keep the candidates' order, so the result is deterministic. Embeddings follow one rule
   * on both backends (core/forward/candidates.ts): numbers only (arrays or typed arrays of any
   * number kind), finite, within a magnitude that cannot overflow a float32 score; else
   * ForwardError FORWARD_BAD_CANDIDATE, before either backend runs.
   */
  async rerank(candidates: readonly Candidate[], options: RerankOptions = {}): Promise<RankedItem[]> {
    this.#checkAlive();
    if (typeof options !== 'object' || options === null) throw new RerankInputError(`rerank options must be an object; got ${String(options)}`);
    const parsed = this.#parseCandidates(candidates, options.unknownItems ?? this.#unknownItems);
    const count = parsed.kind === 'ids' ? parsed.ids.length : parsed.list.count;
    const k = options.k ?? count;
    if (!Number.isInteger(k) || k < 0) throw new RerankInputError(`k must be a non-negative integer; got ${String(k)}`);
    const history = this.#history.slice(-this.#model.manifest.dims.maxLen);
    const { order, scores } = await this.#withBackend((b) =>
      b.rerank(history, parsed.kind === 'ids' ? parsed.indices : parsed.list, Math.min(k, count)),
    );
    this.#checkAlive();
    return Array.from(order, (i, r) => ({
      id: parsed.kind === 'ids' ? parsed.ids[i]! : (parsed.list.ids[i] as string),
      score: scores[r]!,
    }));
  }

  /**
   * The shopper's top k of the whole catalogue (every item of items.json), best first, with the
   * same scores and tie-break as rerank(): for pages with no candidate list of their own ("you may
   * also like"). Items the shopper clicked are not left out.
   */
  async recommend(options: RecommendOptions = {}): Promise<RankedItem[]> {
    this.#checkAlive();
    if (typeof options !== 'object' || options === null) throw new RerankInputError(`recommend options must be an object; got ${String(options)}`);
    const k = options.k ?? 10;
    if (!Number.isInteger(k) || k < 0 || k > this.#maxCandidates) {
      throw new RerankInputError(`k must be an integer in 0..${this.#maxCandidates} (maxCandidates); got ${String(k)}`);
    }
    const history = this.#history.slice(-this.#model.manifest.dims.maxLen);
    const { order, scores } = await this.#withBackend((b) => b.recommend(history, k));
    this.#checkAlive();
    return Array.from(order, (i, r) => ({ id: this.#model.items[i]!, score: scores[r]! }));
  }

  /**
   * Re-applies T to the strategy in use for a new budget: a number (average bits), 'auto' (from
   * the device's signals) or null (no transform). Local only: no request.
   */
  async setBudget(budget: BudgetSetting): Promise<StrategyInfo> {
    this.#checkAlive();
    return this.#setBudget(checkBudget(budget), 'budget');
  }

  /** Releases the GPU device and the store; later calls throw RerankerDisposedError. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#backend.dispose();
    this.#store?.close();
    this.#events.clear();
  }

  // ---- internals ----

  #checkAlive(): void {
    if (this.#disposed) throw new RerankerDisposedError();
  }

  #record(index: number): Float32Array {
    const z = this.#profiler.click(index);
    this.#history.push(index);
    if (this.#history.length > this.#historyLength) this.#history.splice(0, this.#history.length - this.#historyLength);
    return z;
  }

  #replay(ids: readonly string[]): void {
    if (!Array.isArray(ids)) throw new RerankInputError('history must be an array of shop ids');
    for (const id of ids) {
      const index = typeof id === 'string' ? this.#model.index.get(id) : undefined;
      if (index !== undefined) this.#record(index);
    }
  }

  #parseCandidates(candidates: readonly Candidate[], unknown: UnknownItemPolicy): ParsedCandidates {
    if (!Array.isArray(candidates)) throw new RerankInputError('candidates must be an array');
    if (unknown !== 'error' && unknown !== 'skip') throw new RerankInputError(`unknownItems must be 'error' or 'skip'`);
    if (candidates.length > this.#maxCandidates) {
      throw new RerankInputError(`${candidates.length} candidates exceed maxCandidates (${this.#maxCandidates})`);
    }
    if (candidates.every((c) => typeof c === 'string')) {
      const ids: string[] = [];
      const indices: number[] = [];
      const missing: string[] = [];
      for (const id of candidates as readonly string[]) {
        const index = this.#model.index.get(id);
        if (index === undefined) missing.push(id);
        else {
          ids.push(id);
          indices.push(index);
        }
      }
      if (missing.length > 0 && unknown === 'error') throw new UnknownItemError(missing);
      return { kind: 'ids', ids, indices: Uint32Array.from(indices) };
    }
    candidates.forEach((c, i) => {
      if (typeof c !== 'object' || c === null || typeof c.id !== 'string' || !('embedding' in c)) {
        throw new RerankInputError(`candidate ${i}: pass all shop ids (strings) or all { id, embedding } objects`);
      }
    });
    const dim = representationDim(this.#model.manifest);
    return { kind: 'embeddings', list: CheckedCandidates.check(candidates as readonly CandidateEmbedding[], dim, this.#candidateBound) };
  }

  async #setBudget(setting: BudgetSetting, reason: 'load' | 'budget'): Promise<StrategyInfo> {
    const before = async (): Promise<void> => {
      if (setting === 'auto') {
        this.#resources = await readResourceSignals(this.#backend.kind, this.#backend.adapter);
        this.#budget = budgetFromResources(this.#resources).budget;
      } else {
        this.#budget = setting;
      }
    };
    return this.#enqueueApply(null, reason, { before });
  }

  /**
   * Applies `received` (null: the one in use, e.g. for a new budget) through T, one apply at a
   * time in call order; `before` runs first inside the queue (budget changes).
   */
  #enqueueApply(
    received: ReceivedStrategy | null,
    reason: StrategyChangeReason,
    hooks: { readonly before?: () => Promise<void>; readonly applied?: () => void } = {},
  ): Promise<StrategyInfo> {
    const run = async (): Promise<StrategyInfo> => {
      this.#checkAlive();
      await hooks.before?.();
      const next = received ?? this.#received;
      const effective = effectiveStrategy(next, this.#model.frozenInfo, this.#budget);
      const t0 = performance.now();
      await this.#withBackend((b) => b.applyStrategy(effective.strategy));
      const applyMs = performance.now() - t0;
      this.#checkAlive();
      const previous = this.#effective?.info ?? null;
      this.#received = next;
      this.#effective = effective;
      hooks.applied?.(); // before the event, so handlers see the detector already updated
      this.#events.emit('strategy', { strategy: effective.info, previous, reason, applyMs });
      return effective.info;
    };
    const result = this.#applyChain.then(run, run);
    this.#applyChain = result.catch(() => undefined);
    return result;
  }

  async #requestStrategy(z: Float32Array, reason: 'initial' | 'drift'): Promise<void> {
    let result: StrategyResult;
    try {
      result = await this.#client.fetchStrategy(z);
    } catch (e) {
      if (this.#disposed) return;
      this.#drift.markFailed();
      this.#events.emit('error', { error: asError(e), during: 'strategy-fetch', recovered: 'kept-current' });
      return;
    }
    if (this.#disposed) return;
    const received: ReceivedStrategy = {
      strategy: result.decoded.strategy,
      source: result.source,
      stale: result.stale,
      bytes: result.bytes.byteLength,
      revision: result.revision,
      fetchedAt: result.fetchedAt,
    };
    if (result.stale) {
      // The network failed; the worker/page cache answered with the last good strategy. It was
      // not computed for this z, so the drift stays open and is retried after the backoff.
      this.#drift.markFailed();
      const failure = result.failure;
      const error = new StrategyFetchError(failure?.code ?? 'STRATEGY_OFFLINE', failure?.message ?? 'strategy server unreachable');
      this.#events.emit('error', { error, during: 'strategy-fetch', recovered: 'last-good' });
      if (result.revision === this.#received.revision) return;
    }
    try {
      await this.#enqueueApply(received, result.stale ? 'last-good' : reason, {
        ...(result.stale ? {} : { applied: () => this.#drift.markApplied(z) }),
      });
    } catch (e) {
      if (this.#disposed) return;
      this.#drift.markFailed();
      this.#events.emit('error', { error: asError(e), during: 'strategy-apply', recovered: 'kept-current' });
    }
  }

  /** Runs `op` on the current backend; if the GPU is lost meanwhile, falls back and runs it on the CPU. */
  async #withBackend<T>(op: (backend: RerankBackend) => Promise<T>): Promise<T> {
    const backend = this.#backend;
    try {
      return await op(backend);
    } catch (e) {
      if (this.#disposed) throw new RerankerDisposedError();
      const replaced = this.#backend !== backend || this.#fallback !== null;
      if (backend.kind !== 'webgpu' || !(e instanceof GpuDeviceLostError || replaced)) throw e;
      await this.#fallBack(backend, asError(e));
      return op(this.#backend);
    }
  }

  #watch(backend: RerankBackend): void {
    void backend.lost?.then((error) => {
      if (!this.#disposed) void this.#fallBack(backend, error).catch(() => undefined);
    });
  }

  /** Replaces a lost WebGPU backend by the CPU one, with the strategy in use. Idempotent per backend. */
  #fallBack(from: RerankBackend, error: Error): Promise<void> {
    if (this.#fallback) return this.#fallback;
    if (this.#backend !== from) return Promise.resolve();
    this.#fallback = (async () => {
      const { manifest, backbone, frozen } = this.#model;
      const cpu = new CpuBackend(manifest, backbone, frozen);
      const current = this.#effective;
      if (current) await cpu.applyStrategy(current.strategy);
      from.dispose();
      this.#backend = cpu;
      this.#events.emit('fallback', {
        from: 'webgpu',
        to: 'cpu',
        reason: 'device-lost',
        error: error instanceof ChordError ? error : new GpuDeviceLostError('unknown', error.message),
        strategy: current?.info ?? null,
      });
    })().finally(() => {
      this.#fallback = null;
    });
    return this.#fallback;
  }
}

/** Loads the model, picks a backend, applies the first strategy; resolves when reranks can run. */
export function createReranker(options: CreateRerankerOptions): Promise<Reranker> {
  return Reranker.create(options);
}
