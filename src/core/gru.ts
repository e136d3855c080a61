/**
 * The on-device user profiler: a single-layer GRU over the item embeddings of the shopper's
 * recent clicks; its final hidden state is the user embedding z that is sent to the cloud.
 *
 * Equations are PyTorch's nn.GRU (gate order r, z, n in the stacked weights):
 *   r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
 *   u  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)          (PyTorch's "z" gate; renamed to avoid z)
 *   n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *   h' = (1 - u) * n + u * h
 * weight_ih is [3H, D], weight_hh is [3H, H], row-major, rows 0..H-1 = r, H..2H-1 = z, 2H..3H-1 = n.
 *
 * Arithmetic is float64 with float32 storage: results match a float32 PyTorch forward to ~1e-6,
 * which is far below anything the drift detector or the hypernet can notice.
 */
import { ChordError, type ErrorCodeOf } from './errors.ts';
import type { NamedTensor, TensorMap } from './tensor-file.ts';

export const GRU_TENSORS = {
  weightIh: 'gru.weight_ih',
  weightHh: 'gru.weight_hh',
  biasIh: 'gru.bias_ih',
  biasHh: 'gru.bias_hh',
} as const;
export const ITEM_EMBEDDING_TENSOR = 'item_emb';
export const DEFAULT_GRU_WINDOW = 20;

export type GruErrorCode = ErrorCodeOf<'GruError'>;

export class GruError extends ChordError<'GruError'> {
  override readonly name = 'GruError';
  constructor(code: GruErrorCode, message: string) {
    super(code, message);
  }
}

export interface GruWeights {
  /** D: input (item embedding) width. */
  readonly inputDim: number;
  /** H: hidden width = length of z. */
  readonly hiddenDim: number;
  /** [3H, D] */
  readonly weightIh: Float32Array;
  /** [3H, H] */
  readonly weightHh: Float32Array;
  /** [3H] */
  readonly biasIh: Float32Array;
  /** [3H] */
  readonly biasHh: Float32Array;
}

/** Item embedding table [numItems + 1, D]; row 0 is the padding item. */
export interface ItemEmbeddings {
  readonly numItems: number;
  readonly dim: number;
  readonly data: Float32Array;
}

function tensor(map: TensorMap, name: string, rank: number): NamedTensor {
  const t = map.get(name);
  if (!t) throw new GruError('GRU_BAD_TENSOR', `tensor "${name}" is missing`);
  if (t.shape.length !== rank) {
    throw new GruError('GRU_BAD_TENSOR', `tensor "${name}" has shape [${t.shape}], expected rank ${rank}`);
  }
  return t;
}

function checkShape(name: string, actual: readonly number[], expected: readonly number[]): void {
  if (actual.length !== expected.length || actual.some((v, i) => v !== expected[i])) {
    throw new GruError('GRU_BAD_TENSOR', `tensor "${name}" has shape [${actual}], expected [${expected}]`);
  }
}

/** Validates shapes and consistency of the four GRU tensors. */
export function validateGruWeights(w: GruWeights): void {
  const { inputDim: D, hiddenDim: H } = w;
  if (!Number.isInteger(D) || D < 1 || !Number.isInteger(H) || H < 1) {
    throw new GruError('GRU_BAD_TENSOR', `dims D=${D}, H=${H} must be positive integers`);
  }
  const sizes: [string, Float32Array, number][] = [
    [GRU_TENSORS.weightIh, w.weightIh, 3 * H * D],
    [GRU_TENSORS.weightHh, w.weightHh, 3 * H * H],
    [GRU_TENSORS.biasIh, w.biasIh, 3 * H],
    [GRU_TENSORS.biasHh, w.biasHh, 3 * H],
  ];
  for (const [name, data, n] of sizes) {
    if (data.length !== n) throw new GruError('GRU_BAD_TENSOR', `${name} has ${data.length} values, expected ${n}`);
  }
}

