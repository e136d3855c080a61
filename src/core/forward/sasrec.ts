/**
 * SASRec inference for one history, in plain TypeScript: the page's CPU path and the reference
 * the WebGPU kernels are tested against. Same arithmetic as src/model/sasrec.ts in inference mode
 * (no dropout), for a window left-padded with 0 to maxLen:
 *
 *   x_t      = item_emb[s_t] * sqrt(d) + pos_emb[t]             (zero where s_t = 0)
 *   per block:
 *     q      = LN_attn(x)
 *     a      = MultiHead(Q = q Wq^T + bq, K = x Wk^T + bk, V = x Wv^T + bv), causal, keys s_j != 0
 *     x      = LN_ffn(q + a Wo^T + bo)                          (residual onto the normalised input)
 *     x      = x + (relu(x Win^T + bin) Wout^T + bout)          (zeroed where s_t = 0)
 *   rep      = LN_final(x_{L-1})
 *
 * Two exact shortcuts: padding positions are never computed (a padded key's attention weight is
 * exp(-1e9) = 0 in f32 and a padded row is zeroed, so real positions do not depend on them), and
 * the last block computes only the last position (the only one the representation reads; it
 * still needs K and V of every position). If the last slot is padding, the tfjs model's output
 * there is LN_final(0) = final_ln.beta, and so is ours.
 *
 * Activation quantization (optional): per token (one min–max range per position) at the input of
 * every quantizable matmul: LN_attn output into Wq, x into Wk and Wv (quantized once), the merged
 * heads into Wo, LN_ffn output into Win, the ReLU output into Wout. Per token keeps a position's
 * result independent of the padding and of the other positions, so the shortcuts stay exact.
 */
import { backboneLayers, type SasrecDims } from '../backbones.ts';
import type { TensorMap } from '../tensor-file.ts';
import { ForwardError } from './errors.ts';
import { dot, layerNormRows, linearRows, quantizeActivationRows, reluInPlace } from './ops.ts';
import { checkActivationBits, checkHistoryItem, requireLayerWeights, requireTensor } from './tensors.ts';
import type { BackboneForward, LayerWeights, ScoringTable } from './types.ts';

/** Layer-norm epsilon of the trained SASRec (src/model SASREC_DEFAULTS.lnEps). */
export const SASREC_LN_EPS = 1e-8;

export interface SasrecForwardOptions {
  /** Must equal the epsilon the model was trained with. Default SASREC_LN_EPS. */
  readonly lnEps?: number;
  /** Bits (1..8) of the per-token activation fake-quantization at matmul inputs; off if absent. */
  readonly activationBits?: number;
}

interface BlockParams {
  readonly lnAttnGamma: Float32Array;
  readonly lnAttnBeta: Float32Array;
  readonly lnFfnGamma: Float32Array;
  readonly lnFfnBeta: Float32Array;
  readonly qBias: Float32Array;
  readonly kBias: Float32Array;
  readonly vBias: Float32Array;
  readonly outBias: Float32Array;
  readonly ffnInBias: Float32Array;
  readonly ffnOutBias: Float32Array;
}

interface BlockWeights {
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly out: Float32Array;
  readonly ffnIn: Float32Array;
  readonly ffnOut: Float32Array;
}

export class SasrecForward implements BackboneForward {
  readonly kind = 'sasrec' as const;
  readonly inputLen: number;
  readonly repDim: number;
  readonly numItems: number;
  readonly scoring: ScoringTable;

  private readonly dims: SasrecDims;
  private readonly lnEps: number;
  private readonly activationBits: number | undefined;
  private readonly itemEmb: Float32Array;
  private readonly posEmb: Float32Array;
  private readonly finalGamma: Float32Array;
  private readonly finalBeta: Float32Array;
  private readonly blocks: BlockParams[];
  private blockWeights: BlockWeights[] = [];

