/**
 * The resource transform T(strategy, budget), run on the device with only the received strategy
 * and the frozen weights: lower the weight-weighted average bits to <= budget.
 *
 * Rule: greedy demotion by least added quantization noise per bit saved.
 * - Min-max quantization of a channel with range r = max - min at b bits has step r/(2^b - 1) and
 *   noise variance step^2/12 per weight. Demoting channel j of a layer from its level width b to
 *   the next lower level width b' therefore adds
 *       noise = rowLength * r_j^2 * (1/(2^b' - 1)^2 - 1/(2^b - 1)^2) / 12
 *   and saves rowLength * (b - b') bits.
 * - Repeatedly apply the single-level demotion with the smallest noise/bits ratio (ties: lower
 *   layer index, then lower channel index) until the average is <= budget or every channel is at
 *   level 0. A min-heap holds one candidate step per channel: O(C log C) for C channels.
 * - The sequence of demotions does not depend on the budget, only where it stops, so a lower
 *   budget always continues the demotions of a higher one: no channel ever gets more bits under a
 *   lower budget (monotone), and T never raises a channel's bits.
 * - budget >= current average: the input strategy is returned unchanged (same object).
 *   budget below the smallest level width: clamped to that width (every channel at level 0) and
 *   reported with `clamped: true`.
 * Every number is an IEEE double computed in a fixed order, so page and Node agree bit for bit.
 */
import { ChordError } from './errors.ts';
import { OFF_BITS, type LayerStrategy, type LevelTable, type Strategy } from './strategy.ts';

/** Mismatched shapes, bad ranges or a bad budget handed to T. */
export class BudgetInputError extends ChordError<'BudgetInputError'> {
  override readonly name = 'BudgetInputError';
  constructor(message: string) {
    super('BUDGET_INPUT', message);
  }
}

/** What T needs to know about one layer's frozen weights. */
export interface FrozenLayerInfo {
  readonly rowLength: number;
  /** max - min of each output channel (row) of the frozen weight. */
  readonly ranges: Float32Array;
}

export interface BudgetResult {
  readonly strategy: Strategy;
  /** Weight-weighted average bits of the returned strategy. */
  readonly averageBits: number;
  /** Number of single-level demotions applied. */
  readonly demotions: number;
  /** True when the budget was below the smallest level width and was raised to it. */
  readonly clamped: boolean;
  /** The budget actually aimed for (after clamping). */
  readonly budget: number;
}

/** max - min per output channel of a row-major [outChannels, rowLength] weight. */
export function channelRangesFromWeights(
  weights: Float32Array,
  outChannels: number,
  rowLength: number,
): Float32Array {
  if (!Number.isInteger(outChannels) || outChannels <= 0 || !Number.isInteger(rowLength) || rowLength <= 0) {
    throw new BudgetInputError(`bad shape [${outChannels}, ${rowLength}]`);
  }
  if (weights.length !== outChannels * rowLength) {
    throw new BudgetInputError(
      `weights have ${weights.length} entries, expected ${outChannels} * ${rowLength}`,
    );
  }
  const ranges = new Float32Array(outChannels);
  for (let j = 0; j < outChannels; j++) {
    let min = Infinity;
    let max = -Infinity;
    const base = j * rowLength;
    for (let k = 0; k < rowLength; k++) {
      const w = weights[base + k]!;
      if (!Number.isFinite(w)) throw new BudgetInputError(`weight ${base + k} is ${w}`);
      if (w < min) min = w;
      if (w > max) max = w;
    }
    ranges[j] = max - min;
  }
  return ranges;
}

/**
 * Estimated added squared error of re-quantizing a channel from `fromBits` to `toBits`. Switching
 * a channel off (toBits = OFF_BITS) is Infinity: the range says nothing about the weights' size,
 * so T switches channels off only once every other demotion is spent, in the heap's tie order.
 */
export function demotionNoise(rowLength: number, range: number, fromBits: number, toBits: number): number {
  if (toBits === OFF_BITS) return Infinity;
  const coarse = 2 ** toBits - 1;
  const fine = 2 ** fromBits - 1;
  return (rowLength * range * range * (1 / (coarse * coarse) - 1 / (fine * fine))) / 12;
}

/**
 * Min-heap of candidate demotions keyed by (ratio, layer, channel). Parallel typed arrays: at
 * most one entry per channel is ever queued, so the capacity is the channel count.
 */
class DemotionHeap {
  private readonly ratio: Float64Array;
  private readonly layer: Int32Array;
  private readonly channel: Int32Array;
  size = 0;

  constructor(capacity: number) {
    this.ratio = new Float64Array(capacity);
    this.layer = new Int32Array(capacity);
    this.channel = new Int32Array(capacity);
  }

  private less(a: number, b: number): boolean {
    const ra = this.ratio[a]!;
    const rb = this.ratio[b]!;
    if (ra !== rb) return ra < rb;
    const la = this.layer[a]!;
    const lb = this.layer[b]!;
    if (la !== lb) return la < lb;
    return this.channel[a]! < this.channel[b]!;
  }

