/**
 * Caser on the GPU: the dispatches of src/core/forward/caser.ts, with its activation quantizer
 * placement (per tensor: the embedding image once, the fc1 input once; the user half never).
 *
 *   embed          E = item_emb[window ids] (zero rows for padding)     [AQ: quantize_rows E -> Eq]
 *   caser_conv_v   f[0 .. nv*d)    = conv.v over E|Eq + bias
 *   caser_conv_h   f[nv*d + ..]    = relu(max over windows(conv.h<h> + bias)), all heights
 *   [AQ: quantize_rows f -> fq]
 *   matmul         rep[0 .. d)     = relu(fc1 . f|fq + b)                (bias + ReLU epilogue)
 *   rep[d .. 2d) = the user vector, written once at creation; then scores, top-k.
 */
import type { CaserDims } from '../core/backbones.ts';
import { type CaserUserEmbedding, resolveCaserUser } from '../core/forward/caser.ts';
import { checkHistoryItem, requireTensor } from '../core/forward/tensors.ts';
import type { TensorMap } from '../core/tensor-file.ts';
import { caserConvHProgram, type ConvHJob, planCaserConvH } from './caser-conv-h-program.ts';
import { caserConvVGrid, caserConvVParams, caserConvVProgram } from './caser-conv-v-program.ts';
import { embedGrid, embedParams, embedProgram, type EmbedParams } from './embed-program.ts';
import { type BackbonePlan, ModelTensorPacker, plannedStep, RegionAllocator, staticStep, type Step } from './engine-plan.ts';
import { fusedMatmulStep } from './matmul-fused-program.ts';
import { packedLayerRef } from './packed-layer-ref.ts';
import { quantizeRowsGrid, quantizeRowsParams, quantizeRowsProgram, type QuantizeRowsParams } from './quantize-rows-program.ts';
import type { QuantizedModelWeights } from './quantized-weights.ts';
import { scoringSteps } from './scoring-steps.ts';
import { CONV_H_MAX_JOBS, ROWS_FIXED } from './shader-constants.ts';
import type { ItemTableLayout } from './embed-program.ts';
import { topkSurvivorWords } from './topk-chunks-program.ts';

export interface CaserPlanOptions {
  readonly userEmbedding: CaserUserEmbedding;
  readonly activationBits?: number;
  readonly maxCandidates: number;
  /** Read item_emb (the input table; Caser scores with out_emb) from the 8-bit `items` buffer. */
  readonly itemTable?: ItemTableLayout;
}

