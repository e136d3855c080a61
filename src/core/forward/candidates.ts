/**
 * The one rule for candidates a shop describes itself (`{ id, embedding, bias? }`), applied once
 * before either backend scores them, so the CPU and WebGPU paths accept the same inputs and
 * rank every accepted one alike:
 *
 *   - the candidate list is an array of objects; `embedding` is an array of numbers or a typed
 *     array (any non-BigInt kind: Float32Array, Float64Array, Int8Array, ...) of the
 *     representation's length; `bias` is absent or a number. No coercion: "5", null, holes
 *     and BigInts are refused.
 *   - every value is finite and |value| <= the bound below; values are rounded to float32 once
 *     (both backends score the same float32 values), and magnitudes under the smallest normal
 *     float32 (2^-126) become 0, since GPUs may flush such subnormals to zero where the CPU
 *     would not.
 *
 * Anything else throws ForwardError FORWARD_BAD_CANDIDATE naming the candidate and the reason.
 *
 * The bound. A score is rep . e + bias, summed in float32 on the GPU (one product at a time) and
 * in float64 then rounded on the CPU. If ||rep||_1 <= R and every |e_c| <= F32_MAX / (4R), every
 * partial dot product is at most F32_MAX / 4; with |bias| <= F32_MAX / 4 no partial sum on either
 * backend exceeds F32_MAX / 2, so no score overflows to Infinity or NaN. R comes from the model
 * (representationL1Bound): it holds for every history and every strategy, so the rule does not
 * depend on who is shopping. For the demo SASRec (hidden 16) it allows |e_c| up to ~1e35.
 */
import { backboneLayers, type BackboneConfig, type LayerSpec } from '../backbones.ts';
import type { TensorMap } from '../tensor-file.ts';
import { resolveCaserUser, type CaserUserEmbedding } from './caser.ts';
import { ForwardError } from './errors.ts';
import { requireTensor } from './tensors.ts';
import type { LayerWeights } from './types.ts';

/** Largest finite float32. */
export const F32_MAX = 3.4028234663852886e38;
/** Smallest positive normal float32; smaller magnitudes are flushed to 0. */
export const F32_MIN_NORMAL = 2 ** -126;
/**
 * Headroom on the model-derived bound for float32 rounding inside the forward (each backend
 * computes the representation in float32, which can exceed the exact bound by a few ulps).
 */
const ROUNDING_HEADROOM = 2;

/** A candidate the shop describes itself, in the model's output-embedding space. */
export interface CandidateEmbedding {
  /** The shop's id, passed through untouched. */
  readonly id: string | number;
  /** Length = the representation's (SASRec hidden, Caser 2 * d). */
  readonly embedding: ArrayLike<number>;
  /** Added to the dot product (Caser's out_bias); 0 if absent. */
  readonly bias?: number;
}

export interface CandidateBound {
  /** Largest accepted |embedding value|. */
  readonly maxAbsEmbedding: number;
  /** Largest accepted |bias|. */
  readonly maxAbsBias: number;
}

/** The bound for representations whose L1 norm is at most `repL1` (see the file comment). */
export function candidateBound(repL1: number): CandidateBound {
  if (!(repL1 >= 0) || !Number.isFinite(repL1)) {
    throw new ForwardError('FORWARD_BAD_OPTION', `representation L1 bound ${repL1} must be a finite number >= 0`);
  }
  return { maxAbsEmbedding: repL1 === 0 ? F32_MAX : Math.min(F32_MAX, F32_MAX / (4 * repL1)), maxAbsBias: F32_MAX / 4 };
}

/** Length of the user representation of a backbone (SASRec hidden, Caser 2d). */
export function representationDim(config: BackboneConfig): number {
  return config.backbone === 'sasrec' ? config.dims.hidden : 2 * config.dims.d;
}

function maxAbs(values: ArrayLike<number>, from = 0, to = values.length): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, Math.abs(values[i]!));
  return m;
}

