// The page at a larger catalogue (3,000 items; the bench runs 18,357): the 8-bit item table stored
// in IndexedDB and checked on every load (a corrupted or truncated copy is dropped with a typed
// error and downloaded again, rankings unchanged), recommend() over the whole catalogue and a
// 1,000-candidate rerank, identical on WebGPU and on the CPU.
import { expect, test } from '@playwright/test';
import type { Page } from '@playwright/test';
import { RerankerTestServers } from './pages/reranker.server.ts';
import { createWithHistory, openRerankerPage, rankedBy } from './reranker-page.ts';

const NUM_ITEMS = 3000;
let servers: RerankerTestServers;

test.beforeAll(async ({}, info) => {
  servers = await RerankerTestServers.start([new URL(info.project.use.baseURL!).origin], { numItems: NUM_ITEMS, modelId: 'sasrec-shop-3k' });
});
test.afterAll(async () => servers?.close());

const memory = (page: Page, name: string) => page.evaluate((n) => window.chordReranker.memory(n), name);
const backboneDownloads = () => servers.fileLog.filter((r) => r.path.endsWith('/backbone.bin')).length;

/** 16-wide demo model: 16 code bytes per row + one f16 scale per row, padded to whole words. */
const TABLE_BYTES = (NUM_ITEMS + 1) * 16 + Math.ceil((NUM_ITEMS + 1) / 2) * 4;

test('8-bit item table: stored, reloaded, and after corruption or truncation dropped (typed error) and downloaded again', async ({ page }) => {
  await openRerankerPage(page);
  const clicks = servers.artifact.itemsOfTheme(1).slice(0, 6);
  const candidates = servers.artifact.items.slice(1, 501);
  const session = async (name: string) => {
    expect(await createWithHistory(page, servers, name, 'cpu', clicks)).toMatchObject({ ok: true });
    const result = {
      memory: await memory(page, name),
      top: await rankedBy(page, name, 'recommend', 20),
      reranked: await rankedBy(page, name, 'rerank', candidates),
    };
    await page.evaluate((n) => window.chordReranker.dispose(n), name);
    return result;
  };

  const downloads0 = backboneDownloads();
  const first = await session('first');
  expect(first.memory.itemTable).toEqual({
    rows: NUM_ITEMS + 1,
    dim: 16,
    bits: 8,
    bytes: TABLE_BYTES,
    fp32Bytes: (NUM_ITEMS + 1) * 16 * 4,
    source: 'network',
    shippedBits: 32,
    dropped: null,
  });
  expect(first.memory.gpu).toBeNull();
  expect(backboneDownloads()).toBe(downloads0 + 1);

  await page.reload();
  const second = await session('second');
  expect(second.memory.itemTable).toMatchObject({ source: 'store', dropped: null, bytes: TABLE_BYTES });
  expect(backboneDownloads()).toBe(downloads0 + 1);
  expect(second.top).toEqual(first.top);
  expect(second.reranked).toEqual(first.reranked);

  for (const [how, code] of [
    ['flip-byte', 'STORE_CORRUPT'],
    ['truncate', 'STORE_TRUNCATED'],
  ] as const) {
    expect(await page.evaluate((h) => window.chordReranker.corruptItemTables(h), how)).toBe(1);
    await page.reload();
    const before = backboneDownloads();
    const repaired = await session(`after-${how}`);
    expect(repaired.memory.itemTable, how).toMatchObject({ source: 'network', dropped: code, bytes: TABLE_BYTES });
    expect(backboneDownloads()).toBe(before + 1);
    // Nothing lost: the re-quantized table ranks exactly as before.
    expect(repaired.top).toEqual(first.top);
    expect(repaired.reranked).toEqual(first.reranked);
    await page.reload();
    const again = await session(`again-${how}`);
    expect(again.memory.itemTable).toMatchObject({ source: 'store', dropped: null });
    expect(backboneDownloads()).toBe(before + 1);
  }
});

test('recommend over the whole catalogue and a 1,000-candidate rerank: WebGPU equals the CPU; GPU memory report', async ({ page }) => {
  await openRerankerPage(page);
  const clicks = servers.artifact.itemsOfTheme(3).slice(0, 8);
  expect(await createWithHistory(page, servers, 'gpu', 'webgpu', clicks)).toMatchObject({ ok: true, backend: 'webgpu' });
  expect(await createWithHistory(page, servers, 'cpu', 'cpu', clicks)).toMatchObject({ ok: true, backend: 'cpu' });
  const same = (a: { id: string; score: number }[], b: { id: string; score: number }[]) => {
    expect(a.map((x) => x.id)).toEqual(b.map((x) => x.id));
    a.forEach((x, i) => expect(Math.abs(x.score - b[i]!.score)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(b[i]!.score))));
  };
  for (const k of [1, 10, 100]) {
    const g = await rankedBy(page, 'gpu', 'recommend', k);
    expect(g).toHaveLength(k);
    same(g, await rankedBy(page, 'cpu', 'recommend', k));
  }
  // Candidates spread over the catalogue, shuffled: the whole list comes back, ranked alike.
  const ids = servers.artifact.items.slice(1);
  const candidates = Array.from({ length: 1000 }, (_, i) => ids[(i * 1777) % NUM_ITEMS]!);
  const g = await rankedBy(page, 'gpu', 'rerank', candidates);
  expect(g).toHaveLength(1000);
  same(g, await rankedBy(page, 'cpu', 'rerank', candidates));

  const m = await memory(page, 'gpu');
  expect(m.gpu!.itemTable).toBe(TABLE_BYTES);
  expect(m.gpu!.quantizedLayers).toBeGreaterThan(0);
  const tooMany = await page.evaluate(() => window.chordReranker.recommend('gpu', { k: 5000 }));
  expect(tooMany).toMatchObject({ ok: false, code: 'RERANK_BAD_INPUT' });
});
