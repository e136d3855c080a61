import { expect, test } from '@playwright/test';

test.beforeEach(async ({ page }) => {
  await page.goto('/tests/browser/pages/engine.html');
  await page.waitForSelector('body[data-ready="1"]');
});

test('engine: typed errors for bad calls, device loss rejects pending reranks, rebuild, destroy()', async ({ page }) => {
  const r = await page.evaluate(() => window.chordEngine.lifecycle());
  expect(r.beforeStrategy).toMatchObject({ name: 'GpuEngineError', code: 'gpu-engine-state' });
  expect(r.ok).toHaveLength(2);
  expect(r.again).toEqual(r.ok); // same model, same strategy, new device: same ranking
  expect(r.tooMany).toMatchObject({ name: 'GpuEngineError', code: 'gpu-engine-limit' });
  expect(r.badItem).toMatchObject({ name: 'ForwardError', code: 'FORWARD_BAD_ITEM' });
  expect(r.badCandidate).toMatchObject({ name: 'ForwardError', code: 'FORWARD_BAD_ITEM' });
  expect(r.badEmbedding).toMatchObject({ name: 'ForwardError', code: 'FORWARD_BAD_CANDIDATE' });
  expect(r.emptyLength).toBe(0);
  expect(r.badStrategy).toMatchObject({ name: 'StrategyMismatchError', code: 'gpu-strategy-mismatch' });
  expect(r.afterBadStrategy).toEqual(r.ok);
  // Both reranks were queued before destroy(): neither may resolve with stale results.
  for (const e of [r.inflight1, r.inflight2, r.afterLoss, r.lostSignal]) {
    expect(e).toMatchObject({ name: 'GpuDeviceLostError', code: 'gpu-device-lost', reason: 'destroyed' });
  }
  expect(r.afterDestroy).toMatchObject({ name: 'GpuEngineError', code: 'gpu-engine-state' });
});
