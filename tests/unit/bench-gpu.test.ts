import { describe, expect, it } from 'vitest';
import { averageBits } from '../../src/core/allocation.ts';
import { createForward, rerank } from '../../src/core/forward/index.ts';
import { benchModel, chordLikeStrategy, frozenParamTotal, frozenWeights, workload } from '../../tools/bench/gpu/model.ts';
import { percentile, ratio, summarize } from '../../tools/bench/gpu/stats.ts';

describe('bench stats', () => {
  it('nearest-rank percentiles', () => {
    const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(percentile(xs, 50)).toBe(5);
    expect(percentile(xs, 95)).toBe(10);
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile([42], 95)).toBe(42);
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile(xs, 101)).toThrow(RangeError);
  });

  it('summaries and ratios', () => {
    expect(summarize([1, 2, 3, 4])).toEqual({ p50: 2, p95: 4, mean: 2.5, min: 1, max: 4, n: 4 });
    expect(ratio(10, 3)).toBe(3.33);
  });
});

describe('bench model', () => {
  const model = benchModel(7, 1200);

  it('has the SASRec default dims and the tensors core and tfjs read', () => {
    expect(model.config.dims).toEqual({ hidden: 64, heads: 2, blocks: 2, ffn: 256, maxLen: 50 });
    expect(model.layers).toHaveLength(12);
    expect(frozenParamTotal(model)).toBe(2 * (4 * 64 * 64 + 2 * 64 * 256));
    expect(model.tensors.get('item_emb')!.shape).toEqual([1201, 64]);
    expect(model.tensors.get('item_emb')!.data.subarray(0, 64).every((v) => v === 0)).toBe(true);
    expect(model.tensors.get('block1.ln_ffn.gamma')!.shape).toEqual([64]);
    // Same seed, same values.
    expect(benchModel(7, 1200).tensors.get('pos_emb')!.data).toEqual(model.tensors.get('pos_emb')!.data);
  });

  it('draws CHORD-like strategies near 3 bits on levels 2-4-6-8, different per seed', () => {
    const a = chordLikeStrategy(model, 1);
    const b = chordLikeStrategy(model, 2);
    expect(a.strategy.levelTable).toEqual([2, 4, 6, 8]);
    expect(a.averageBits).toBeCloseTo(averageBits(a.strategy, model.layers.map((l) => l.rowLength)), 12);
    for (const s of [a, b]) {
      expect(s.averageBits).toBeGreaterThan(2.5);
      expect(s.averageBits).toBeLessThan(3.75);
    }
    const levels = (s: typeof a) => s.strategy.layers.map((l) => Array.from(l.levels).join('')).join('|');
    expect(levels(a)).not.toBe(levels(b));
  });

  it('workload: a full window and distinct candidates that core can rank', () => {
    const { history, candidates } = workload(model, 7, 100);
    expect(history).toHaveLength(50);
    expect(new Set(candidates).size).toBe(100);
    for (const id of [...history, ...candidates]) {
      expect(Number.isInteger(id) && id >= 1 && id <= 1200).toBe(true);
    }
    const fwd = createForward(model.config, model.tensors, new Map(frozenWeights(model).map((f) => [f.spec.name, f.weights])));
    const { order, scores } = rerank(fwd, history, candidates, 10);
    expect(order).toHaveLength(10);
    expect(scores[order[0]!]!).toBeGreaterThanOrEqual(scores[order[9]!]!);
    expect(() => workload(model, 7, 1201)).toThrow(RangeError);
  });
});
