/**
 * SASRec on the GPU: the dispatches of src/core/forward/sasrec.ts with the same shortcuts (real
 * items compacted to rows 0..n-1, the last block on the last row only) and the same activation
 * quantizer placement (per token at every matmul input; residuals unquantized).
 *
 * Per block (AQ = activation quantization on):
 *   layer_norm   qn = LN_attn(x)                       [+ AQ: quant(qn) -> qa, quant(x) -> qx]
 *   matmul x3    Q = qn|qa Wq + bq, K = x|qx Wk + bk, V = x|qx Wv + bv     (one dispatch)
 *   attention    h = causal MHA(Q, K, V)
 *   [AQ: quantize_rows h -> qa]
 *   matmul       t = qn + (h|qa Wo + bo)               (residual epilogue; t reuses Q's rows)
 *   layer_norm   x = LN_ffn(t)                         [+ AQ: quant(x) -> qa]
 *   matmul       f = relu(x|qa Win + bin)              (bias + ReLU epilogue)
 *   [AQ: quantize_rows f -> qa]
 *   matmul       x = x + (f|qa Wout + bout)            (residual epilogue, in place)
 * then rep = LN_final(x[n-1]), scores, top-k.
 */
import type { SasrecDims } from '../core/backbones.ts';
import { checkHistoryItem, requireTensor } from '../core/forward/tensors.ts';
import type { TensorMap } from '../core/tensor-file.ts';
import { attentionGrid, attentionParams, attentionProgram, type AttentionParams } from './attention-program.ts';
import { embedGrid, embedParams, embedProgram, type EmbedParams } from './embed-program.ts';
import { type RowMode, ROWS_ALL, ROWS_LAST } from './engine-bindings.ts';
import { type BackbonePlan, ModelTensorPacker, RegionAllocator, type Step } from './engine-plan.ts';
import { layerNormGrid, layerNormParams, layerNormProgram, type LayerNormParams } from './layer-norm-program.ts';
import {
  type FusedMatmulPlan,
  fusedMatmulGrid,
  fusedMatmulProgram,
  type MatmulJob,
  planFusedMatmul,
} from './matmul-fused-program.ts';
import { packedLayerRef, type PackedLayerRef } from './packed-layer-ref.ts';
import { quantizeRowsGrid, quantizeRowsParams, quantizeRowsProgram, type QuantizeRowsParams } from './quantize-rows-program.ts';
import type { QuantizedModelWeights } from './quantized-weights.ts';
import { scoringSteps } from './scoring-steps.ts';

export interface SasrecPlanOptions {
  readonly lnEps: number;
  readonly activationBits?: number;
  readonly maxCandidates: number;
}

function staticStep<P>(
  label: string,
  program: Step['program'],
  p: P,
  pack: (p: P) => Uint32Array<ArrayBuffer>,
  grid: (p: P, n: number) => [number, number],
): Step {
  return { label, program, stage: 'backbone', params: () => pack(p), grid: (n) => grid(p, n) };
}

/** A matmul step whose jobs are re-planned for every strategy (width groups move). */
function matmulStep(label: string, jobs: (layer: (name: string) => PackedLayerRef) => MatmulJob[]): Step {
  let plan: FusedMatmulPlan | undefined;
  return {
    label,
    program: fusedMatmulProgram,
    stage: 'backbone',
    params(weights: QuantizedModelWeights) {
      plan = planFusedMatmul(jobs((name) => packedLayerRef(weights, name)));
      return plan.params;
    },
    grid(n) {
      if (!plan) throw new Error(`${label}: grid before params`);
      return fusedMatmulGrid(plan, n);
    },
  };
}

