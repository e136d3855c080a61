/**
 * Caser inference for one history, in plain TypeScript (the page's CPU path and the WebGPU
 * reference). Same arithmetic as src/model/caser.ts in inference mode, on the window of the last
 * L items left-padded with 0:
 *
 *   E        = item_emb[s_l] for l < L, a zero row where s_l = 0          [L, d]
 *   v[f, j]  = sum_l conv.v[f, l] * E[l, j] + bv[f]       (no activation) [nv * d], f-major
 *   p_h[o]   = max_i relu(conv.h<h>[o] . E[i .. i+h-1] + bh[o])   for h = 1..L, [nh] each
 *   z        = relu(fc1 . [v ; p_1 ; ... ; p_L] + b)                      [d]
 *   rep      = [z ; u]                                                    [2d]
 *   score(i) = out_emb[i] . rep + out_bias[i]
 *
 * The user embedding u: the trained model has one row of user_emb per *training* user; a shopper
 * on the page has none. The default is the mean training user embedding (tensor
 * `user_emb_mean` [d] if the artifact ships it, else the mean of the `user_emb` rows): since the
 * score is linear in u, that gives every item the average user's term out_emb[i, d:] . u, a
 * learned popularity prior, where a zero u would drop it. 'zero', a training user's row, or an
 * explicit vector can be chosen instead.
 *
 * Activation quantization (optional): per tensor at the matmul inputs: the embedding image E
 * (read by conv.v and every conv.h, quantized once) and fc1's input; the user half is not a
 * matmul input and is never quantized.
 */
import { backboneLayers, type CaserDims } from '../backbones.ts';
import type { TensorMap } from '../tensor-file.ts';
import { ForwardError } from './errors.ts';
import { dot, linearRows, quantizeActivationRows } from './ops.ts';
import { checkActivationBits, checkHistoryItem, requireLayerWeights, requireTensor } from './tensors.ts';
import type { BackboneForward, LayerWeights, ScoringTable } from './types.ts';

/** How the page fills the user half of Caser's representation (see the file comment). */
export type CaserUserEmbedding =
  | 'mean'
  | 'zero'
  /** Row `index` of the trained user_emb (a training user: evaluation, parity tests). */
  | { readonly index: number }
  /** An explicit vector of length d. */
  | Float32Array;

export interface CaserForwardOptions {
  /** Default 'mean'. */
  readonly userEmbedding?: CaserUserEmbedding;
  /** Bits (1..8) of the per-tensor activation fake-quantization at matmul inputs; off if absent. */
  readonly activationBits?: number;
}

/** The user vector an option resolves to, read from the trained tensors. */
export function resolveCaserUser(tensors: TensorMap, d: number, choice: CaserUserEmbedding): Float32Array {
  if (choice === 'zero') return new Float32Array(d);
  if (choice instanceof Float32Array) {
    if (choice.length !== d || !choice.every(Number.isFinite)) {
      throw new ForwardError('FORWARD_BAD_OPTION', `user embedding must be ${d} finite values`);
    }
    return choice.slice();
  }
  if (choice === 'mean') {
    if (tensors.has('user_emb_mean')) return requireTensor(tensors, 'user_emb_mean', [d]).slice();
    const table = requireTensor(tensors, 'user_emb', [-1, d]);
    const users = table.length / d;
    const acc = new Float64Array(d);
    for (let u = 0; u < users; u++) for (let j = 0; j < d; j++) acc[j]! += table[u * d + j]!;
    return Float32Array.from(acc, (s) => s / users);
  }
  const table = requireTensor(tensors, 'user_emb', [-1, d]);
  const users = table.length / d;
  if (!Number.isInteger(choice.index) || choice.index < 0 || choice.index >= users) {
    throw new ForwardError('FORWARD_BAD_OPTION', `user index ${choice.index} outside 0..${users - 1}`);
  }
  return table.slice(choice.index * d, (choice.index + 1) * d);
}

interface CaserWeights {
  readonly v: Float32Array;
  readonly h: Float32Array[];
  readonly fc1: Float32Array;
}

export class CaserForward implements BackboneForward {
  readonly kind = 'caser' as const;
  readonly inputLen: number;
  readonly repDim: number;
  readonly numItems: number;
  readonly scoring: ScoringTable;

  private readonly dims: CaserDims;
  private readonly activationBits: number | undefined;
  private readonly itemEmb: Float32Array;
  private readonly user: Float32Array;
  private readonly vBias: Float32Array;
  private readonly hBias: Float32Array[];
  private readonly fc1Bias: Float32Array;
  private weights!: CaserWeights;

