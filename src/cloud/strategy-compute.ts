/**
 * Everything a strategy answer costs, for one model: z batch (+ budgets) -> hypernet -> Γ/Λ ->
 * T (when a budget is given) -> bitstream bytes, ETag and average bits.
 *
 * It runs either on the main thread (workers: 0) or inside a compute worker (compute-pool.ts),
 * which builds it from a `ComputeSpec`: plain data that survives structured cloning (config,
 * tensors, frozen ranges, model id and hash), so the worker needs no file access.
 *
 * The bitstream is written by `BitstreamWriter`, which produces exactly `encodeStrategy`'s bytes
 * (tests hold the two together) with the per-model header computed once: per answer only the
 * payload is packed and the CRC continued from the header's.
 */
import { createHash } from 'node:crypto';
import * as nodeCrypto from 'node:crypto';
import * as zlib from 'node:zlib';
import { applyBudget } from '../core/budget.ts';
import type { FrozenLayerInfo } from '../core/budget.ts';
import { encodeStrategy } from '../core/bitstream.ts';
import type { StrategyMeta } from '../core/bitstream.ts';
import { crc32 as coreCrc32 } from '../core/crc32.ts';
import { ChordError } from '../core/errors.ts';
import type { HypernetConfig } from '../core/hypernet.ts';
import type { LevelTable, Strategy } from '../core/strategy.ts';
import type { TensorMap } from '../core/tensor-file.ts';
import { BatchedHypernet } from './batched-hypernet.ts';
import type { KernelChoice } from './batched-hypernet.ts';
import { ApiError } from './errors.ts';

export interface StrategyAnswer {
  readonly bytes: Uint8Array;
  readonly etag: string;
  /** Weight-weighted average bits of the strategy sent (after T when a budget was given). */
  readonly averageBits: number;
}

export type ComputeResult = { ok: true; value: StrategyAnswer } | { ok: false; error: Error };

/** What a compute needs of a model; structured-clonable (a worker receives it as workerData). */
export interface ComputeSpec {
  readonly modelId: string;
  readonly frozenWeightsHash: string;
  readonly hypernetConfig: HypernetConfig;
  readonly hypernetTensors: TensorMap;
  /** Per layer: row length and frozen per-channel ranges (T's input). */
  readonly frozen: readonly FrozenLayerInfo[];
  readonly kernel?: KernelChoice;
}

// One-shot hashing and native CRC where this Node has them (20.12+ / 20.15+): same values, less
// per-call overhead than createHash objects and a JS table loop.
const oneShotHash = (nodeCrypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'base64url') => string }).hash;
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
const crc32: (data: Uint8Array, previous?: number) => number = nativeCrc32 ?? coreCrc32;

/** Strong ETag of some bytes: SHA-256, first 128 bits, base64url, quoted. */
export function etagOf(bytes: Uint8Array): string {
  const digest = oneShotHash ? oneShotHash('sha256', bytes, 'base64url') : createHash('sha256').update(bytes).digest('base64url');
  return `"${digest.slice(0, 22)}"`;
}