  // Scratch, one row per position (row stride = the row's width).
  private readonly x: Float32Array;
  private readonly qn: Float32Array;
  private readonly qp: Float32Array;
  private readonly kp: Float32Array;
  private readonly vp: Float32Array;
  private readonly heads: Float32Array;
  private readonly hidden: Float32Array;
  private readonly quantized: Float32Array;
  private readonly att: Float64Array;

  constructor(dims: SasrecDims, tensors: TensorMap, weights: LayerWeights, options: SasrecForwardOptions = {}) {
    const { hidden: d, blocks, ffn, maxLen } = dims;
    backboneLayers({ backbone: 'sasrec', dims }); // validates the dims
    const lnEps = options.lnEps ?? SASREC_LN_EPS;
    if (!(lnEps > 0) || !Number.isFinite(lnEps)) throw new ForwardError('FORWARD_BAD_OPTION', `lnEps ${lnEps} must be > 0`);
    checkActivationBits(options.activationBits);
    this.dims = dims;
    this.lnEps = lnEps;
    this.activationBits = options.activationBits;
    this.inputLen = maxLen;
    this.repDim = d;

    this.itemEmb = requireTensor(tensors, 'item_emb', [-1, d]);
    this.numItems = this.itemEmb.length / d - 1;
    this.posEmb = requireTensor(tensors, 'pos_emb', [maxLen, d]);
    this.finalGamma = requireTensor(tensors, 'final_ln.gamma', [d]);
    this.finalBeta = requireTensor(tensors, 'final_ln.beta', [d]);
    this.blocks = [];
    for (let b = 0; b < blocks; b++) {
      const t = (name: string, size: number) => requireTensor(tensors, `block${b}.${name}`, [size]);
      this.blocks.push({
        lnAttnGamma: t('ln_attn.gamma', d),
        lnAttnBeta: t('ln_attn.beta', d),
        lnFfnGamma: t('ln_ffn.gamma', d),
        lnFfnBeta: t('ln_ffn.beta', d),
        qBias: t('attn.q.bias', d),
        kBias: t('attn.k.bias', d),
        vBias: t('attn.v.bias', d),
        outBias: t('attn.out.bias', d),
        ffnInBias: t('ffn.in.bias', ffn),
        ffnOutBias: t('ffn.out.bias', d),
      });
    }
    this.scoring = { dim: d, numItems: this.numItems, embeddings: this.itemEmb, bias: null };

    this.x = new Float32Array(maxLen * d);
    this.qn = new Float32Array(maxLen * d);
    this.qp = new Float32Array(maxLen * d);
    this.kp = new Float32Array(maxLen * d);
    this.vp = new Float32Array(maxLen * d);
    this.heads = new Float32Array(maxLen * d);
    this.hidden = new Float32Array(maxLen * ffn);
    this.quantized = new Float32Array(options.activationBits === undefined ? 0 : maxLen * Math.max(d, ffn));
    this.att = new Float64Array(maxLen);
    this.setWeights(weights);
  }

  setWeights(weights: LayerWeights): void {
    const w = requireLayerWeights(weights, backboneLayers({ backbone: 'sasrec', dims: this.dims }));
    const get = (name: string) => w.get(name)!;
    this.blockWeights = this.blocks.map((_, b) => ({
      q: get(`block${b}.attn.q`),
      k: get(`block${b}.attn.k`),
      v: get(`block${b}.attn.v`),
      out: get(`block${b}.attn.out`),
      ffnIn: get(`block${b}.ffn.in`),
      ffnOut: get(`block${b}.ffn.out`),
    }));
  }

