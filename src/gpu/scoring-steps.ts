/** The two dispatches every backbone ends with: candidate scores, then top-k. */
import type { Step } from './engine-plan.ts';
import { scoreGrid, scoreParams, scoreProgram, type ScoreParams } from './score-program.ts';
import { topkGrid, topkParams, topkProgram } from './topk-program.ts';

export function scoringSteps(p: ScoreParams): Step[] {
  return [
    { label: 'score', program: scoreProgram, stage: 'scoring', params: () => scoreParams(p), grid: (_n, c) => scoreGrid(c) },
    {
      label: 'topk',
      program: topkProgram,
      stage: 'scoring',
      params: () => topkParams(p.scoresOffset),
      grid: (_n, c) => topkGrid(c),
    },
  ];
}
