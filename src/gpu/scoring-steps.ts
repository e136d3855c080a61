/**
 * The dispatches every backbone ends with: candidate scores, then top-k in two passes (each chunk
 * of TOPK_CHUNK keeps its best k, then the survivors are ranked), so that the whole catalogue
 * (CAND_MODE_ALL, tens of thousands of items) ranks in O(C * TOPK_CHUNK + (C / TOPK_CHUNK * k)^2)
 * comparisons instead of the O(C^2) of ranking every candidate against every other.
 */
import type { Step } from './engine-plan.ts';
import { scoreGrid, scoreParams, scoreProgram, type ScoreParams } from './score-program.ts';
import { topkChunksGrid, topkChunksParams, topkChunksProgram } from './topk-chunks-program.ts';
import { topkMergeGrid, topkMergeParams, topkMergeProgram } from './topk-merge-program.ts';

/** `finalOffset`: u32 offset in `out` of the result pairs (after the survivors of pass 1). */
export function scoringSteps(p: ScoreParams & { readonly finalOffset: number }): Step[] {
  return [
    { label: 'score', program: scoreProgram, stage: 'scoring', params: () => scoreParams(p), grid: (_n, c) => scoreGrid(c) },
    {
      label: 'topk.chunks',
      program: topkChunksProgram,
      stage: 'scoring',
      params: () => topkChunksParams(p.scoresOffset),
      grid: (_n, c) => topkChunksGrid(c),
    },
    {
      label: 'topk.merge',
      program: topkMergeProgram,
      stage: 'scoring',
      params: () => topkMergeParams(p.finalOffset, p.scoresOffset),
      grid: (_n, c) => topkMergeGrid(c),
    },
  ];
}