/** Largest |weight| of each output channel: per-channel min–max quantization stays within it. */
function channelMaxAbs(weights: LayerWeights, spec: LayerSpec): Float64Array {
  const w = weights.get(spec.name);
  if (!w || w.length !== spec.outChannels * spec.rowLength) {
    throw new ForwardError('FORWARD_MISSING_TENSOR', `layer ${spec.name} needs ${spec.outChannels * spec.rowLength} weights`);
  }
  return Float64Array.from({ length: spec.outChannels }, (_, o) => maxAbs(w, o * spec.rowLength, (o + 1) * spec.rowLength));
}

export interface RepresentationBoundOptions {
  /** Caser: the user half of the representation, as the forward is built with (default 'mean'). */
  readonly userEmbedding?: CaserUserEmbedding;
}

/**
 * An upper bound on ||rep||_1 over every history and every strategy, from the model's tensors
 * and its frozen (unquantized) layer weights. Quantization never leaves a channel's [min, max]
 * (quantize.ts), and activation fake-quantization never leaves its tensor's range, so bounds
 * computed from the frozen weights' per-channel magnitudes hold for every quantized variant.
 *
 *   SASRec: rep = LN_final(x): a normalised value is at most sqrt(d - 1) in magnitude, so
 *           |rep_c| <= |gamma_c| sqrt(d - 1) + |beta_c|.
 *   Caser:  interval bounds through conv.v, the conv.h max-pools (ReLU, >= 0) and fc1 (ReLU),
 *           from the largest item embedding value; plus the fixed user half.
 *
 * Includes a factor ROUNDING_HEADROOM for float32 rounding in the forward.
 */
export function representationL1Bound(
  config: BackboneConfig,
  tensors: TensorMap,
  frozen: LayerWeights,
  options: RepresentationBoundOptions = {},
): number {
  let bound = 0;
  if (config.backbone === 'sasrec') {
    const d = config.dims.hidden;
    const gamma = requireTensor(tensors, 'final_ln.gamma', [d]);
    const beta = requireTensor(tensors, 'final_ln.beta', [d]);
    const spread = Math.sqrt(Math.max(0, d - 1));
    for (let c = 0; c < d; c++) bound += Math.abs(gamma[c]!) * spread + Math.abs(beta[c]!);
  } else {
    const { d, L, nv, nh } = config.dims;
    const layers = new Map(backboneLayers(config).map((l) => [l.name, l]));
    const m = maxAbs(requireTensor(tensors, 'item_emb', [-1, d]));
    const vBias = requireTensor(tensors, 'conv.v.bias', [nv]);
    const wv = channelMaxAbs(frozen, layers.get('conv.v')!);
    // Largest |feature| into fc1: a vertical-conv output, or a horizontal max-pool (>= 0).
    let feature = 0;
    for (let f = 0; f < nv; f++) feature = Math.max(feature, L * wv[f]! * m + Math.abs(vBias[f]!));
    for (let h = 1; h <= L; h++) {
      const hBias = requireTensor(tensors, `conv.h${h}.bias`, [nh]);
      const wh = channelMaxAbs(frozen, layers.get(`conv.h${h}`)!);
      for (let o = 0; o < nh; o++) feature = Math.max(feature, h * d * wh[o]! * m + Math.abs(hBias[o]!));
    }
    // Every feature at the largest magnitude: also covers per-tensor activation quantization,
    // which may move any feature anywhere within the tensor's range.
    const featureL1 = (nv * d + nh * L) * feature;
    const fcBias = requireTensor(tensors, 'fc1.bias', [d]);
    const wfc = channelMaxAbs(frozen, layers.get('fc1')!);
    for (let j = 0; j < d; j++) bound += wfc[j]! * featureL1 + Math.abs(fcBias[j]!);
    for (const u of resolveCaserUser(tensors, d, options.userEmbedding ?? 'mean')) bound += Math.abs(u);
  }
  if (!Number.isFinite(bound)) throw new ForwardError('FORWARD_NON_FINITE', 'the model admits an unbounded representation');
  return bound * ROUNDING_HEADROOM;
}

