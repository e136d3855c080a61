import { expect, test } from '@playwright/test';

test.beforeEach(async ({ page }) => {
  await page.goto('/tests/browser/pages/engine.html');
  await page.waitForSelector('body[data-ready="1"]');
});

test('engine: typed errors for bad calls, device loss rejects pending reranks, rebuild, destroy()', async ({ page }) => {
  const r = await page.evaluate(() => window.chordEngine.lifecycle());
  expect(r.beforeStrategy).toMatchObject({ name: 'GpuEngineError', code: 'GPU_ENGINE_STATE' });
  expect(r.ok).toHaveLength(2);
  expect(r.again).toEqual(r.ok); // same model, same strategy, new device: same ranking
  expect(r.tooMany).toMatchObject({ name: 'GpuEngineError', code: 'GPU_ENGINE_LIMIT' });
  expect(r.badItem).toMatchObject({ name: 'ForwardError', code: 'FORWARD_BAD_ITEM' });
  expect(r.badCandidate).toMatchObject({ name: 'ForwardError', code: 'FORWARD_BAD_ITEM' });
  expect(r.badEmbedding).toMatchObject({ name: 'ForwardError', code: 'FORWARD_BAD_CANDIDATE' });
  expect(r.emptyLength).toBe(0);
  expect(r.badStrategy).toMatchObject({ name: 'StrategyMismatchError', code: 'GPU_STRATEGY_MISMATCH' });
  expect(r.afterBadStrategy).toEqual(r.ok);
  // Both reranks were queued before destroy(): neither may resolve with stale results.
  for (const e of [r.inflight1, r.inflight2, r.afterLoss, r.lostSignal]) {
    expect(e).toMatchObject({ name: 'GpuDeviceLostError', code: 'GPU_DEVICE_LOST', reason: 'destroyed' });
  }
  expect(r.afterDestroy).toMatchObject({ name: 'GpuEngineError', code: 'GPU_ENGINE_STATE' });
});

for (const backbone of ['sasrec', 'caser'] as const) {
  test(`${backbone}: re-adapting to strategies of other sizes keeps CPU parity; memory is the words in use + 10 B per channel`, async ({ page }) => {
    const r = await page.evaluate((b) => window.chordEngine.readaptParity({ backbone: b, seed: 4 }), backbone);
    expect(r.rounds).toHaveLength(5);
    for (const [i, round] of r.rounds.entries()) {
      expect(round.identical, `strategy ${i}`).toBe(true);
      const m = round.memory;
      // The words buffer is exactly the strategy's packed words; per channel min + max (8 B) and a
      // u16 channel index; nothing else stays allocated (frozen weights are transient).
      expect(m.wordsUsed).toBe(round.wordsUsed);
      expect(m.words).toBe(round.wordsUsed);
      expect(m.meta).toBe(Math.ceil(r.channels / 2) * 4);
      expect(m.tables).toBe(r.channels * 8 + m.meta);
      expect(m.frozen).toBe(0);
      expect(m.resident).toBe(m.words + m.tables);
      expect(m.peakAdapt).toBeGreaterThan(m.resident);
    }
    // 2-bit and 8-bit uniform strategies differ in size, so the buffer really was replaced.
    expect(new Set(r.rounds.map((x) => x.memory.words)).size).toBeGreaterThanOrEqual(4);
  });
}

// The engine compiles the programs of its plan and the two adaptation kernels, each once, and
// nothing it never dispatches (the standalone matmul and packed_scales are for checks only).
const ADAPT = ['adapt_fix_ties', 'adapt_quantize_pack'];
const PLANS = {
  sasrec: ['attention_causal', 'embed_positions', 'layer_norm', 'matmul_fused', 'score_candidates', 'topk_chunks', 'topk_merge'],
  caser: ['caser_conv_h', 'caser_conv_v', 'embed_positions', 'matmul_fused', 'score_candidates', 'topk_chunks', 'topk_merge'],
} as const;
for (const backbone of ['sasrec', 'caser'] as const) {
  for (const activationBits of [undefined, 3]) {
    const name = `${backbone}${activationBits === undefined ? '' : ` a${activationBits}`}`;
    test(`${name}: create + adapt + rerank compiles only the plan's programs and the adaptation's, once each`, async ({ page }) => {
      const r = await page.evaluate((o) => window.chordEngine.compiledPipelines(o), { backbone, ...(activationBits === undefined ? {} : { activationBits }) });
      const expected = [...ADAPT, ...PLANS[backbone], ...(activationBits === undefined ? [] : ['quantize_rows'])].sort();
      console.log(`${name}: ${r.count} compute pipelines compiled`);
      expect(r.labels).toEqual(expected);
    });
  }
}