export function buildSasrecPlan(dims: SasrecDims, tensors: TensorMap, options: SasrecPlanOptions): BackbonePlan {
  const { hidden: d, heads, blocks, ffn: F, maxLen: L } = dims;
  const C = options.maxCandidates;
  const aq = options.activationBits;

  const itemEmb = requireTensor(tensors, 'item_emb', [-1, d]);
  const numItems = itemEmb.length / d - 1;
  const m = new ModelTensorPacker();
  const embOffset = m.add(itemEmb);
  const posOffset = m.add(requireTensor(tensors, 'pos_emb', [L, d]));
  const finalGamma = m.add(requireTensor(tensors, 'final_ln.gamma', [d]));
  const finalBeta = m.add(requireTensor(tensors, 'final_ln.beta', [d]));
  const t = (b: number, name: string, size: number) => m.add(requireTensor(tensors, `block${b}.${name}`, [size]));

  const a = new RegionAllocator();
  const X = a.alloc(L * d);
  const QN = a.alloc(L * d);
  const Q = a.alloc(L * d); // also t = qn + attention output
  const K = a.alloc(L * d);
  const V = a.alloc(L * d);
  const H = a.alloc(L * d);
  const FH = a.alloc(L * F);
  const QX = aq === undefined ? 0 : a.alloc(L * d);
  const QA = aq === undefined ? 0 : a.alloc(L * Math.max(d, F));
  const REP = a.alloc(d);
  const SCORES = a.alloc(C);

  const steps: Step[] = [];
  const embed: EmbedParams = {
    d,
    rowMode: ROWS_ALL,
    outOffset: X,
    embOffset,
    posOffset,
    scale: Math.sqrt(d),
    idsOffset: 0,
    slotsOffset: L,
  };
  steps.push(staticStep('embed', embedProgram, embed, embedParams, embedGrid));

  for (let b = 0; b < blocks; b++) {
    const last = b === blocks - 1;
    const rows: RowMode = last ? ROWS_LAST : ROWS_ALL;
    const p = {
      lnAttnGamma: t(b, 'ln_attn.gamma', d),
      lnAttnBeta: t(b, 'ln_attn.beta', d),
      lnFfnGamma: t(b, 'ln_ffn.gamma', d),
      lnFfnBeta: t(b, 'ln_ffn.beta', d),
      q: t(b, 'attn.q.bias', d),
      k: t(b, 'attn.k.bias', d),
      v: t(b, 'attn.v.bias', d),
      out: t(b, 'attn.out.bias', d),
      ffnIn: t(b, 'ffn.in.bias', F),
      ffnOut: t(b, 'ffn.out.bias', d),
    };
    const name = (layer: string) => `block${b}.${layer}`;

    // With AQ, K and V need quant(x) on every row, so the norm runs on every row (the extra rows of
    // the last block are cheap and unused); without it the last block normalises its last row only.
    const lnAttn: LayerNormParams = {
      width: d,
      rowMode: aq === undefined ? rows : ROWS_ALL,
      inOffset: X,
      outOffset: QN,
      outStride: d,
      gammaOffset: p.lnAttnGamma,
      betaOffset: p.lnAttnBeta,
      eps: options.lnEps,
      ...(aq === undefined ? {} : { quant: { bits: aq, outOffset: QA, inOffset: QX } }),
    };
    steps.push(staticStep(`${name('ln_attn')}`, layerNormProgram, lnAttn, layerNormParams, layerNormGrid));

    steps.push(
      matmulStep(`${name('attn.qkv')}`, (layer) => [
        { layer: layer(name('attn.q')), rowMode: rows, xOffset: aq === undefined ? QN : QA, yOffset: Q, biasOffset: p.q },
        { layer: layer(name('attn.k')), rowMode: ROWS_ALL, xOffset: aq === undefined ? X : QX, yOffset: K, biasOffset: p.k },
        { layer: layer(name('attn.v')), rowMode: ROWS_ALL, xOffset: aq === undefined ? X : QX, yOffset: V, biasOffset: p.v },
      ]),
    );

    const attention: AttentionParams = {
      d,
      heads,
      rowMode: last ? ROWS_LAST : ROWS_ALL,
      qOffset: Q,
      kOffset: K,
      vOffset: V,
      outOffset: H,
    };
    steps.push(staticStep(`${name('attention')}`, attentionProgram, attention, attentionParams, attentionGrid));
    if (aq !== undefined) {
      const qh: QuantizeRowsParams = { width: d, rowMode: rows, bits: aq, inOffset: H, outOffset: QA };
      steps.push(staticStep(`${name('attention.quant')}`, quantizeRowsProgram, qh, quantizeRowsParams, quantizeRowsGrid));
    }

    steps.push(
      matmulStep(`${name('attn.out')}`, (layer) => [
        {
          layer: layer(name('attn.out')),
          rowMode: rows,
          xOffset: aq === undefined ? H : QA,
          yOffset: Q,
          biasOffset: p.out,
          residual: { offset: QN, stride: d },
        },
      ]),
    );

    const lnFfn: LayerNormParams = {
      width: d,
      rowMode: rows,
      inOffset: Q,
      outOffset: X,
      outStride: d,
      gammaOffset: p.lnFfnGamma,
      betaOffset: p.lnFfnBeta,
      eps: options.lnEps,
      ...(aq === undefined ? {} : { quant: { bits: aq, outOffset: QA } }),
    };
    steps.push(staticStep(`${name('ln_ffn')}`, layerNormProgram, lnFfn, layerNormParams, layerNormGrid));

    steps.push(
      matmulStep(`${name('ffn.in')}`, (layer) => [
        { layer: layer(name('ffn.in')), rowMode: rows, xOffset: aq === undefined ? X : QA, yOffset: FH, biasOffset: p.ffnIn, relu: true },
      ]),
    );
    if (aq !== undefined) {
      const qf: QuantizeRowsParams = { width: F, rowMode: rows, bits: aq, inOffset: FH, outOffset: QA };
      steps.push(staticStep(`${name('ffn.quant')}`, quantizeRowsProgram, qf, quantizeRowsParams, quantizeRowsGrid));
    }
    steps.push(
      matmulStep(`${name('ffn.out')}`, (layer) => [
        {
          layer: layer(name('ffn.out')),
          rowMode: rows,
          xOffset: aq === undefined ? FH : QA,
          yOffset: X,
          biasOffset: p.ffnOut,
          residual: { offset: X, stride: d },
        },
      ]),
    );
  }

  const finalLn: LayerNormParams = {
    width: d,
    rowMode: ROWS_LAST,
    inOffset: X,
    outOffset: REP,
    outStride: 0,
    gammaOffset: finalGamma,
    betaOffset: finalBeta,
    eps: options.lnEps,
  };
  steps.push(staticStep('final_ln', layerNormProgram, finalLn, layerNormParams, layerNormGrid));

  const candIdsOffset = 2 * L;
  steps.push(
    ...scoringSteps({ dim: d, repOffset: REP, scoresOffset: SCORES, idsOffset: candIdsOffset, embOffset, candBiasOffset: C * d }),
  );

  return {
    steps,
    model: m.pack(),
    actLength: a.size,
    idsLength: 2 * L + C,
    repOffset: REP,
    candIdsOffset,
    emptyRepModelOffset: finalBeta,
    encodeHistory(history, ids) {
      const len = history.length;
      const start = Math.max(0, len - L);
      for (let i = start; i < len; i++) checkHistoryItem(history[i]!, numItems, i);
      // As the CPU forward: an empty history or a padded last slot gives rep = final_ln.beta.
      if (len === 0 || history[len - 1] === 0) return 0;
      let n = 0;
      for (let i = start; i < len; i++) {
        const id = history[i]!;
        if (id === 0) continue;
        ids[n] = id;
        ids[L + n] = L - (len - i);
        n++;
      }
      return n;
    },
  };
}
