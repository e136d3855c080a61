/**
 * Bit allocation in the cloud: sensitivities -> a quantization `Strategy`.
 *
 * 1. Channel scores: alpha_W = softmax(alpha_F) * S, S_j = sum_k |alpha_E[j*rowLength + k]|.
 * 2. Γ (gammaAllocate): per layer, the top k channels by score go to tier 2 (8 bit), the next k
 *    to tier 1 (4 bit), the rest to tier 0 (2 bit), with k = min(round(beta*n), floor(n/2)).
 *    Rounding is half-up (Math.round): a small layer keeps at least one 8-bit channel as soon as
 *    beta*n >= 0.5 (n = 4, beta = 0.125 -> 1/1/2 channels), because a floor rule would quantize
 *    whole small layers to 2 bit and erase the personalisation there. Ties in score: the lower
 *    channel index ranks higher, so the result does not depend on sort stability.
 * 3. Λ (lambdaAdjust): Γ's three tiers sit on level indices {0, 1, 3} of a four-entry level
 *    table (so [2,4,6,8] gives 2/4/8 bit). In the `up` most sensitive layers (by alpha_L) every
 *    channel moves one level index up, in the `down` least sensitive ones one index down, both
 *    clamped to 0..3; other layers stay. Level 2 (6 bit) only arises from Λ (4 -> 6 up, 8 -> 6
 *    down), so all four levels come out exactly when at least one layer moves each way.
 *    Layer-rank ties: the lower layer index counts as more sensitive.
 *
 * Average drift of Λ (beta = 0.125, table 2-4-6-8; Γ gives 3.0 bits per channel): an up layer
 * averages 0.75*4 + 0.125*6 + 0.125*8 = 4.75, a down layer 0.75*2 + 0.125*2 + 0.125*6 = 2.5,
 * because most channels already sit on the lowest level and cannot go lower. With one up and one
 * down layer out of L equal layers the model average is 3 + (1.75 - 0.5)/L, i.e. close to the
 * Γ average for realistic L; the resource transform T (budget.ts) removes any excess on device.
 */
import { ChordError } from './errors.ts';
import { DEFAULT_LEVELS, levelTableProblem } from './strategy.ts';
import type { LayerStrategy, LevelTable, Strategy } from './strategy.ts';

/** Invalid shapes, option values or level tables passed to the allocator. */
export class AllocationInputError extends ChordError<'AllocationInputError'> {
  override readonly name = 'AllocationInputError';
  constructor(message: string) {
    super('ALLOCATION_INPUT', message);
  }
}

/** A NaN (or, where arithmetic needs it, infinite) sensitivity or score. */
export class NonFiniteScoreError extends ChordError<'NonFiniteScoreError'> {
  override readonly name = 'NonFiniteScoreError';
  constructor(message: string) {
    super('ALLOCATION_NON_FINITE_SCORE', message);
  }
}

/** Γ tier index -> base level index in the four-entry level table. */
export const TIER_BASE_LEVEL: readonly [number, number, number] = [0, 1, 3];

const MAX_LEVEL = 3;

export function validateLevelTable(table: readonly number[]): LevelTable {
  const problem = levelTableProblem(table);
  if (problem) throw new AllocationInputError(problem);
  return table as unknown as LevelTable;
}

function checkPositiveInt(value: number, what: string): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new AllocationInputError(`${what} must be a positive integer, got ${value}`);
  }
}

/**
 * alpha_W per output channel: softmax over the layer's alpha_F times the L1 mass of the channel's
 * alpha_E. The softmax subtracts the maximum first so large logits do not overflow.
 */