/** A z that passed the input checks but still broke the arithmetic is the client's, not a 500. */
export function unprocessable(error: unknown): Error {
  if (error instanceof ApiError) return error;
  if (error instanceof ChordError) {
    return new ApiError(422, 'UNPROCESSABLE_Z', `z cannot be turned into a strategy: ${error.message}`, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * encodeStrategy for one model's strategies, from the level indices of all channels in layer
 * order. The header (magic … channel counts) is the same for every strategy of the model, so it
 * is taken once from core's encoder and its CRC state kept.
 */
export class BitstreamWriter {
  private readonly header: Uint8Array;
  private readonly headerCrc: number;
  private readonly size: number;
  private readonly channels: number;

  constructor(meta: StrategyMeta, levelTable: LevelTable, beta: number, channelCounts: readonly number[]) {
    const zero: Strategy = {
      levelTable,
      beta,
      layers: channelCounts.map((c, i) => ({ name: `layer${i}`, levels: new Uint8Array(c) })),
    };
    const template = encodeStrategy(zero, meta); // validates meta, table, beta and counts
    this.channels = channelCounts.reduce((a, b) => a + b, 0);
    this.size = template.length;
    this.header = template.slice(0, this.size - 4 - Math.ceil(this.channels / 4));
    this.headerCrc = crc32(this.header);
  }

  /** `levels`: one level index (0..3, not checked) per channel, all layers in order. */
  encode(levels: Uint8Array): Uint8Array {
    const n = this.channels;
    const out = new Uint8Array(this.size);
    out.set(this.header);
    const start = this.header.length;
    let p = start;
    let j = 0;
    for (; j + 4 <= n; j += 4) out[p++] = levels[j]! | (levels[j + 1]! << 2) | (levels[j + 2]! << 4) | (levels[j + 3]! << 6);
    if (j < n) {
      let last = 0;
      for (let q = 0; j < n; j++, q++) last |= levels[j]! << (2 * q);
      out[p++] = last;
    }
    const crc = crc32(out.subarray(start, p), this.headerCrc);
    out[p] = crc & 0xff;
    out[p + 1] = (crc >>> 8) & 0xff;
    out[p + 2] = (crc >>> 16) & 0xff;
    out[p + 3] = crc >>> 24;
    return out;
  }
}

export class StrategyCompute {
  readonly modelId: string;
  readonly hypernet: BatchedHypernet;
  private readonly frozen: readonly FrozenLayerInfo[];
  private readonly writer: BitstreamWriter;
  /** Per layer: its channel range in the flat level array, and its row length. */
  private readonly layerStarts: readonly number[];
  private readonly counts: readonly number[];
  private readonly rowLengths: readonly number[];
  private readonly totalWeights: number;

  constructor(spec: ComputeSpec) {
    const config = spec.hypernetConfig;
    this.modelId = spec.modelId;
    this.hypernet = new BatchedHypernet(config, spec.hypernetTensors, spec.kernel === undefined ? {} : { kernel: spec.kernel });
    this.frozen = spec.frozen;
    this.counts = config.layers.map((l) => l.outChannels);
    this.rowLengths = spec.frozen.map((f) => f.rowLength);
    const starts: number[] = [];
    let at = 0;
    for (const c of this.counts) {
      starts.push(at);
      at += c;
    }
    this.layerStarts = starts;
    this.totalWeights = this.counts.reduce((s, c, l) => s + c * this.rowLengths[l]!, 0);
    this.writer = new BitstreamWriter(
      { modelId: spec.modelId, frozenWeightsHash: spec.frozenWeightsHash },
      config.levelTable,
      config.beta,
      this.counts,
    );
  }

  /**
   * Answers for `count` snapped z (row-major in zs) with per-item budgets (NaN = none). Each
   * item fails alone: a ChordError becomes a 422 ApiError, anything else stays (a bug, a 500).
   */
  answer(zs: Float32Array, budgets: Float64Array, count: number): ComputeResult[] {
    const results: ComputeResult[] = new Array(count);
    this.hypernet.levels(zs, count, (i, levels, error) => {
      if (!levels) {
        results[i] = { ok: false, error: unprocessable(error) };
        return;
      }
      try {
        const budget = budgets[i]!;
        let bytes: Uint8Array;
        let averageBits: number;
        if (Number.isNaN(budget)) {
          bytes = this.writer.encode(levels);
          averageBits = this.averageBits(levels);
        } else {
          const strategy = this.strategyOf(levels);
          const t = applyBudget(strategy, this.frozen, budget);
          bytes = this.writer.encode(t.strategy === strategy ? levels : this.flatten(t.strategy));
          averageBits = t.averageBits;
        }
        results[i] = { ok: true, value: { bytes, etag: etagOf(bytes), averageBits } };
      } catch (e) {
        results[i] = { ok: false, error: unprocessable(e) };
      }
    });
    return results;
  }

  /**
   * core's averageBits (Σ bits·rowLength / Σ rowLength over channels): every partial sum is an
   * integer far below 2^53, so summing per layer first gives the same double.
   */
  private averageBits(levels: Uint8Array): number {
    const table = this.hypernet.config.levelTable;
    let bits = 0;
    for (let l = 0; l < this.counts.length; l++) {
      const start = this.layerStarts[l]!;
      const end = start + this.counts[l]!;
      let layerBits = 0;
      for (let j = start; j < end; j++) layerBits += table[levels[j]!]!;
      bits += layerBits * this.rowLengths[l]!;
    }
    return bits / this.totalWeights;
  }

  private strategyOf(levels: Uint8Array): Strategy {
    const { layers, levelTable, beta } = this.hypernet.config;
    return {
      levelTable,
      beta,
      layers: layers.map((ly, l) => ({ name: ly.name, levels: levels.slice(this.layerStarts[l]!, this.layerStarts[l]! + ly.outChannels) })),
    };
  }

  private flatten(strategy: Strategy): Uint8Array {
    const flat = new Uint8Array(this.hypernet.totalChannels);
    strategy.layers.forEach((layer, l) => flat.set(layer.levels, this.layerStarts[l]!));
    return flat;
  }
}
