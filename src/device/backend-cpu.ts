/**
 * The CPU backend: src/core/forward in the page. A strategy is applied by quantizing every frozen
 * layer per channel (the same min-max quantizer the GPU's adapt kernel reproduces bit for bit)
 * and handing the dequantized f32 weights to the forward.
 */
import type { BackboneConfig } from '../core/backbones.ts';
import {
  type BackboneForward,
  type CheckedCandidates,
  createForward,
  scoreCandidates,
  scoreCheckedCandidates,
  topK,
} from '../core/forward/index.ts';
import type { FrozenLayer } from '../core/frozen.ts';
import { dequantizeChannels, quantizeChannels } from '../core/quantize.ts';
import type { Strategy } from '../core/strategy.ts';
import type { TensorMap } from '../core/tensor-file.ts';
import { type BackendRanking, layerBits, type RerankBackend } from './backend.ts';

export const CPU_BACKEND_NAME = 'cpu (JavaScript)';

/** Dequantized weights of every frozen layer under `strategy`, by layer name. */
export function quantizedLayerWeights(frozen: readonly FrozenLayer[], strategy: Strategy): Map<string, Float32Array> {
  if (strategy.layers.length !== frozen.length) {
    throw new RangeError(`strategy has ${strategy.layers.length} layers, the model ${frozen.length}`);
  }
  const out = new Map<string, Float32Array>();
  frozen.forEach(({ spec, weights }, l) => {
    const layout = { outChannels: spec.outChannels, rowLength: spec.rowLength };
    out.set(spec.name, dequantizeChannels(quantizeChannels(weights, layout, layerBits(strategy, l))));
  });
  return out;
}

export class CpuBackend implements RerankBackend {
  readonly kind = 'cpu' as const;
  readonly name = CPU_BACKEND_NAME;
  readonly lost = null;
  readonly #forward: BackboneForward;
  readonly #frozen: readonly FrozenLayer[];
  #catalogue: Uint32Array | undefined;

  constructor(config: BackboneConfig, tensors: TensorMap, frozen: readonly FrozenLayer[]) {
    this.#frozen = frozen;
    // Starts on the unquantized weights; the Reranker applies a strategy before the first rerank.
    this.#forward = createForward(config, tensors, new Map(frozen.map((l) => [l.spec.name, l.weights])));
  }

  async applyStrategy(strategy: Strategy): Promise<void> {
    // Computed first, swapped in at once: a rerank sees the old weights or the new, never a mix.
    this.#forward.setWeights(quantizedLayerWeights(this.#frozen, strategy));
  }

  async recommend(history: readonly number[], k: number): Promise<BackendRanking> {
    const rep = this.#forward.represent(history);
    const scoring = this.#forward.scoring;
    if (!this.#catalogue || this.#catalogue.length !== scoring.numItems) {
      this.#catalogue = Uint32Array.from({ length: scoring.numItems }, (_, i) => i + 1);
    }
    const scores = scoreCandidates(rep, scoring, this.#catalogue);
    const order = topK(scores, k);
    return { order: order.map((i) => i + 1), scores: Float32Array.from(order, (i) => scores[i]!) };
  }

  gpuMemory(): null {
    return null;
  }

  async rerank(
    history: readonly number[],
    candidates: Uint32Array | CheckedCandidates,
    k: number,
  ): Promise<BackendRanking> {
    const rep = this.#forward.represent(history);
    const scores =
      candidates instanceof Uint32Array
        ? scoreCandidates(rep, this.#forward.scoring, candidates)
        : scoreCheckedCandidates(rep, candidates);
    const order = topK(scores, k);
    return { order, scores: Float32Array.from(order, (i) => scores[i]!) };
  }

  dispose(): void {
    // Nothing to release: the arrays go with the last reference.
  }
}
