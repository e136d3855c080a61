/**
 * The benchmark's model and workload, all from seeds: SASRec at its default dims, trained tensors
 * at realistic scales (no training: the timing does not depend on the values), the seed's frozen
 * weights, CHORD-like strategies from random sensitivities, and one shopper's history with the
 * candidates to rerank. Pure TypeScript: no GPU, no tfjs.
 */
import { allocateStrategy, averageBits } from '../../../src/core/allocation.ts';
import { backboneLayers, type BackboneConfig, DEFAULT_SASREC_DIMS, type LayerSpec, type SasrecDims } from '../../../src/core/backbones.ts';
import { type FrozenLayer, generateFrozenWeights } from '../../../src/core/frozen.ts';
import { fillNormal, fillUniform, streamId } from '../../../src/core/prng.ts';
import { DEFAULT_LEVELS, type Strategy } from '../../../src/core/strategy.ts';
import type { TensorMap } from '../../../src/core/tensor-file.ts';

export interface BenchModel {
  readonly config: BackboneConfig & { readonly backbone: 'sasrec'; readonly dims: SasrecDims };
  readonly numItems: number;
  readonly layers: readonly LayerSpec[];
  /** Embeddings, norms and biases by the names of src/model (and core's forward). */
  readonly tensors: TensorMap;
  readonly frozenSeed: number;
}

export function benchModel(seed: number, numItems: number, dims: SasrecDims = DEFAULT_SASREC_DIMS): BenchModel {
  const config = { backbone: 'sasrec' as const, dims };
  const layers = backboneLayers(config);
  const d = dims.hidden;
  const tensors: TensorMap = new Map();
  const add = (name: string, shape: number[], fill: (out: Float32Array, stream: number) => void): void => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    fill(data, streamId(name));
    tensors.set(name, { shape, data });
  };
  // xavier-normal embeddings as src/model initialises them; norms near (1, 0); small biases.
  const xavier = (rows: number) => Math.sqrt(2 / (rows + d));
  add('item_emb', [numItems + 1, d], (o, s) => fillNormal(o, seed, s, 0, xavier(numItems + 1)));
  add('pos_emb', [dims.maxLen, d], (o, s) => fillNormal(o, seed, s, 0, xavier(dims.maxLen)));
  for (const l of layers) add(`${l.name}.bias`, [l.outChannels], (o, s) => fillUniform(o, seed, s, -0.05, 0.05));
  const norm = (name: string) => {
    add(`${name}.gamma`, [d], (o, s) => fillNormal(o, seed, s, 1, 0.05));
    add(`${name}.beta`, [d], (o, s) => fillNormal(o, seed, s, 0, 0.05));
  };
  for (let b = 0; b < dims.blocks; b++) {
    norm(`block${b}.ln_attn`);
    norm(`block${b}.ln_ffn`);
  }
  norm('final_ln');
  // Item 0 is padding: never looked up for a real position, zero as after training.
  tensors.get('item_emb')!.data.fill(0, 0, d);
  return { config, numItems, layers, tensors, frozenSeed: seed + 1 };
}

/** The frozen weights, regenerated from the seed (what a device does instead of downloading them). */
export function frozenWeights(model: BenchModel): FrozenLayer[] {
  return generateFrozenWeights({ seed: model.frozenSeed, layers: model.layers });
}

export function frozenParamTotal(model: BenchModel): number {
  return model.layers.reduce((sum, l) => sum + l.outChannels * l.rowLength, 0);
}

/**
 * A strategy as the cloud would send it, from random sensitivities: Γ with beta 0.125 (1/8 of each
 * layer's channels at 8 bits, 1/8 at 4, the rest at 2) and Λ moving round(beta * layers) layers one
 * level up and as many down, on the level table 2-4-6-8.
 */
export function chordLikeStrategy(model: BenchModel, seed: number): { strategy: Strategy; averageBits: number } {
  const layers = model.layers.map((l) => {
    const alphaF = fillNormal(new Float32Array(l.outChannels), seed, streamId(`${l.name}/F`), 0, 1);
    const alphaE = fillNormal(new Float32Array(l.outChannels * l.rowLength), seed, streamId(`${l.name}/E`), 0, 1);
    return { name: l.name, alphaF, alphaE, outChannels: l.outChannels, rowLength: l.rowLength };
  });
  const alphaL = fillNormal(new Float32Array(model.layers.length), seed, streamId('alphaL'), 0, 1);
  const strategy = allocateStrategy({ layers, alphaL, beta: 0.125, levelTable: DEFAULT_LEVELS });
  return { strategy, averageBits: averageBits(strategy, model.layers.map((l) => l.rowLength)) };
}

/** A full-window history (maxLen items, oldest first) and distinct candidate ids. */
export function workload(model: BenchModel, seed: number, candidates: number): { history: number[]; candidates: number[] } {
  const u = fillUniform(new Float32Array(model.config.dims.maxLen + 4 * candidates), seed, streamId('workload'), 0, 1);
  let next = 0;
  const item = () => 1 + Math.min(model.numItems - 1, Math.floor(u[next++]! * model.numItems));
  const history = Array.from({ length: model.config.dims.maxLen }, item);
  if (candidates > model.numItems) throw new RangeError(`${candidates} candidates from ${model.numItems} items`);
  const chosen = new Set<number>();
  for (let fallback = 1; chosen.size < candidates; ) {
    if (next < u.length) chosen.add(item());
    else chosen.add(fallback++); // only for catalogues barely larger than the candidate list
  }
  return { history, candidates: [...chosen] };
}
