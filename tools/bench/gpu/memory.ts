/**
 * GPU bytes of the quantizable weights under each QuantizedModelWeights configuration, measured
 * on the device by creating the object, adapting it to the benchmark's strategy and reading its
 * `memory` (what is actually allocated), plus a check that 'fit' packs the same bytes as 'any'.
 */
import type { FrozenLayer } from '../../../src/core/frozen.ts';
import type { Strategy } from '../../../src/core/strategy.ts';
import { buildAdaptSegments, buildChannelTable, planLayerPacking, planModelRegions, strategyBits, withWords } from '../../../src/gpu/packed-layout.ts';
import { summarize, timed } from './stats.ts';
import { type QuantizedWeightsOptions, QuantizedModelWeights, type WeightMemory } from '../../../src/gpu/quantized-weights.ts';
import { readPacked } from '../../../tests/browser/pages/weights-probes.ts';

export interface MemoryConfig {
  readonly name: string;
  readonly options: QuantizedWeightsOptions;
}

/**
 * Words reserved for any strategy, words sized to the strategy (what the engine uses), and both
 * with the frozen f32 weights kept on the GPU.
 */
export const MEMORY_CONFIGS: readonly MemoryConfig[] = [
  { name: 'any_capacity', options: { wordCapacity: 'any', frozenResidency: 'transient' } },
  { name: 'fit', options: { wordCapacity: 'fit', frozenResidency: 'transient' } },
  { name: 'fit_frozen_resident', options: { wordCapacity: 'fit', frozenResidency: 'resident' } },
  { name: 'before_change', options: { wordCapacity: 'any', frozenResidency: 'resident' } },
];

export interface MemoryReport extends WeightMemory {
  /** Reallocations of the words buffer over the adaptations ('fit' only). */
  readonly generation: number;
  /** Median wall time of this layout's adapt() calls (frozen upload included where transient). */
  readonly adaptMsP50: number;
}

async function packedBytes(weights: QuantizedModelWeights): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let l = 0; l < weights.regions.layers.length; l++) {
    const p = await readPacked(weights, l);
    for (const a of [p.words, p.meta, p.scale, p.zero, p.max]) out.push(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  return out;
}

function sameBytes(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((x, i) => x.length === b[i]!.length && x.every((v, j) => v === b[i]![j]));
}

/**
 * Median time of adapt()'s host part (strategy -> per-layer packing order and width groups ->
 * fitted regions, adapt segments and channel table), to tell it apart from the GPU pass.
 */
export function adaptHostMs(frozen: readonly FrozenLayer[], strategy: Strategy, reps = 10): number {
  const layers = frozen.map(({ spec }) => ({ name: spec.name, outChannels: spec.outChannels, rowLength: spec.rowLength }));
  const base = planModelRegions(layers);
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const packings = strategyBits(strategy, layers).map((b, l) => planLayerPacking(b, layers[l]!.rowLength));
    const regions = withWords(base, packings.map((p) => p.wordCount));
    buildAdaptSegments(regions, packings);
    buildChannelTable(regions, packings);
    times.push(performance.now() - t0);
  }
  return summarize(times).p50;
}

/**
 * Adapts each configuration to `strategies` in turn (the last one is the reported state) and
 * returns its memory; `fitMatchesAny` compares every packed array of 'fit' and 'any'.
 */
export async function measureMemory(
  device: GPUDevice,
  frozen: readonly FrozenLayer[],
  regenerate: () => Float32Array[],
  strategies: readonly Strategy[],
): Promise<{ configs: Record<string, MemoryReport>; fitMatchesAny: boolean }> {
  const layers = frozen.map(({ spec }) => ({ name: spec.name, outChannels: spec.outChannels, rowLength: spec.rowLength }));
  const configs: Record<string, MemoryReport> = {};
  const packed: Record<string, Uint8Array[]> = {};
  for (const { name, options } of MEMORY_CONFIGS) {
    const weights = await QuantizedModelWeights.create(device, layers, regenerate, options);
    try {
      const times: number[] = [];
      for (const s of strategies) times.push((await timed(() => weights.adapt(s))).ms);
      configs[name] = { ...weights.memory, generation: weights.generation, adaptMsP50: summarize(times).p50 };
      if (name === 'any_capacity' || name === 'fit') packed[name] = await packedBytes(weights);
    } finally {
      weights.destroy();
    }
  }
  return { configs, fitMatchesAny: sameBytes(packed['any_capacity']!, packed['fit']!) };
}