  private swap(a: number, b: number): void {
    const r = this.ratio[a]!;
    this.ratio[a] = this.ratio[b]!;
    this.ratio[b] = r;
    const l = this.layer[a]!;
    this.layer[a] = this.layer[b]!;
    this.layer[b] = l;
    const c = this.channel[a]!;
    this.channel[a] = this.channel[b]!;
    this.channel[b] = c;
  }

  push(ratio: number, layer: number, channel: number): void {
    let i = this.size++;
    this.ratio[i] = ratio;
    this.layer[i] = layer;
    this.channel[i] = channel;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the smallest entry and returns its [layer, channel]. Caller checks size > 0. */
  pop(): [number, number] {
    const top: [number, number] = [this.layer[0]!, this.channel[0]!];
    const last = --this.size;
    if (last > 0) {
      this.swap(0, last);
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < last && this.less(left, smallest)) smallest = left;
        if (right < last && this.less(right, smallest)) smallest = right;
        if (smallest === i) break;
        this.swap(i, smallest);
        i = smallest;
      }
    }
    return top;
  }
}

function checkInputs(strategy: Strategy, frozen: readonly FrozenLayerInfo[], budgetBits: number): void {
  if (!Number.isFinite(budgetBits)) throw new BudgetInputError(`budget ${budgetBits} is not finite`);
  if (frozen.length !== strategy.layers.length) {
    throw new BudgetInputError(
      `${frozen.length} frozen layers for ${strategy.layers.length} strategy layers`,
    );
  }
  strategy.layers.forEach((layer, l) => {
    const info = frozen[l]!;
    if (!Number.isInteger(info.rowLength) || info.rowLength <= 0) {
      throw new BudgetInputError(`layer ${layer.name}: rowLength ${info.rowLength}`);
    }
    if (info.ranges.length !== layer.levels.length) {
      throw new BudgetInputError(
        `layer ${layer.name}: ${info.ranges.length} ranges for ${layer.levels.length} channels`,
      );
    }
    for (let j = 0; j < info.ranges.length; j++) {
      const r = info.ranges[j]!;
      if (!(r >= 0 && r < Infinity)) throw new BudgetInputError(`layer ${layer.name}: range ${j} is ${r}`);
    }
    for (const level of layer.levels) {
      if (level > 3) throw new BudgetInputError(`layer ${layer.name}: level index ${level} outside 0..3`);
    }
  });
}

function stepRatio(table: LevelTable, level: number, rowLength: number, range: number): number {
  const from = table[level]!;
  const to = table[level - 1]!;
  return demotionNoise(rowLength, range, from, to) / (rowLength * (from - to));
}

/** T(strategy, budget): see the module comment for the rule. Does not modify its inputs. */
export function applyBudget(
  strategy: Strategy,
  frozen: readonly FrozenLayerInfo[],
  budgetBits: number,
): BudgetResult {
  checkInputs(strategy, frozen, budgetBits);
  const table = strategy.levelTable;
  let totalBits = 0;
  let totalWeights = 0;
  let channels = 0;
  strategy.layers.forEach((layer, l) => {
    const rowLength = frozen[l]!.rowLength;
    for (const level of layer.levels) totalBits += table[level]! * rowLength;
    totalWeights += layer.levels.length * rowLength;
    channels += layer.levels.length;
  });
  if (totalWeights === 0) throw new BudgetInputError('strategy has no channels');

  const clamped = budgetBits < table[0];
  const budget = clamped ? table[0] : budgetBits;
  const target = budget * totalWeights;
  if (totalBits <= target) {
    return { strategy, averageBits: totalBits / totalWeights, demotions: 0, clamped, budget };
  }

  const levels = strategy.layers.map((layer) => Uint8Array.from(layer.levels));
  const heap = new DemotionHeap(channels);
  levels.forEach((layerLevels, l) => {
    const { rowLength, ranges } = frozen[l]!;
    for (let j = 0; j < layerLevels.length; j++) {
      const level = layerLevels[j]!;
      if (level > 0) heap.push(stepRatio(table, level, rowLength, ranges[j]!), l, j);
    }
  });

  let demotions = 0;
  while (totalBits > target && heap.size > 0) {
    const [l, j] = heap.pop();
    const layerLevels = levels[l]!;
    const { rowLength, ranges } = frozen[l]!;
    const level = layerLevels[j]!;
    totalBits -= (table[level]! - table[level - 1]!) * rowLength;
    layerLevels[j] = level - 1;
    demotions++;
    if (level - 1 > 0) heap.push(stepRatio(table, level - 1, rowLength, ranges[j]!), l, j);
  }

  const layers: LayerStrategy[] = strategy.layers.map((layer, l) => ({
    name: layer.name,
    levels: levels[l]!,
  }));
  return {
    strategy: { levelTable: table, beta: strategy.beta, layers },
    averageBits: totalBits / totalWeights,
    demotions,
    clamped,
    budget,
  };
}