  private readonly image: Float32Array;
  private readonly imageQ: Float32Array;
  private readonly features: Float32Array;
  private readonly featuresQ: Float32Array;
  private readonly fc1Out: Float32Array;

  constructor(dims: CaserDims, tensors: TensorMap, weights: LayerWeights, options: CaserForwardOptions = {}) {
    backboneLayers({ backbone: 'caser', dims }); // validates the dims
    checkActivationBits(options.activationBits);
    const { d, L, nv, nh } = dims;
    this.dims = dims;
    this.activationBits = options.activationBits;
    this.inputLen = L;
    this.repDim = 2 * d;

    this.itemEmb = requireTensor(tensors, 'item_emb', [-1, d]);
    this.numItems = this.itemEmb.length / d - 1;
    const outEmb = requireTensor(tensors, 'out_emb', [this.numItems + 1, 2 * d]);
    const outBias = requireTensor(tensors, 'out_bias', [this.numItems + 1]);
    this.scoring = { dim: 2 * d, numItems: this.numItems, embeddings: outEmb, bias: outBias };
    this.user = resolveCaserUser(tensors, d, options.userEmbedding ?? 'mean');
    this.vBias = requireTensor(tensors, 'conv.v.bias', [nv]);
    this.hBias = [];
    for (let h = 1; h <= L; h++) this.hBias.push(requireTensor(tensors, `conv.h${h}.bias`, [nh]));
    this.fc1Bias = requireTensor(tensors, 'fc1.bias', [d]);

    const featureLen = nv * d + nh * L;
    this.image = new Float32Array(L * d);
    this.features = new Float32Array(featureLen);
    const quantized = options.activationBits !== undefined;
    this.imageQ = new Float32Array(quantized ? L * d : 0);
    this.featuresQ = new Float32Array(quantized ? featureLen : 0);
    this.fc1Out = new Float32Array(d);
    this.setWeights(weights);
  }

  setWeights(weights: LayerWeights): void {
    const w = requireLayerWeights(weights, backboneLayers({ backbone: 'caser', dims: this.dims }));
    const h: Float32Array[] = [];
    for (let k = 1; k <= this.dims.L; k++) h.push(w.get(`conv.h${k}`)!);
    this.weights = { v: w.get('conv.v')!, h, fc1: w.get('fc1')! };
  }

  represent(history: ArrayLike<number>, out: Float32Array = new Float32Array(this.repDim)): Float32Array {
    const { d, L, nv, nh } = this.dims;
    if (out.length !== 2 * d) throw new ForwardError('FORWARD_BAD_OPTION', `out has ${out.length} values, expected ${2 * d}`);
    const len = history.length;
    const start = Math.max(0, len - L);
    for (let i = start; i < len; i++) checkHistoryItem(history[i]!, this.numItems, i);

    const image = this.image;
    image.fill(0);
    for (let i = start; i < len; i++) {
      const id = history[i]!;
      if (id !== 0) image.set(this.itemEmb.subarray(id * d, (id + 1) * d), (L - (len - i)) * d);
    }
    const e = this.quantize(image, this.imageQ);

    const f = this.features;
    const wv = this.weights.v;
    for (let fi = 0; fi < nv; fi++) {
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let l = 0; l < L; l++) s += wv[fi * L + l]! * e[l * d + j]!;
        f[fi * d + j] = s + this.vBias[fi]!;
      }
    }
    let fo = nv * d;
    for (let h = 1; h <= L; h++) {
      const wh = this.weights.h[h - 1]!;
      const bh = this.hBias[h - 1]!;
      const width = h * d;
      for (let o = 0; o < nh; o++) {
        // max over windows of relu(.) = relu(max over windows), and relu(.) >= 0.
        let best = -Infinity;
        for (let i = 0; i + h <= L; i++) {
          const s = dot(e, i * d, wh, o * width, width) + bh[o]!;
          if (s > best) best = s;
        }
        f[fo + o] = best > 0 ? best : 0;
      }
      fo += nh;
    }

    const fc1In = this.quantize(f, this.featuresQ);
    linearRows(fc1In, f.length, 0, 1, this.weights.fc1, this.fc1Bias, d, this.fc1Out);
    for (let j = 0; j < d; j++) {
      const z = this.fc1Out[j]!;
      out[j] = z > 0 ? z : 0;
    }
    out.set(this.user, d);
    return out;
  }

  private quantize(src: Float32Array, scratch: Float32Array): Float32Array {
    if (this.activationBits === undefined) return src;
    quantizeActivationRows(src, src.length, 0, 1, this.activationBits, scratch);
    return scratch;
  }
}
