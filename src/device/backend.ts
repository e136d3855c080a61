/**
 * What the Reranker needs from a compute backend. Two implementations: backend-cpu.ts (plain
 * TypeScript, src/core/forward) and backend-webgpu.ts (the adapter over src/gpu/engine.ts). Both
 * rank with core's deterministic top-k order, so a page sees the same ranking on either.
 */
import type { CheckedCandidates } from '../core/forward/index.ts';
import type { Strategy } from '../core/strategy.ts';
import type { AdapterSignal } from './resources.ts';

export type BackendKind = 'webgpu' | 'cpu';

export interface BackendGpuMemory {
  /** Packed quantizable layers (words + per-channel min/max/index), as allocated for the strategy in use. */
  readonly quantizedLayers: number;
  /** The item table the kernels read (8-bit codes + f16 scales). */
  readonly itemTable: number;
}

export interface BackendRanking {
  /** Indices into the candidate list, best first (k of them). */
  readonly order: Uint32Array;
  /** Scores of those candidates, in the same order. */
  readonly scores: Float32Array;
}

export interface RerankBackend {
  readonly kind: BackendKind;
  /** Human-readable: the GPU adapter's description, or the CPU path's name. */
  readonly name: string;
  /** WebGPU adapter facts for the resource rule (absent on the CPU). */
  readonly adapter?: AdapterSignal;
  /**
   * Resolves with the error once the backend can no longer run (GPU device lost); never rejects.
   * Null for backends that cannot be lost.
   */
  readonly lost: Promise<Error> | null;
  /** Quantizes the frozen weights to `strategy` (already transformed by T). */
  applyStrategy(strategy: Strategy): Promise<void>;
  /**
   * Top k of `candidates` (item indices 1..numItems, or embeddings that passed the candidate
   * rule, core/forward/candidates.ts) for the click `history` (item indices, oldest first),
   * under the strategy applied last.
   */
  rerank(history: readonly number[], candidates: Uint32Array | CheckedCandidates, k: number): Promise<BackendRanking>;
  /** Top k of the whole catalogue; `order` holds item indices (1..numItems). */
  recommend(history: readonly number[], k: number): Promise<BackendRanking>;
  /** GPU bytes of the weights the kernels read (null on the CPU). */
  gpuMemory(): BackendGpuMemory | null;
  dispose(): void;
}

/** Bit width of every channel of one layer under a strategy. */
export function layerBits(strategy: Strategy, layer: number): Uint8Array {
  const l = strategy.layers[layer];
  if (!l) throw new RangeError(`strategy has no layer ${layer}`);
  return Uint8Array.from(l.levels, (level) => strategy.levelTable[level]!);
}