function isNumberArrayLike(e: unknown): e is ArrayLike<number> {
  if (Array.isArray(e)) return true;
  if (!ArrayBuffer.isView(e) || e instanceof DataView) return false;
  return !(e instanceof BigInt64Array || e instanceof BigUint64Array);
}

/**
 * Candidates that passed the rule, packed for scoring: float32 embeddings row-major
 * [count, dim] and biases [count]. Only check() makes one, so a backend given one knows the
 * rule was applied.
 */
export class CheckedCandidates {
  readonly ids: readonly (string | number)[];
  readonly dim: number;
  readonly embeddings: Float32Array<ArrayBuffer>;
  readonly bias: Float32Array<ArrayBuffer>;
  /** The bound they were checked against. */
  readonly bound: CandidateBound;

  private constructor(
    ids: (string | number)[],
    dim: number,
    bound: CandidateBound,
    embeddings: Float32Array<ArrayBuffer>,
    bias: Float32Array<ArrayBuffer>,
  ) {
    this.ids = ids;
    this.dim = dim;
    this.bound = bound;
    this.embeddings = embeddings;
    this.bias = bias;
  }

  get count(): number {
    return this.ids.length;
  }

  /** Applies the rule (file comment) to `candidates` for representations of length `dim`. */
  static check(candidates: readonly CandidateEmbedding[], dim: number, bound: CandidateBound): CheckedCandidates {
    if (!Array.isArray(candidates)) throw new ForwardError('FORWARD_BAD_CANDIDATE', 'candidates must be an array of { id, embedding, bias? }');
    const n = candidates.length;
    const embeddings = new Float32Array(n * dim);
    const bias = new Float32Array(n);
    const ids: (string | number)[] = new Array(n);
    const toF32 = (x: number) => {
      const f = Math.fround(x);
      return Math.abs(f) < F32_MIN_NORMAL ? 0 : f;
    };
    for (let i = 0; i < n; i++) {
      const c: unknown = candidates[i];
      if (typeof c !== 'object' || c === null) throw new ForwardError('FORWARD_BAD_CANDIDATE', `candidate ${i} is not an object`);
      const { id, embedding: e, bias: b } = c as { id?: unknown; embedding?: unknown; bias?: unknown };
      const name = `candidate ${i} (${String(id)})`;
      if (typeof id !== 'string' && typeof id !== 'number') throw new ForwardError('FORWARD_BAD_CANDIDATE', `candidate ${i} has no string or number id`);
      if (!isNumberArrayLike(e)) {
        throw new ForwardError('FORWARD_BAD_CANDIDATE', `${name}: embedding must be an array or typed array of numbers`);
      }
      if (e.length !== dim) {
        throw new ForwardError('FORWARD_BAD_CANDIDATE', `${name} has an embedding of ${e.length} values, expected ${dim}`);
      }
      for (let j = 0; j < dim; j++) {
        const x: unknown = e[j];
        if (typeof x !== 'number') throw new ForwardError('FORWARD_BAD_CANDIDATE', `${name}: embedding[${j}] is ${x === null ? 'null' : typeof x}, not a number`);
        if (!(Math.abs(x) <= bound.maxAbsEmbedding)) {
          throw new ForwardError(
            'FORWARD_BAD_CANDIDATE',
            `${name}: embedding[${j}] = ${x} is ${Number.isFinite(x) ? `outside ±${bound.maxAbsEmbedding.toPrecision(3)}` : 'not finite'}`,
          );
        }
        embeddings[i * dim + j] = toF32(x);
      }
      if (b !== undefined) {
        if (typeof b !== 'number') throw new ForwardError('FORWARD_BAD_CANDIDATE', `${name}: bias is ${b === null ? 'null' : typeof b}, not a number`);
        if (!(Math.abs(b) <= bound.maxAbsBias)) {
          throw new ForwardError('FORWARD_BAD_CANDIDATE', `${name}: bias ${b} is ${Number.isFinite(b) ? `outside ±${bound.maxAbsBias.toPrecision(3)}` : 'not finite'}`);
        }
        bias[i] = toF32(b);
      }
      ids[i] = id;
    }
    return new CheckedCandidates(ids, dim, bound, embeddings, bias);
  }
}