/** Reads gru.weight_ih / weight_hh / bias_ih / bias_hh from a decoded gru artifact. */
export function gruWeightsFromTensors(map: TensorMap): GruWeights {
  const ih = tensor(map, GRU_TENSORS.weightIh, 2);
  const hh = tensor(map, GRU_TENSORS.weightHh, 2);
  const bih = tensor(map, GRU_TENSORS.biasIh, 1);
  const bhh = tensor(map, GRU_TENSORS.biasHh, 1);
  const threeH = ih.shape[0]!;
  if (threeH % 3 !== 0 || threeH === 0) {
    throw new GruError('GRU_BAD_TENSOR', `${GRU_TENSORS.weightIh} has ${threeH} rows, not a positive multiple of 3`);
  }
  const H = threeH / 3;
  const D = ih.shape[1]!;
  checkShape(GRU_TENSORS.weightHh, hh.shape, [3 * H, H]);
  checkShape(GRU_TENSORS.biasIh, bih.shape, [3 * H]);
  checkShape(GRU_TENSORS.biasHh, bhh.shape, [3 * H]);
  const w = { inputDim: D, hiddenDim: H, weightIh: ih.data, weightHh: hh.data, biasIh: bih.data, biasHh: bhh.data };
  validateGruWeights(w);
  return w;
}

/** Reads `item_emb` [numItems + 1, D] from a decoded backbone artifact. */
export function itemEmbeddingsFromTensors(map: TensorMap): ItemEmbeddings {
  const t = tensor(map, ITEM_EMBEDDING_TENSOR, 2);
  const rows = t.shape[0]!;
  const dim = t.shape[1]!;
  if (rows < 2 || dim < 1) {
    throw new GruError('GRU_BAD_TENSOR', `${ITEM_EMBEDDING_TENSOR} shape [${t.shape}] needs >= 2 rows (padding + items)`);
  }
  return { numItems: rows - 1, dim, data: t.data };
}

function checkItem(emb: ItemEmbeddings, item: number): void {
  if (!Number.isInteger(item) || item < 1 || item > emb.numItems) {
    throw new GruError('GRU_BAD_ITEM', `item index ${item} outside 1..${emb.numItems} (0 is padding)`);
  }
}

/** The embedding row of item `item` (0 = padding) as a view. */
export function itemEmbedding(emb: ItemEmbeddings, item: number): Float32Array {
  return emb.data.subarray(item * emb.dim, (item + 1) * emb.dim);
}

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

/** gi = W_ih x + b_ih, the part of a step that depends only on the input (3H values). */
export function gruInputProjection(
  w: GruWeights,
  x: Float32Array,
  out: Float64Array = new Float64Array(3 * w.hiddenDim),
): Float64Array {
  const { inputDim: D, hiddenDim: H } = w;
  if (x.length !== D) throw new GruError('GRU_BAD_INPUT', `input has ${x.length} values, expected ${D}`);
  for (let row = 0; row < 3 * H; row++) {
    let s = w.biasIh[row]!;
    const base = row * D;
    for (let k = 0; k < D; k++) s += w.weightIh[base + k]! * x[k]!;
    out[row] = s;
  }
  return out;
}

/** One GRU step from a precomputed input projection gi; writes h' into `out` (may alias nothing). */
export function gruStepProjected(w: GruWeights, h: Float32Array, gi: Float64Array, out: Float32Array): Float32Array {
  const H = w.hiddenDim;
  if (h.length !== H || out.length !== H) {
    throw new GruError('GRU_BAD_INPUT', `hidden state has ${h.length} values, expected ${H}`);
  }
  if (out === h) throw new GruError('GRU_BAD_INPUT', 'out must not alias h');
  for (let j = 0; j < H; j++) {
    let ar = w.biasHh[j]!;
    let az = w.biasHh[H + j]!;
    let an = w.biasHh[2 * H + j]!;
    const br = j * H;
    const bz = (H + j) * H;
    const bn = (2 * H + j) * H;
    for (let k = 0; k < H; k++) {
      const hk = h[k]!;
      ar += w.weightHh[br + k]! * hk;
      az += w.weightHh[bz + k]! * hk;
      an += w.weightHh[bn + k]! * hk;
    }
    const r = sigmoid(gi[j]! + ar);
    const u = sigmoid(gi[H + j]! + az);
    const n = Math.tanh(gi[2 * H + j]! + r * an);
    out[j] = (1 - u) * n + u * h[j]!;
  }
  return out;
}