export function channelScores(
  alphaF: Float32Array,
  alphaE: Float32Array,
  outChannels: number,
  rowLength: number,
): Float32Array {
  checkPositiveInt(outChannels, 'outChannels');
  checkPositiveInt(rowLength, 'rowLength');
  if (alphaF.length !== outChannels) {
    throw new AllocationInputError(`alphaF has ${alphaF.length} entries, expected ${outChannels}`);
  }
  if (alphaE.length !== outChannels * rowLength) {
    throw new AllocationInputError(
      `alphaE has ${alphaE.length} entries, expected ${outChannels} * ${rowLength}`,
    );
  }
  let max = -Infinity;
  for (let j = 0; j < outChannels; j++) {
    const f = alphaF[j]!;
    if (!Number.isFinite(f)) throw new NonFiniteScoreError(`alphaF[${j}] is ${f}`);
    if (f > max) max = f;
  }
  const exp = new Float64Array(outChannels);
  let sum = 0;
  for (let j = 0; j < outChannels; j++) {
    const e = Math.exp(alphaF[j]! - max);
    exp[j] = e;
    sum += e;
  }
  const out = new Float32Array(outChannels);
  for (let j = 0; j < outChannels; j++) {
    let s = 0;
    const base = j * rowLength;
    for (let k = 0; k < rowLength; k++) {
      const e = alphaE[base + k]!;
      if (!Number.isFinite(e)) throw new NonFiniteScoreError(`alphaE[${base + k}] is ${e}`);
      s += Math.abs(e);
    }
    out[j] = (exp[j]! / sum) * s;
  }
  return out;
}

/** Channels per upper tier for a layer of n channels: min(round(beta*n), floor(n/2)). */
export function tierSize(n: number, beta: number): number {
  return Math.min(Math.round(beta * n), Math.floor(n / 2));
}

function checkBeta(beta: number): void {
  if (!(beta >= 0 && beta <= 0.5)) {
    throw new AllocationInputError(`beta must be in [0, 0.5], got ${beta}`);
  }
}

/** Channel indices ordered by descending value; equal values keep ascending index order. */
function descendingOrder(values: ArrayLike<number>): number[] {
  const order = Array.from({ length: values.length }, (_, i) => i);
  order.sort((a, b) => values[b]! - values[a]! || a - b);
  return order;
}

/** Γ: tier per channel (2 = top beta -> 8 bit, 1 = next beta -> 4 bit, 0 = rest -> 2 bit). */
export function gammaAllocate(scores: Float32Array, beta: number): Uint8Array {
  checkBeta(beta);
  for (let j = 0; j < scores.length; j++) {
    if (Number.isNaN(scores[j]!)) throw new NonFiniteScoreError(`score of channel ${j} is NaN`);
  }
  const k = tierSize(scores.length, beta);
  const tiers = new Uint8Array(scores.length);
  const order = descendingOrder(scores);
  for (let r = 0; r < 2 * k; r++) tiers[order[r]!] = r < k ? 2 : 1;
  return tiers;
}

export interface LayerTiers {
  readonly name: string;
  readonly tiers: Uint8Array;
}

export interface LambdaOptions {
  /** How many of the most sensitive layers move one level up. */
  readonly up: number;
  /** How many of the least sensitive layers move one level down. */
  readonly down: number;
  /** 'layers' (default): up/down are layer counts; 'fraction': shares of all layers, rounded. */
  readonly unit?: 'layers' | 'fraction';
}

function layerCount(value: number, unit: 'layers' | 'fraction', layers: number, what: string): number {
  if (unit === 'fraction') {
    if (!(value >= 0 && value <= 1)) {
      throw new AllocationInputError(`lambda ${what} fraction must be in [0, 1], got ${value}`);
    }
    return Math.round(value * layers);
  }
  if (!Number.isInteger(value) || value < 0) {
    throw new AllocationInputError(`lambda ${what} must be a non-negative layer count, got ${value}`);
  }
  return value;
}

/**
 * Λ's layer choice: +1 for the `up` layers with the largest alpha_L, -1 for the `down` layers
 * with the smallest, 0 otherwise.
 */
export function lambdaShifts(alphaL: Float32Array, opts: LambdaOptions): Int8Array {
  const layers = alphaL.length;
  const unit = opts.unit ?? 'layers';
  const up = layerCount(opts.up, unit, layers, 'up');
  const down = layerCount(opts.down, unit, layers, 'down');
  if (up + down > layers) {
    throw new AllocationInputError(`lambda up (${up}) + down (${down}) exceeds ${layers} layers`);
  }
  for (let l = 0; l < layers; l++) {
    if (Number.isNaN(alphaL[l]!)) throw new NonFiniteScoreError(`alphaL[${l}] is NaN`);
  }
  const order = descendingOrder(alphaL);
  const shifts = new Int8Array(layers);
  for (let r = 0; r < up; r++) shifts[order[r]!] = 1;
  for (let r = layers - down; r < layers; r++) shifts[order[r]!] = -1;
  return shifts;
}

