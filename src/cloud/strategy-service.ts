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
 * trading tiers), 2^-18: 1, 2^-20: 0. bench-server.ts re-measures 2^-16 on every run (`z_grid`).
 * Two random users differ in ~500 channels, so 2^-16 is far below what separates users while it
 * absorbs the last-bit noise between GRU backends (WebGPU vs WASM/CPU float32), which keeps one
 * user on one cache entry and one ETag.
 */
import { LRUCache } from 'lru-cache';
import { applyBudget } from '../core/budget.ts';
import { encodeStrategy } from '../core/bitstream.ts';
import { ChordError } from '../core/errors.ts';
import type { LoadedModel } from './artifacts.ts';
import { etagOf } from './artifacts.ts';
import { MicroBatcher } from './batcher.ts';
import type { ItemResult } from './batcher.ts';
import { ApiError } from './errors.ts';

export interface StrategyAnswer {
  readonly bytes: Uint8Array;
  readonly etag: string;
  /** Weight-weighted average bits of the strategy sent (after T when a budget was given). */
  readonly averageBits: number;
}

export interface StrategyResult extends StrategyAnswer {
  readonly cache: 'hit' | 'miss' | 'shared';
}

export interface StrategyServiceOptions {
  /** Micro-batch window in ms (0 = one event-loop turn). */
  batchWindowMs: number;
  maxBatch: number;
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
  private readonly models: ReadonlyMap<string, LoadedModel>;
  private readonly options: StrategyServiceOptions;
  private readonly batchers = new Map<string, MicroBatcher<Job, StrategyAnswer>>();
  private readonly cache: LRUCache<string, StrategyAnswer> | undefined;
  private readonly inflight = new Map<string, Promise<StrategyAnswer>>();

  constructor(models: ReadonlyMap<string, LoadedModel>, options: Partial<StrategyServiceOptions> = {}) {
    this.models = models;
    this.options = { ...DEFAULT_STRATEGY_OPTIONS, ...options };
    if (this.options.cacheEntries > 0) this.cache = new LRUCache({ max: this.options.cacheEntries });
    for (const [id, model] of models) {
      this.batchers.set(
        id,
        new MicroBatcher<Job, StrategyAnswer>((jobs) => this.runBatch(model, jobs), {
          windowMs: this.options.batchWindowMs,
          maxBatch: this.options.maxBatch,
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

  model(modelId: string): LoadedModel {
    const model = this.models.get(modelId);
    if (!model) throw new ApiError(404, 'unknown-model', `no model "${modelId}" (GET /v1/models lists them)`);
    return model;
  }

  /** Validates, snaps, looks up the cache, else joins a batch. Throws ApiError for bad input. */
  async strategy(modelId: string, z: Float32Array, budget: number | undefined): Promise<StrategyResult> {
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

  private checkZ(model: LoadedModel, z: Float32Array): void {
    const { zDim } = model.hypernetConfig;
    if (z.length !== zDim) {
      throw new ApiError(400, 'bad-z-length', `z has ${z.length} values, model "${model.modelId}" expects ${zDim}`);
    }
    for (let i = 0; i < z.length; i++) {
      const x = z[i]!;
      if (!Number.isFinite(x)) throw new ApiError(400, 'non-finite-z', `z[${i}] is ${x}; every z value must be finite`);
      if (Math.abs(x) > this.options.maxAbsZ) {
        throw new ApiError(400, 'z-out-of-range', `z[${i}] = ${x} is outside ±${this.options.maxAbsZ}`);
      }
    }
  }

  /** A budget is average bits per weight, between the smallest and largest level width. */
  private checkBudget(model: LoadedModel, budget: number | undefined): void {
    if (budget === undefined) return;
    const table = model.hypernetConfig.levelTable;
    if (!Number.isFinite(budget) || budget < table[0] || budget > table[3]) {
      throw new ApiError(400, 'bad-budget', `budget ${budget} must be a number of bits in [${table[0]}, ${table[3]}]`);
    }
  }

  private runBatch(model: LoadedModel, jobs: Job[]): ItemResult<StrategyAnswer>[] {
    const zDim = model.hypernetConfig.zDim;
    const zs = new Float32Array(jobs.length * zDim);
    jobs.forEach((j, i) => zs.set(j.z, i * zDim));
    const results = model.hypernet.strategies(zs, jobs.length);
    return results.map((r, i): ItemResult<StrategyAnswer> => {
      if (!r.ok) return { ok: false, error: unprocessable(r.error) };
      try {
        const budget = jobs[i]!.budget;
        let strategy = r.strategy;
        let avg: number;
        if (budget === undefined) avg = model.averageBits(strategy);
        else {
          const t = applyBudget(strategy, model.frozen, budget);
          strategy = t.strategy;
          avg = t.averageBits;
        }
        const bytes = encodeStrategy(strategy, { modelId: model.modelId, frozenWeightsHash: model.manifest.frozenWeightsHash });
        return { ok: true, value: { bytes, etag: etagOf(bytes), averageBits: avg } };
      } catch (error) {
        return { ok: false, error: unprocessable(error) };
      }
    });
  }
}

/** A z that passed the input checks but still broke the arithmetic is the client's, not a 500. */
function unprocessable(error: unknown): Error {
  if (error instanceof ChordError) {
    return new ApiError(422, 'unprocessable-z', `z cannot be turned into a strategy: ${error.message}`, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}
