/**
 * z (+ budget) -> strategy bitstream, independent of HTTP: input checks, the z grid, the LRU
 * cache, de-duplication of identical in-flight requests, and one micro-batcher per model.
 *
 * The z grid. Every z is snapped to multiples of 2^-zGridBits (default 2^-16 ≈ 1.5e-5) *before*
 * the hypernet runs, and the cache key is the snapped z. So the answer is a pure function of the
 * key: a cache hit returns exactly the bytes a miss would compute, and the ETag of a z never
 * depends on cache state. What snapping can change is the answer relative to the raw z: only a
 * near-tie between two channel scores can flip. Measured on the SASRec benchmark model, 2000
 * random z in [-1, 1): strategies that differ from the unsnapped z's answer — 2^-12: 80 (max 4
 * channels each), 2^-14: 23, 2^-16: 5 (2 channels each, of 1152: two near-equal channels
 * trading tiers), 2^-18: 1, 2^-20: 0. tools/bench/bench-server.ts re-measures 2^-16 on every run (`z_grid`).
 * Two random users differ in ~500 channels, so 2^-16 is far below what separates users while it
 * absorbs the last-bit noise between GRU backends (WebGPU vs WASM/CPU float32), which keeps one
 * user on one cache entry and one ETag.
 */
import { LRUCache } from 'lru-cache';
import type { ServedModel } from './artifacts.ts';
import { MicroBatcher } from './batcher.ts';
import type { ItemResult } from './batcher.ts';
import type { ComputePool } from './compute-pool.ts';
import { ApiError } from './errors.ts';
import type { StrategyAnswer } from './strategy-compute.ts';

export type { StrategyAnswer } from './strategy-compute.ts';

export interface ServedStrategy extends StrategyAnswer {
  readonly cache: 'hit' | 'miss' | 'shared';
}

export interface StrategyServiceOptions {
  /** Micro-batch window in ms (0 = one event-loop turn). */
  batchWindowMs: number;
  maxBatch: number;
  /**
   * With compute workers: a batch of at most this many requests that finds every worker idle is
   * computed on the main thread instead (0 = always use the workers). At low load that saves the
   * hop to a worker and back: at a steady 1,000 req/s (batches of ~2) server CPU went from ~0.58
   * to ~0.45 ms per request, as with workers: 0. Under load, batches grow past it (32-64 at
   * saturation) and go to the workers, so the main thread keeps serving HTTP. A batch of 8
   * blocks the main thread for about 1.5 ms.
   */
  inlineMaxBatch: number;
  /** LRU entries (0 disables the cache). */
  cacheEntries: number;
  /** z is snapped to multiples of 2^-zGridBits. */
  zGridBits: number;
  /** |z_i| above this is rejected (z-out-of-range); keeps products far from overflow. */
  maxAbsZ: number;
  onBatch?: (modelId: string, size: number) => void;
  onCache?: (result: 'hit' | 'miss') => void;
}

export const DEFAULT_STRATEGY_OPTIONS: StrategyServiceOptions = {
  batchWindowMs: 1,
  maxBatch: 64,
  cacheEntries: 50_000,
  zGridBits: 16,
  maxAbsZ: 1e4,
  inlineMaxBatch: 8,
};

interface Job {
  z: Float32Array;
  budget: number | undefined;
}

/** Snaps every element to the nearest multiple of 2^-bits (ties away from zero, as Math.round is not). */
export function snapZ(z: Float32Array, bits: number): Float32Array {
  const scale = 2 ** bits;
  const out = new Float32Array(z.length);
  for (let i = 0; i < z.length; i++) {
    const x = z[i]!;
    const q = Math.sign(x) * Math.round(Math.abs(x) * scale);
    out[i] = q / scale + 0; // + 0 turns -0 into +0, so -0 and 0 share a key
  }
  return out;
}

export class StrategyService {
  private readonly models: ReadonlyMap<string, ServedModel>;
  private readonly options: StrategyServiceOptions;
  private readonly batchers = new Map<string, MicroBatcher<Job, StrategyAnswer>>();
  private readonly cache: LRUCache<string, StrategyAnswer> | undefined;
  private readonly inflight = new Map<string, Promise<StrategyAnswer>>();