export function buildCaserPlan(dims: CaserDims, tensors: TensorMap, options: CaserPlanOptions): BackbonePlan {
  const { d, L, nv, nh } = dims;
  const C = options.maxCandidates;
  const aq = options.activationBits;
  const featureLen = nv * d + nh * L;

  const itemEmb = requireTensor(tensors, 'item_emb', [-1, d]);
  const numItems = itemEmb.length / d - 1;
  const m = new ModelTensorPacker();
  const q8 = options.itemTable;
  const embOffset = q8 ? 0 : m.add(itemEmb);
  const outEmbOffset = m.add(requireTensor(tensors, 'out_emb', [numItems + 1, 2 * d]));
  const outBiasOffset = m.add(requireTensor(tensors, 'out_bias', [numItems + 1]));
  const vBias = m.add(requireTensor(tensors, 'conv.v.bias', [nv]));
  const hBias: number[] = [];
  for (let h = 1; h <= L; h++) hBias.push(m.add(requireTensor(tensors, `conv.h${h}.bias`, [nh])));
  const fc1Bias = m.add(requireTensor(tensors, 'fc1.bias', [d]));
  const user = resolveCaserUser(tensors, d, options.userEmbedding);

  const a = new RegionAllocator();
  const IMG = a.alloc(L * d);
  const IMGQ = aq === undefined ? IMG : a.alloc(L * d);
  const FEAT = a.alloc(featureLen);
  const FEATQ = aq === undefined ? FEAT : a.alloc(featureLen);
  const REP = a.alloc(2 * d);
  const scoreCapacity = Math.max(C, numItems);
  const SCORES = a.alloc(scoreCapacity);
  const finalOffset = topkSurvivorWords(scoreCapacity);

  const steps: Step[] = [];
  const embed: EmbedParams = { d, rowMode: ROWS_FIXED, fixedRows: L, outOffset: IMG, embOffset, scale: 1, idsOffset: 0, ...(q8 ? { itemTable: q8 } : {}) };
  steps.push(staticStep('embed', embedProgram, embed, embedParams, embedGrid));

  const quantStep = (label: string, q: QuantizeRowsParams): Step =>
    staticStep(label, quantizeRowsProgram, q, quantizeRowsParams, quantizeRowsGrid);
  if (aq !== undefined) {
    steps.push(quantStep('image.quant', { width: L * d, rowMode: ROWS_FIXED, fixedRows: 1, bits: aq, inOffset: IMG, outOffset: IMGQ }));
  }

  steps.push(
    plannedStep(
      'conv.v',
      caserConvVProgram,
      (weights) => ({ layer: packedLayerRef(weights, 'conv.v'), d, imgOffset: IMGQ, outOffset: FEAT, biasOffset: vBias }),
      caserConvVParams,
      caserConvVGrid,
    ),
  );

  for (let h0 = 1; h0 <= L; h0 += CONV_H_MAX_JOBS) {
    const heights = Array.from({ length: Math.min(CONV_H_MAX_JOBS, L - h0 + 1) }, (_, i) => h0 + i);
    const jobs = (weights: QuantizedModelWeights): ConvHJob[] =>
      heights.map((h) => ({ layer: packedLayerRef(weights, `conv.h${h}`), h, outOffset: FEAT + nv * d + (h - 1) * nh, biasOffset: hBias[h - 1]! }));
    const label = `conv.h${heights[0]}-${heights[heights.length - 1]}`;
    const plan = (weights: QuantizedModelWeights) => planCaserConvH(d, L, IMGQ, jobs(weights));
    steps.push(plannedStep(label, caserConvHProgram, plan, (p) => p.params, (p) => [p.tiles, 1]));
  }

  if (aq !== undefined) {
    steps.push(quantStep('features.quant', { width: featureLen, rowMode: ROWS_FIXED, fixedRows: 1, bits: aq, inOffset: FEAT, outOffset: FEATQ }));
  }

  steps.push(
    fusedMatmulStep('fc1', (layer) => [
      { layer: layer('fc1'), rowMode: ROWS_FIXED, fixedRows: 1, xOffset: FEATQ, yOffset: REP, biasOffset: fc1Bias, relu: true },
    ]),
  );

  const candIdsOffset = L;
  steps.push(
    ...scoringSteps({
      dim: 2 * d,
      repOffset: REP,
      scoresOffset: SCORES,
      idsOffset: candIdsOffset,
      embOffset: outEmbOffset,
      biasOffset: outBiasOffset,
      candBiasOffset: C * 2 * d,
      finalOffset,
    }),
  );

  return {
    steps,
    model: m.pack(),
    actLength: a.size,
    idsLength: L + C,
    repOffset: REP,
    candIdsOffset,
    numItems,
    outWords: finalOffset + 2 * C,
    finalOffset,
    actInit: { offset: REP + d, data: Float32Array.from(user) },
    encodeHistory(history, ids) {
      const len = history.length;
      const start = Math.max(0, len - L);
      for (let i = start; i < len; i++) checkHistoryItem(history[i]!, numItems, i);
      ids.fill(0, 0, L);
      for (let i = start; i < len; i++) ids[L - (len - i)] = history[i]!;
      // The window always has L rows (padding rows are zero); n only has to be non-zero.
      return L;
    },
  };
}
