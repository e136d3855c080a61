// examples/basic works as written: it loads, ranks the page's products, and a few clicks bring
// a personalised strategy (one request) that reorders them.
import { expect, test } from '@playwright/test';
import { RerankerTestServers } from './pages/reranker.server.ts';

let servers: RerankerTestServers;
test.beforeAll(async ({}, info) => {
  servers = await RerankerTestServers.start([new URL(info.project.use.baseURL!).origin]);
});
test.afterAll(async () => servers?.close());

test('examples/basic: loads, ranks, learns from clicks', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const query = new URLSearchParams({ model: servers.modelUrl, endpoint: servers.endpoint });
  await page.goto(`/examples/basic/index.html?${query}`);
  const status = page.locator('#status');
  await expect(status).toHaveText(/^12 products ranked on (webgpu|cpu) \(default strategy, \d\.\d\d bits\)$/, { timeout: 60_000 });
  const order = () => page.locator('#products [data-sku]').evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.sku!));
  const first = await order();
  expect([...first].sort()).toEqual(Array.from({ length: 12 }, (_, i) => `sku-${i + 1}`).sort());
  expect(first).not.toEqual(Array.from({ length: 12 }, (_, i) => `sku-${i + 1}`)); // reordered

  const posts = servers.strategyPosts.length;
  for (const sku of ['sku-3', 'sku-7', 'sku-11']) await page.locator(`[data-sku="${sku}"]`).click();
  await expect(status).toHaveText(/\(network strategy, \d\.\d\d bits\)$/, { timeout: 30_000 });
  expect(servers.strategyPosts.length).toBe(posts + 1); // the first click asked; the others waited
  const second = await order();
  expect([...second].sort()).toEqual([...first].sort());
  expect(second).not.toEqual(first); // three clicks of history changed the ranking
  expect(errors).toEqual([]);
});