  /**
   * With a pool, batches run on its worker threads (at most one per worker at a time, see
   * MicroBatcher); without, synchronously on this thread.
   */
  constructor(models: ReadonlyMap<string, ServedModel>, options: Partial<StrategyServiceOptions> = {}, pool?: ComputePool) {
    this.models = models;
    this.options = { ...DEFAULT_STRATEGY_OPTIONS, ...options };
    if (this.options.cacheEntries > 0) this.cache = new LRUCache({ max: this.options.cacheEntries });
    for (const [id, model] of models) {
      this.batchers.set(
        id,
        new MicroBatcher<Job, StrategyAnswer>((jobs) => this.runBatch(model, jobs, pool), {
          windowMs: this.options.batchWindowMs,
          maxBatch: this.options.maxBatch,
          ...(pool ? { maxInFlight: pool.size } : {}),
          onBatch: (size) => this.options.onBatch?.(id, size),
        }),
      );
    }
  }

  /** Requests queued for a batch that has not run yet, over all models. */
  get pending(): number {
    let n = 0;
    for (const b of this.batchers.values()) n += b.pending;
    return n;
  }

  get maxAbsZ(): number {
    return this.options.maxAbsZ;
  }

  model(modelId: string): ServedModel {
    const model = this.models.get(modelId);
    if (!model) throw new ApiError(404, 'UNKNOWN_MODEL', `no model "${modelId}" (GET /v1/models lists them)`);
    return model;
  }

  /** Validates, snaps, looks up the cache, else joins a batch. Throws ApiError for bad input. */
  async strategy(modelId: string, z: Float32Array, budget: number | undefined): Promise<ServedStrategy> {
    const model = this.model(modelId);
    this.checkZ(model, z);
    this.checkBudget(model, budget);
    const snapped = snapZ(z, this.options.zGridBits);
    const key = `${modelId}|${budget ?? ''}|${Buffer.from(snapped.buffer).toString('base64')}`;
    const hit = this.cache?.get(key);
    if (hit) {
      this.options.onCache?.('hit');
      return { ...hit, cache: 'hit' };
    }
    this.options.onCache?.('miss');
    const running = this.inflight.get(key);
    if (running) return { ...(await running), cache: 'shared' };
    const promise = this.batchers.get(modelId)!.submit({ z: snapped, budget });
    this.inflight.set(key, promise);
    try {
      const answer = await promise;
      this.cache?.set(key, answer);
      return { ...answer, cache: 'miss' };
    } finally {
      this.inflight.delete(key);
    }
  }

  /** Runs every queued batch now (used at shutdown so in-flight requests finish at once). */
  flush(): void {
    for (const b of this.batchers.values()) b.flush();
  }

  private checkZ(model: ServedModel, z: Float32Array): void {
    const { zDim } = model.hypernetConfig;
    if (z.length !== zDim) {
      throw new ApiError(400, 'BAD_Z_LENGTH', `z has ${z.length} values, model "${model.modelId}" expects ${zDim}`);
    }
    for (let i = 0; i < z.length; i++) {
      const x = z[i]!;
      if (!Number.isFinite(x)) throw new ApiError(400, 'NON_FINITE_Z', `z[${i}] is ${x}; every z value must be finite`);
      if (Math.abs(x) > this.options.maxAbsZ) {
        throw new ApiError(400, 'Z_OUT_OF_RANGE', `z[${i}] = ${x} is outside ±${this.options.maxAbsZ}`);
      }
    }
  }

  /** A budget is average bits per weight, between the smallest and largest level width. */
  private checkBudget(model: ServedModel, budget: number | undefined): void {
    if (budget === undefined) return;
    const table = model.hypernetConfig.levelTable;
    if (!Number.isFinite(budget) || budget < table[0] || budget > table[3]) {
      throw new ApiError(400, 'BAD_BUDGET', `budget ${budget} must be a number of bits in [${table[0]}, ${table[3]}]`);
    }
  }

  private runBatch(model: ServedModel, jobs: Job[], pool: ComputePool | undefined): ItemResult<StrategyAnswer>[] | Promise<ItemResult<StrategyAnswer>[]> {
    const zDim = model.hypernetConfig.zDim;
    const zs = new Float32Array(jobs.length * zDim);
    const budgets = new Float64Array(jobs.length);
    jobs.forEach((j, i) => {
      zs.set(j.z, i * zDim);
      budgets[i] = j.budget ?? NaN;
    });
    if (pool && (jobs.length > this.options.inlineMaxBatch || pool.pending > 0)) return pool.run(model.modelId, zs, budgets, jobs.length);
    return model.compute.answer(zs, budgets, jobs.length);
  }
}