/** One GRU step: h' = GRU(x, h). */
export function gruStep(
  w: GruWeights,
  h: Float32Array,
  x: Float32Array,
  out: Float32Array = new Float32Array(w.hiddenDim),
): Float32Array {
  return gruStepProjected(w, h, gruInputProjection(w, x), out);
}

/** Runs the GRU over `inputs` (each of length D) from h0 (zeros by default); returns the last hidden state. */
export function gruForward(w: GruWeights, inputs: readonly Float32Array[], h0?: Float32Array): Float32Array {
  let h = h0 ? Float32Array.from(h0) : new Float32Array(w.hiddenDim);
  let next = new Float32Array(w.hiddenDim);
  for (const x of inputs) {
    gruStep(w, h, x, next);
    [h, next] = [next, h];
  }
  return h;
}

/**
 * - 'window': z is the GRU run from h = 0 over exactly the last `window` clicks (the definition
 *   the cloud-side hypernet is trained against). While the window fills, a click is one step;
 *   once it slides, a click is one input projection plus `window` hidden-only steps (cached
 *   input projections), i.e. constant work bounded by the window, not by the history.
 * - 'stream': one step per click, never resetting: strictly O(1) per click, z summarises the
 *   whole session with the GRU's own fading memory. Cheaper, but differs from 'window' once more
 *   than `window` clicks happened.
 */
export type GruProfilerMode = 'window' | 'stream';

export interface GruProfilerOptions {
  /** N, the number of most recent clicks z summarises (window mode; kept as history in both). */
  readonly window?: number;
  readonly mode?: GruProfilerMode;
  /**
   * Left-pad short histories with the padding item (row 0) to `window` steps, as a model trained
   * on fixed-length left-padded sequences expects. Default false: run over the real clicks only
   * (what PyTorch computes for packed sequences).
   */
  readonly padShort?: boolean;
}

/**
 * Turns clicks (item indices 1..numItems) into the user embedding z. Holds the last `window`
 * clicks and their cached input projections; `click` updates z incrementally.
 */
export class GruProfiler {
  readonly weights: GruWeights;
  readonly embeddings: ItemEmbeddings;
  readonly window: number;
  readonly mode: GruProfilerMode;
  readonly padShort: boolean;
  /** Ring buffer of the last `window` item indices and their input projections. */
  private readonly ringItems: Int32Array;
  private readonly ringGi: Float64Array[];
  private count = 0;
  private h: Float32Array;
  private scratch: Float32Array;
  /** Hidden state after k padding steps from zero, k = 0..window (padShort only). */
  private readonly padStates: Float32Array[];

