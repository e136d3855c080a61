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
import type { RowMode } from './engine-bindings.ts';
import { type BackbonePlan, ModelTensorPacker, RegionAllocator, staticStep, type Step } from './engine-plan.ts';
import { layerNormGrid, layerNormParams, layerNormProgram, type LayerNormParams } from './layer-norm-program.ts';
import { fusedMatmulStep } from './matmul-fused-program.ts';
import { quantizeRowsGrid, quantizeRowsParams, quantizeRowsProgram, type QuantizeRowsParams } from './quantize-rows-program.ts';
import { scoringSteps } from './scoring-steps.ts';
import { ROWS_ALL, ROWS_LAST } from './shader-constants.ts';
import type { ItemTableLayout } from './embed-program.ts';
import { topkSurvivorWords } from './topk-chunks-program.ts';

export interface SasrecPlanOptions {
  readonly lnEps: number;
  readonly activationBits?: number;
  readonly maxCandidates: number;
  /** Read item_emb from the 8-bit `items` buffer (then it is not packed into `model`). */
  readonly itemTable?: ItemTableLayout;
}

export function buildSasrecPlan(dims: SasrecDims, tensors: TensorMap, options: SasrecPlanOptions): BackbonePlan {
  const { hidden: d, heads, blocks, ffn: F, maxLen: L } = dims;
  const C = options.maxCandidates;
  const aq = options.activationBits;

  const itemEmb = requireTensor(tensors, 'item_emb', [-1, d]);
  const numItems = itemEmb.length / d - 1;
  const m = new ModelTensorPacker();
  const q8 = options.itemTable;
  const embOffset = q8 ? 0 : m.add(itemEmb);
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
  // Room for a full-catalogue rerank's scores as well as a candidate list's.
  const scoreCapacity = Math.max(C, numItems);
  const SCORES = a.alloc(scoreCapacity);
  const finalOffset = topkSurvivorWords(scoreCapacity);

  const steps: Step[] = [];
  // Every norm is over d-wide rows with the model's eps; gamma and beta are model offsets.
  type NormRows = Omit<LayerNormParams, 'width' | 'eps' | 'gammaOffset' | 'betaOffset'>;
  const layerNormStep = (label: string, gammaOffset: number, betaOffset: number, ln: NormRows): Step =>
    staticStep(label, layerNormProgram, { width: d, eps: options.lnEps, gammaOffset, betaOffset, ...ln }, layerNormParams, layerNormGrid);
  const embed: EmbedParams = {
    d,
    rowMode: ROWS_ALL,
    outOffset: X,
    embOffset,
    posOffset,
    scale: Math.sqrt(d),
    idsOffset: 0,
    slotsOffset: L,
    ...(q8 ? { itemTable: q8 } : {}),
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
    // [AQ: quantize_rows of the input rows -> QA], then y = residual + (input|QA W + b): the
    // projections that close the attention and the FFN sub-blocks.
    const residualProjection = (o: {
      readonly quantLabel: string;
      readonly layer: string;
      readonly input: number;
      readonly width: number;
      readonly out: number;
      readonly bias: number;
      readonly residual: number;
    }) => {
      if (aq !== undefined) {
        const q: QuantizeRowsParams = { width: o.width, rowMode: rows, bits: aq, inOffset: o.input, outOffset: QA };
        steps.push(staticStep(name(o.quantLabel), quantizeRowsProgram, q, quantizeRowsParams, quantizeRowsGrid));
      }
      steps.push(
        fusedMatmulStep(name(o.layer), (layer) => [
          {
            layer: layer(name(o.layer)),
            rowMode: rows,
            xOffset: aq === undefined ? o.input : QA,
            yOffset: o.out,
            biasOffset: o.bias,
            residual: { offset: o.residual, stride: d },
          },
        ]),
      );
    };

    // With AQ, K and V need quant(x) on every row, so the norm runs on every row (the extra rows of
    // the last block are cheap and unused); without it the last block normalises its last row only.
    steps.push(
      layerNormStep(name('ln_attn'), p.lnAttnGamma, p.lnAttnBeta, {
        rowMode: aq === undefined ? rows : ROWS_ALL,
        inOffset: X,
        outOffset: QN,
        outStride: d,
        ...(aq === undefined ? {} : { quant: { bits: aq, outOffset: QA, inOffset: QX } }),
      }),
    );

    steps.push(
      fusedMatmulStep(name('attn.qkv'), (layer) => [
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
    steps.push(staticStep(name('attention'), attentionProgram, attention, attentionParams, attentionGrid));
    residualProjection({ quantLabel: 'attention.quant', layer: 'attn.out', input: H, width: d, out: Q, bias: p.out, residual: QN });

    const ffnQuant = aq === undefined ? {} : { quant: { bits: aq, outOffset: QA } };
    steps.push(layerNormStep(name('ln_ffn'), p.lnFfnGamma, p.lnFfnBeta, { rowMode: rows, inOffset: Q, outOffset: X, outStride: d, ...ffnQuant }));

    steps.push(
      fusedMatmulStep(name('ffn.in'), (layer) => [
        { layer: layer(name('ffn.in')), rowMode: rows, xOffset: aq === undefined ? X : QA, yOffset: FH, biasOffset: p.ffnIn, relu: true },
      ]),
    );
    residualProjection({ quantLabel: 'ffn.quant', layer: 'ffn.out', input: FH, width: F, out: X, bias: p.ffnOut, residual: X });
  }

  steps.push(layerNormStep('final_ln', finalGamma, finalBeta, { rowMode: ROWS_LAST, inOffset: X, outOffset: REP, outStride: 0 }));

  const candIdsOffset = 2 * L;
  steps.push(
    ...scoringSteps({
      dim: d,
      repOffset: REP,
      scoresOffset: SCORES,
      idsOffset: candIdsOffset,
      embOffset,
      candBiasOffset: C * d,
      finalOffset,
      ...(q8 ? { itemTable: q8 } : {}),
    }),
  );

  return {
    steps,
    model: m.pack(),
    actLength: a.size,
    idsLength: 2 * L + C,
    repOffset: REP,
    candIdsOffset,
    numItems,
    outWords: finalOffset + 2 * C,
    finalOffset,
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
