import wgsl from '../../shaders/score_candidates.wgsl?raw';
import type { ItemTableLayout } from './embed-program.ts';
import { type EngineProgram, ParamsWriter, runKernelProgram } from './engine-bindings.ts';
import { WORKGROUP_SIZE } from './shader-constants.ts';

/** Candidate scores against the user representation (shaders/score_candidates.wgsl). */
export const scoreProgram: EngineProgram = runKernelProgram({
  shaderKey: 'score_candidates',
  kernel: wgsl,
  libs: ['itemTable'],
  more: ['model', 'ids', 'cand', 'items'],
  paramsBytes: 11 * 4,
});

export interface ScoreParams {
  readonly dim: number;
  /** act offsets of the representation and of the scores. */
  readonly repOffset: number;
  readonly scoresOffset: number;
  /** ids offset of the candidate ids (catalogue mode). */
  readonly idsOffset: number;
  /** model offsets of the scoring table and its bias (none for SASRec). */
  readonly embOffset: number;
  readonly biasOffset?: number;
  /** cand offset of the candidate biases (embedding mode; embeddings start at 0). */
  readonly candBiasOffset: number;
  /** Score catalogue items against the 8-bit `items` buffer instead of model[embOffset ..]. */
  readonly itemTable?: ItemTableLayout;
}

export function scoreParams(p: ScoreParams): Uint32Array<ArrayBuffer> {
  return new ParamsWriter(scoreProgram.paramsBytes).us(0, [
    p.dim,
    p.repOffset,
    p.scoresOffset,
    p.idsOffset,
    p.embOffset,
    p.biasOffset ?? 0,
    p.biasOffset === undefined ? 0 : 1,
    p.candBiasOffset,
    p.itemTable ? 1 : 0,
    p.itemTable?.rowWords ?? 0,
    p.itemTable?.scalesOffset ?? 0,
  ]).u32;
}

export function scoreGrid(candCount: number): [number, number] {
  return [Math.ceil(candCount / WORKGROUP_SIZE), 1];
}
