// The demo shop end to end in real Chromium, started the way `npm start` starts it (startDemo:
// the strategy server over public/models + Vite with /v1 proxied), on its own test ports.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import type { Page } from '@playwright/test';
import { startDemo } from '../../src/demo/start.ts';
import type { DemoServers } from '../../src/demo/start.ts';
// main.ts also declares window.chordDemo, which the page functions below read.
import type { DemoHandle } from '../../src/demo/main.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
// Clear of the config's own Vite server (TEST_PORT) and of a developer's `npm start` (5173/5174).
const PORT = Number(process.env.TEST_PORT ?? 5179) + 40;

let demo: DemoServers;

test.beforeAll(async () => {
  demo = await startDemo({ port: PORT, strategyPort: 0, strictPort: true, log: () => undefined });
});
test.afterAll(async () => demo?.close());

interface Card {
  readonly id: string;
  readonly category: number;
}

const recommended = (page: Page): Promise<Card[]> =>
  page.$$eval('#recs [data-id]', (cards) => cards.map((c) => ({ id: (c as HTMLElement).dataset.id!, category: Number((c as HTMLElement).dataset.category) })));
const share = (cards: readonly Card[], category: number) => cards.filter((c) => c.category === category).length / cards.length;
const candidateShare = (page: Page, category: number) =>
  page.evaluate((c) => {
    const d: DemoHandle = window.chordDemo!;
    const of = new Map(d.catalogue.items.map((it) => [it.id, it.category]));
    const ids = d.candidates();
    return ids.filter((id) => of.get(id) === c).length / ids.length;
  }, category);
const timeline = (page: Page, kind: string) => page.$$eval(`#timeline [data-kind="${kind}"] .text`, (nodes) => nodes.map((n) => n.textContent ?? ''));
const heatmap = (page: Page) =>
  page.$eval('#heatmap', (c) => ({ revision: (c as HTMLCanvasElement).dataset.revision!, pixels: (c as HTMLCanvasElement).toDataURL() }));

/** Clicks the `n`-th product of the category tab `category` and waits for the row to be reranked. */
async function clickProduct(page: Page, category: number, n: number): Promise<void> {
  await page.click(`#tabs [data-category="${category}"]`);
  const clicks = Number(await page.getAttribute('#recs', 'data-clicks'));
  await page.click(`#grid [data-id] >> nth=${n}`);
  await page.waitForSelector(`#recs[data-clicks="${clicks + 1}"]`);
}

test('demo shop: clicks personalise the row; a drift fetches one strategy; budget and offline reranking', async ({ page }) => {
  test.setTimeout(300_000);
  const strategyPosts: string[] = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname.endsWith('/strategy')) strategyPosts.push(r.url());
  });
  await page.setViewportSize({ width: 1440, height: 1220 });
  await page.goto(demo.url);
  await page.waitForSelector('body[data-ready]', { timeout: 180_000 });
  expect(await page.getAttribute('body', 'data-ready')).toBe('1');
  expect(await page.locator('#grid [data-id]').count()).toBeGreaterThan(20);
  expect(await page.textContent('#backend')).toMatch(/^(WebGPU|CPU)$/);
  // The cloud-only half of the model is not served to the page.
  expect((await page.request.get(`${demo.url}models/sasrec-demo-shop/hyper.bin`)).status()).toBe(404);

  // 1. Clicks in one category: the recommended row moves toward it, beyond the candidates' own mix.
  const start = await recommended(page);
  expect(start).toHaveLength(10);
  const categories = (await page.locator('#tabs [data-category]').count()) as number;
  const shares = Array.from({ length: categories }, (_, c) => share(start, c));
  const a = shares.indexOf(Math.min(...shares));
  for (let n = 0; n < 5; n++) await clickProduct(page, a, n);
  await expect.poll(() => page.$eval('#heatmap', (c) => (c as HTMLCanvasElement).dataset.revision)).not.toBe('default');
  await page.waitForFunction(() => document.querySelectorAll('#recs [data-id]').length === 10);
  const afterA = await recommended(page);
  expect(share(afterA, a)).toBeGreaterThan(shares[a]!);
  expect(share(afterA, a)).toBeGreaterThanOrEqual(0.6);
  expect(share(afterA, a)).toBeGreaterThan(await candidateShare(page, a));
  expect(await timeline(page, 'drift')).toHaveLength(1); // the first click's 'initial' request
  const postsInA = strategyPosts.length;
  expect(postsInA).toBe(1);
  expect(demo.strategyLog.filter((r) => r.method === 'POST')).toHaveLength(1);
  const before = await heatmap(page);

  // 2. Switch to another category: a drift, exactly one strategy request, a new heatmap.
  const b = (a + 3) % categories;
  let n = 0;
  while ((await timeline(page, 'drift')).length < 2 && n < 8) await clickProduct(page, b, n++);
  const drifts = await timeline(page, 'drift');
  expect(drifts).toHaveLength(2);
  expect(drifts[0]).toMatch(/^Interest drift \(distance \d\.\d\d\)/);
  await expect.poll(async () => (await heatmap(page)).revision).not.toBe(before.revision);
  const after = await heatmap(page);
  expect(after.pixels).not.toBe(before.pixels);
  for (let k = 0; k < 2; k++) await clickProduct(page, b, n++); // the new strategy holds while the shopper stays
  expect(strategyPosts.length - postsInA).toBe(1);
  expect(await timeline(page, 'drift')).toHaveLength(2);
  expect(share(await recommended(page), b)).toBeGreaterThanOrEqual(0.5);
  mkdirSync(join(ROOT, 'results'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'results', 'demo-shop.png'), fullPage: false });

  // 3. The device budget: T is applied in the page (no request), the average drops, the row is compared.
  const posts = strategyPosts.length;
  await page.click('#budget [data-budget="2"]');
  await expect(page.locator('#budget-result')).toHaveText(/^2 bits: \d+ of the top 10 changed/);
  expect(Number(await page.$eval('#heatmap', (c) => (c as HTMLCanvasElement).dataset.averageBits))).toBeCloseTo(2, 2);
  expect((await heatmap(page)).pixels).not.toBe(after.pixels);
  expect(strategyPosts.length).toBe(posts);
  await page.click('#budget [data-budget="sent"]');
  await expect(page.locator('#budget-result')).toHaveText(/^as sent: /);
  expect((await heatmap(page)).pixels).toBe(after.pixels); // T is undone locally: the strategy was kept as sent

  // 4. Offline: the strategy server is gone; clicks still rerank (in the page, with the strategy in use).
  await demo.stopStrategy();
  const c = (b + 3) % categories;
  const offlineStart = await recommended(page);
  for (let k = 0; k < 8; k++) await clickProduct(page, c, k);
  await expect.poll(() => timeline(page, 'error')).not.toHaveLength(0);
  const offline = await recommended(page);
  expect(offline).toHaveLength(10);
  expect(offline.map((x) => x.id)).not.toEqual(offlineStart.map((x) => x.id));
  expect(share(offline, c)).toBeGreaterThan(share(offlineStart, c));
  expect(await page.textContent('#strategy-source')).toMatch(/network|stale/);
});