  represent(history: ArrayLike<number>, out: Float32Array = new Float32Array(this.repDim)): Float32Array {
    const { hidden: d, maxLen: L, ffn } = this.dims;
    if (out.length !== d) throw new ForwardError('FORWARD_BAD_OPTION', `out has ${out.length} values, expected ${d}`);
    const len = history.length;
    const start = Math.max(0, len - L);
    for (let i = start; i < len; i++) checkHistoryItem(history[i]!, this.numItems, i);
    if (len === 0 || history[len - 1] === 0) {
      out.set(this.finalBeta);
      return out;
    }

    // Embed the real items only, compacted to rows 0..n-1 in order (see the file comment).
    const x = this.x;
    const scale = Math.sqrt(d);
    let n = 0;
    for (let i = start; i < len; i++) {
      const id = history[i]!;
      if (id === 0) continue;
      const t = L - (len - i); // slot in the left-padded window
      const xo = n * d;
      const eo = id * d;
      const po = t * d;
      for (let j = 0; j < d; j++) x[xo + j] = this.itemEmb[eo + j]! * scale + this.posEmb[po + j]!;
      n++;
    }

    const { qn, qp, kp, vp, heads, hidden } = this;
    for (let b = 0; b < this.blocks.length; b++) {
      const p = this.blocks[b]!;
      const w = this.blockWeights[b]!;
      const r0 = b === this.blocks.length - 1 ? n - 1 : 0;
      layerNormRows(x, d, r0, n, p.lnAttnGamma, p.lnAttnBeta, this.lnEps, qn);
      this.linear(qn, d, r0, n, w.q, p.qBias, d, qp);
      const kvIn = this.matmulInput(x, d, 0, n);
      linearRows(kvIn, d, 0, n, w.k, p.kBias, d, kp);
      linearRows(kvIn, d, 0, n, w.v, p.vBias, d, vp);
      this.attention(r0, n);
      this.linear(heads, d, r0, n, w.out, p.outBias, d, qp); // qp now holds the attention output
      for (let i = r0 * d; i < n * d; i++) qn[i] = qn[i]! + qp[i]!;
      layerNormRows(qn, d, r0, n, p.lnFfnGamma, p.lnFfnBeta, this.lnEps, x);
      this.linear(x, d, r0, n, w.ffnIn, p.ffnInBias, ffn, hidden);
      reluInPlace(hidden, r0 * ffn, n * ffn);
      this.linear(hidden, ffn, r0, n, w.ffnOut, p.ffnOutBias, d, qp);
      for (let i = r0 * d; i < n * d; i++) x[i] = x[i]! + qp[i]!;
    }
    layerNormRows(x, d, n - 1, n, this.finalGamma, this.finalBeta, this.lnEps, qn);
    out.set(qn.subarray((n - 1) * d, n * d));
    return out;
  }

  /** The matmul input rows: `src` itself, or their per-token fake-quantized copy. */
  private matmulInput(src: Float32Array, width: number, r0: number, r1: number): Float32Array {
    if (this.activationBits === undefined) return src;
    quantizeActivationRows(src, width, r0, r1, this.activationBits, this.quantized);
    return this.quantized;
  }

  private linear(
    src: Float32Array,
    inDim: number,
    r0: number,
    r1: number,
    w: Float32Array,
    b: Float32Array,
    outDim: number,
    y: Float32Array,
  ): void {
    linearRows(this.matmulInput(src, inDim, r0, r1), inDim, r0, r1, w, b, outDim, y);
  }

  /** Causal multi-head attention of query rows [r0, n) over key rows [0, r], into `heads`. */
  private attention(r0: number, n: number): void {
    const { hidden: d, heads: h } = this.dims;
    const dh = d / h;
    const scale = 1 / Math.sqrt(dh);
    const { qp, kp, vp, heads, att } = this;
    for (let r = r0; r < n; r++) {
      for (let head = 0; head < h; head++) {
        const ho = head * dh;
        let max = -Infinity;
        for (let j = 0; j <= r; j++) {
          const s = dot(qp, r * d + ho, kp, j * d + ho, dh) * scale;
          att[j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = 0; j <= r; j++) {
          const e = Math.exp(att[j]! - max);
          att[j] = e;
          sum += e;
        }
        const o = r * d + ho;
        for (let c = 0; c < dh; c++) {
          let acc = 0;
          for (let j = 0; j <= r; j++) acc += att[j]! * vp[j * d + ho + c]!;
          heads[o + c] = acc / sum;
        }
      }
    }
  }
}
