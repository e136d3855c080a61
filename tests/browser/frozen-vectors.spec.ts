import { expect, test } from '@playwright/test';

test('frozen weights regenerate bit-identically in the page (pinned vectors and model hashes)', async ({ page }) => {
  await page.goto('/tests/browser/pages/index.html');
  await page.waitForSelector('body[data-ready="1"]');
  const { expected, actual } = await page.evaluate(() => window.chord.frozenVectorsInPage());
  expect(actual.cases.length).toBeGreaterThan(0);
  expect(actual.cases.map((c) => c.first8)).toEqual(expected.cases.map((c: { first8: string[] }) => c.first8));
  expect(actual.models.map((m) => m.sha256)).toEqual(expected.models.map((m: { sha256: string }) => m.sha256));
});
