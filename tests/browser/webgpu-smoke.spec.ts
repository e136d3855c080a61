import { expect, test } from '@playwright/test';

test('WebGPU adapter + device; a shader from shaders/ runs and reads back', async ({ page }) => {
  await page.goto('/tests/browser/pages/index.html');
  await page.waitForSelector('body[data-ready="1"]');
  const { adapter, y } = await page.evaluate(() => window.chord.smokeAxpy());
  console.log(`adapter: ${adapter}`);
  expect(y).toHaveLength(1000);
  // y = 2*i + (0.5*i + 1) = 2.5*i + 1, exact in f32 for these integers and halves.
  for (let i = 0; i < y.length; i++) expect(y[i]).toBe(2.5 * i + 1);
});
