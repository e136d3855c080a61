/**
 * Inference forward of the backbones in plain TypeScript: the page's CPU fallback (no WebGPU)
 * and the reference the WebGPU kernels are tested against.
 *
 *   const fwd = createForward(manifestConfig, trainedTensors, dequantizeLayers(packed));
 *   const rep = fwd.represent(recentItemIds);
 *   const order = topK(scoreCandidates(rep, fwd.scoring, candidateIds), k);
 *
 * On a new strategy: fwd.setWeights(dequantizeLayers(newPacked)).
 */
import type { BackboneConfig } from '../backbones.ts';
import { dequantizePacked, type PackedLayer } from '../packing.ts';
import type { TensorMap } from '../tensor-file.ts';
import { CaserForward, type CaserForwardOptions } from './caser.ts';
import { scoreCandidates, topK } from './rank.ts';
import { SasrecForward, type SasrecForwardOptions } from './sasrec.ts';
import type { BackboneForward, LayerWeights } from './types.ts';

export { ForwardError, type ForwardErrorCode } from './errors.ts';
export { quantizeActivations } from './ops.ts';
export { ranksBefore, scoreCandidates, scoreCandidatesWithEmbeddings, scoreCheckedCandidates, topK } from './rank.ts';
export {
  candidateBound,
  CheckedCandidates,
  F32_MAX,
  representationDim,
  representationL1Bound,
  type CandidateBound,
  type CandidateEmbedding,
  type RepresentationBoundOptions,
} from './candidates.ts';
export { SASREC_LN_EPS, SasrecForward, type SasrecForwardOptions } from './sasrec.ts';
export { CaserForward, resolveCaserUser, type CaserForwardOptions, type CaserUserEmbedding } from './caser.ts';
export type { BackboneForward, LayerWeights, ScoringTable } from './types.ts';

export type ForwardOptions = SasrecForwardOptions & CaserForwardOptions;

/** The forward of the backbone `config` describes (a ModelManifest is a BackboneConfig). */
export function createForward(
  config: BackboneConfig,
  tensors: TensorMap,
  weights: LayerWeights,
  options: ForwardOptions = {},
): BackboneForward {
  return config.backbone === 'sasrec'
    ? new SasrecForward(config.dims, tensors, weights, options)
    : new CaserForward(config.dims, tensors, weights, options);
}

/** Dequantizes every packed layer once (per strategy): the weights a forward reads. */
export function dequantizeLayers(packed: ReadonlyMap<string, PackedLayer>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, layer] of packed) out.set(name, dequantizePacked(layer));
  return out;
}

/** Scores of `candidateIds` for `history`, and their order (indices into candidateIds, best first). */
export function rerank(
  forward: BackboneForward,
  history: ArrayLike<number>,
  candidateIds: ArrayLike<number>,
  k: number = candidateIds.length,
): { scores: Float32Array; order: Uint32Array } {
  const rep = forward.represent(history);
  const scores = scoreCandidates(rep, forward.scoring, candidateIds);
  return { scores, order: topK(scores, k) };
}