  constructor(weights: GruWeights, embeddings: ItemEmbeddings, options: GruProfilerOptions = {}) {
    validateGruWeights(weights);
    if (embeddings.dim !== weights.inputDim) {
      throw new GruError('GRU_BAD_TENSOR', `item embeddings have D=${embeddings.dim}, GRU expects ${weights.inputDim}`);
    }
    if (embeddings.data.length !== (embeddings.numItems + 1) * embeddings.dim) {
      throw new GruError('GRU_BAD_TENSOR', 'item embedding table size does not match numItems and dim');
    }
    const window = options.window ?? DEFAULT_GRU_WINDOW;
    if (!Number.isInteger(window) || window < 1) throw new GruError('GRU_BAD_INPUT', `window ${window} must be >= 1`);
    this.weights = weights;
    this.embeddings = embeddings;
    this.window = window;
    this.mode = options.mode ?? 'window';
    this.padShort = options.padShort ?? false;
    const H = weights.hiddenDim;
    this.ringItems = new Int32Array(window);
    this.ringGi = Array.from({ length: window }, () => new Float64Array(3 * H));
    this.padStates = [new Float32Array(H)];
    if (this.padShort) {
      const giPad = gruInputProjection(weights, itemEmbedding(embeddings, 0));
      for (let k = 1; k <= window; k++) {
        this.padStates.push(gruStepProjected(weights, this.padStates[k - 1]!, giPad, new Float32Array(H)));
      }
    }
    this.h = this.initialState();
    this.scratch = new Float32Array(H);
  }

  static fromTensors(gru: TensorMap, backbone: TensorMap, options?: GruProfilerOptions): GruProfiler {
    return new GruProfiler(gruWeightsFromTensors(gru), itemEmbeddingsFromTensors(backbone), options);
  }

  private initialState(): Float32Array {
    return Float32Array.from(this.padShort && this.mode === 'window' ? this.padStates[this.window]! : this.padStates[0]!);
  }

  /** Clicks seen since the last reset. */
  get clicks(): number {
    return this.count;
  }

  /** Current user embedding z (a copy). */
  get z(): Float32Array {
    return Float32Array.from(this.h);
  }

  /** The last min(clicks, window) item indices, oldest first. */
  history(): number[] {
    const n = Math.min(this.count, this.window);
    const out: number[] = [];
    for (let i = this.count - n; i < this.count; i++) out.push(this.ringItems[i % this.window]!);
    return out;
  }

  reset(): void {
    this.count = 0;
    this.h = this.initialState();
  }

  /** Records one click and returns the new z (a copy). */
  click(item: number): Float32Array {
    checkItem(this.embeddings, item);
    const slot = this.count % this.window;
    this.ringItems[slot] = item;
    const gi = gruInputProjection(this.weights, itemEmbedding(this.embeddings, item), this.ringGi[slot]!);
    this.count++;
    const windowFilling = this.count <= this.window && !this.padShort;
    if (this.mode === 'stream' || windowFilling) {
      gruStepProjected(this.weights, this.h, gi, this.scratch);
      [this.h, this.scratch] = [this.scratch, this.h];
    } else {
      this.recomputeWindow();
    }
    return this.z;
  }

  /** Replaces the history with `items` (oldest first) and returns z. */
  setHistory(items: readonly number[]): Float32Array {
    this.reset();
    for (const item of items) this.click(item);
    return this.z;
  }

  /** z over the window from the cached projections (window mode). */
  private recomputeWindow(): void {
    const n = Math.min(this.count, this.window);
    let h: Float32Array = Float32Array.from(this.padStates[this.padShort ? this.window - n : 0]!);
    let next = this.scratch;
    for (let i = this.count - n; i < this.count; i++) {
      gruStepProjected(this.weights, h, this.ringGi[i % this.window]!, next);
      [h, next] = [next, h];
    }
    this.h = h;
    this.scratch = next;
  }
}

/**
 * z for a click history without keeping state: the GRU over the last `window` items from zero
 * (optionally left-padded with item 0). The reference the incremental profiler must equal.
 */
export function profileClicks(
  weights: GruWeights,
  embeddings: ItemEmbeddings,
  items: readonly number[],
  options: { window?: number; padShort?: boolean } = {},
): Float32Array {
  const window = options.window ?? DEFAULT_GRU_WINDOW;
  const last = items.slice(Math.max(0, items.length - window));
  for (const item of last) checkItem(embeddings, item);
  const padded = options.padShort ? [...new Array<number>(window - last.length).fill(0), ...last] : last;
  return gruForward(weights, padded.map((i) => itemEmbedding(embeddings, i)));
}
