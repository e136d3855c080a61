import { expect, test } from '@playwright/test';

test.beforeEach(async ({ page }) => {
  await page.goto('/tests/browser/pages/gpu.html');
  await page.waitForSelector('body[data-ready="1"]');
});

test('QuantizedModelWeights: adapt + matmul on every SASRec layer, re-adapt without reallocating', async ({ page }) => {
  const r = await page.evaluate(() =>
    window.chordGpu.weightsEndToEnd({ model: 'sasrec', seed: 3, M: 5, tables: [[2, 4, 6, 8], [1, 2, 3, 4]] }),
  );
  expect(r.layers).toBe(12);
  expect(r.rounds).toHaveLength(2);
  for (const round of r.rounds) {
    expect(round.bitsMatch).toBe(true);
    expect(round.outputs).toBe(5 * 2 * (4 * 64 + 256 + 64));
    expect(round.maxRelErr).toBeLessThanOrEqual(1e-5);
  }
  expect(r.sameBuffers).toBe(true);
});

test('QuantizedModelWeights: Caser layers (conv rows as matmul rows)', async ({ page }) => {
  const r = await page.evaluate(() =>
    window.chordGpu.weightsEndToEnd({ model: 'caser', seed: 4, M: 3, tables: [[2, 4, 6, 8]] }),
  );
  expect(r.layers).toBe(7);
  expect(r.rounds[0]!.bitsMatch).toBe(true);
  expect(r.rounds[0]!.maxRelErr).toBeLessThanOrEqual(1e-5);
});

test('QuantizedModelWeights: a lost device surfaces GpuDeviceLostError instead of hanging', async ({ page }) => {
  const r = await page.evaluate(() => window.chordGpu.deviceLossBehaviour());
  for (const e of [r.afterLoss, r.matmulAfterLoss, r.duringReadback]) {
    expect(e).toMatchObject({ name: 'GpuDeviceLostError', code: 'GPU_DEVICE_LOST', reason: 'destroyed' });
  }
});

test('QuantizedModelWeights: refuses bad strategies, weights and arguments with typed errors', async ({ page }) => {
  const r = await page.evaluate(() => window.chordGpu.inputErrors());
  expect(r.before).toMatchObject({ name: 'WeightsStateError', code: 'GPU_WEIGHTS_STATE' });
  expect(r.wrongName).toMatchObject({ name: 'StrategyMismatchError', code: 'GPU_STRATEGY_MISMATCH' });
  expect(r.wrongCount).toMatchObject({ name: 'StrategyMismatchError', code: 'GPU_STRATEGY_MISMATCH' });
  expect(r.badLevel).toMatchObject({ name: 'StrategyMismatchError', code: 'GPU_STRATEGY_MISMATCH' });
  expect(r.shortX).toMatchObject({ name: 'MatmulArgumentError', code: 'GPU_MATMUL_ARGUMENTS' });
  expect(r.destroyed).toMatchObject({ name: 'WeightsStateError', code: 'GPU_WEIGHTS_STATE' });
  expect(r.nan).toMatchObject({ name: 'QuantizeError', code: 'QUANT_NON_FINITE' });
  expect(r.huge).toMatchObject({ name: 'QuantizeError', code: 'QUANT_RANGE_OVERFLOW' });
  expect(r.wrongLength).toMatchObject({ name: 'LayerLayoutError', code: 'GPU_LAYER_LAYOUT' });
  expect(r.otherScale).toMatchObject({ name: 'LayerLayoutError', code: 'GPU_LAYER_LAYOUT' });
  expect(r.negativeZero).toMatchObject({ name: 'LayerLayoutError', code: 'GPU_LAYER_LAYOUT' });
});