/** Λ: map Γ tiers to level indices, shift whole layers by alpha_L, build the strategy. */
export function lambdaAdjust(
  tiersPerLayer: readonly LayerTiers[],
  alphaL: Float32Array,
  opts: LambdaOptions & { readonly beta: number; readonly levelTable?: readonly number[] },
): Strategy {
  checkBeta(opts.beta);
  const levelTable = validateLevelTable(opts.levelTable ?? DEFAULT_LEVELS);
  if (alphaL.length !== tiersPerLayer.length) {
    throw new AllocationInputError(
      `alphaL has ${alphaL.length} entries for ${tiersPerLayer.length} layers`,
    );
  }
  const shifts = lambdaShifts(alphaL, opts);
  const layers: LayerStrategy[] = tiersPerLayer.map((layer, l) => {
    const shift = shifts[l]!;
    const levels = new Uint8Array(layer.tiers.length);
    for (let j = 0; j < levels.length; j++) {
      const base = TIER_BASE_LEVEL[layer.tiers[j]!];
      if (base === undefined) {
        throw new AllocationInputError(`layer ${layer.name} channel ${j} has tier ${layer.tiers[j]}`);
      }
      levels[j] = Math.min(MAX_LEVEL, Math.max(0, base + shift));
    }
    return { name: layer.name, levels };
  });
  return { levelTable, beta: opts.beta, layers };
}

export interface LayerSensitivity {
  readonly name: string;
  readonly alphaF: Float32Array;
  readonly alphaE: Float32Array;
  readonly outChannels: number;
  readonly rowLength: number;
}

export interface AllocateOptions {
  readonly layers: readonly LayerSensitivity[];
  readonly alphaL: Float32Array;
  readonly beta: number;
  readonly levelTable?: readonly number[];
  /** Defaults to beta as a fraction of layers each way, mirroring Γ's top/bottom share. */
  readonly lambda?: LambdaOptions;
}

/** Scores -> Γ -> Λ for a whole model. */
export function allocateStrategy(opts: AllocateOptions): Strategy {
  checkBeta(opts.beta);
  const tiers = opts.layers.map((l) => ({
    name: l.name,
    tiers: gammaAllocate(channelScores(l.alphaF, l.alphaE, l.outChannels, l.rowLength), opts.beta),
  }));
  const lambda = opts.lambda ?? { up: opts.beta, down: opts.beta, unit: 'fraction' as const };
  return lambdaAdjust(tiers, opts.alphaL, {
    ...lambda,
    beta: opts.beta,
    ...(opts.levelTable ? { levelTable: opts.levelTable } : {}),
  });
}

/** Weight-weighted average bits: sum(bits * rowLength) / total weights. */
export function averageBits(strategy: Strategy, rowLengths: readonly number[]): number {
  if (rowLengths.length !== strategy.layers.length) {
    throw new AllocationInputError(
      `${rowLengths.length} row lengths for ${strategy.layers.length} layers`,
    );
  }
  let bits = 0;
  let weights = 0;
  strategy.layers.forEach((layer, l) => {
    const rowLength = rowLengths[l]!;
    checkPositiveInt(rowLength, `rowLengths[${l}]`);
    for (const level of layer.levels) bits += levelBits(strategy.levelTable, level) * rowLength;
    weights += layer.levels.length * rowLength;
  });
  if (weights === 0) throw new AllocationInputError('strategy has no channels');
  return bits / weights;
}

/** Unweighted mean bits over all channels of all layers. */
export function channelAverageBits(strategy: Strategy): number {
  let bits = 0;
  let channels = 0;
  for (const layer of strategy.layers) {
    for (const level of layer.levels) bits += levelBits(strategy.levelTable, level);
    channels += layer.levels.length;
  }
  if (channels === 0) throw new AllocationInputError('strategy has no channels');
  return bits / channels;
}

function levelBits(table: LevelTable, level: number): number {
  const b = table[level];
  if (b === undefined) throw new AllocationInputError(`level index ${level} outside 0..3`);
  return b;
}
