// The public Reranker in Chromium on the CPU backend, against the real strategy server (src/cloud)
// over the demo artifact (tests/fixtures/demo-artifact.ts).
import { expect, test } from '@playwright/test';
import type { Page } from '@playwright/test';
import { dequantizeItemTable, quantizeItemTable } from '../../src/core/item-table.ts';
import { RerankerTestServers } from './pages/reranker.server.ts';
import { openRerankerPage } from './reranker-page.ts';

let servers: RerankerTestServers;

test.beforeAll(async ({}, info) => {
  servers = await RerankerTestServers.start([new URL(info.project.use.baseURL!).origin]);
});
test.afterAll(async () => servers?.close());
test.beforeEach(async () => servers.startStrategy()); // a test may have taken it offline

function create(page: Page, extra: Record<string, unknown> = {}, name = 'r') {
  const options = { model: servers.modelUrl, strategyEndpoint: servers.endpoint, device: 'cpu', budget: null, ...extra };
  return page.evaluate(([n, o]) => window.chordReranker.create(n, o as never), [name, options] as const);
}

const observe = (page: Page, ids: string[], name = 'r') => page.evaluate(([n, i]) => window.chordReranker.observe(n, i), [name, ids] as const);
const rerank = (page: Page, candidates: unknown[], options: Record<string, unknown> = {}, name = 'r') =>
  page.evaluate(([n, c, o]) => window.chordReranker.rerank(n, c as never, o), [name, candidates, options] as const);
const events = (page: Page, name = 'r') => page.evaluate((n) => window.chordReranker.events(n), name);
const waitForStrategies = (page: Page, count: number, name = 'r') =>
  page.evaluate(([n, c]) => window.chordReranker.waitForStrategies(n, c), [name, count] as const);

/** Drift on every click once a strategy is in use: each click that is not held by a pending request asks. */
const EAGER_DRIFT = { high: 1e-9, low: 0, confirmClicks: 1, minIntervalClicks: 1 };

test('load -> default strategy; rerank returns every candidate, sorted by score, deterministic; unknown ids', async ({ page }) => {
  await openRerankerPage(page);
  const created = await create(page, { drift: { warmupClicks: 1000 } });
  expect(created).toMatchObject({ ok: true, backend: 'cpu', modelId: servers.modelId });
  expect(created.ok && created.strategy).toMatchObject({ source: 'default', stale: false, averageBits: 4, budget: null, revision: null });
  const a = servers.artifact;
  expect(created.ok && created.strategy!.channels).toBe(a.manifest.layers.reduce((s, l) => s + l.outChannels, 0));
  expect(created.ok && created.strategy!.weightBytes).toBe(a.manifest.layers.reduce((s, l) => s + l.outChannels * l.rowLength, 0) * 4);

  await observe(page, a.itemsOfTheme(1).slice(0, 3));
  const candidates = a.items.slice(1, 41);
  const first = await rerank(page, candidates);
  expect(first.ok).toBe(true);
  const ranked = first.ok ? first.ranked : [];
  expect(ranked.map((x) => x.id).sort()).toEqual([...candidates].sort());
  for (let i = 1; i < ranked.length; i++) expect(ranked[i - 1]!.score).toBeGreaterThanOrEqual(ranked[i]!.score);
  expect(new Set(ranked.map((x) => x.score)).size).toBeGreaterThan(30); // real scores, not a constant
  expect(await rerank(page, candidates)).toEqual(first);
  expect(await rerank(page, candidates, { k: 7 })).toEqual({ ok: true, ranked: ranked.slice(0, 7) });

  // Unknown ids: a typed error listing them, or left out on request.
  const unknown = await rerank(page, ['sku-1', 'nope-1', 'sku-2', 'nope-2']);
  expect(unknown).toMatchObject({ ok: false, code: 'RERANK_UNKNOWN_ITEM' });
  expect(!unknown.ok && unknown.message).toContain('"nope-1", "nope-2"');
  const skipped = await rerank(page, ['sku-1', 'nope-1', 'sku-2'], { unknownItems: 'skip' });
  expect(skipped.ok && skipped.ranked.map((x) => x.id).sort()).toEqual(['sku-1', 'sku-2']);
  expect(await rerank(page, ['sku-1', { id: 'x', embedding: [1] }])).toMatchObject({ ok: false, code: 'RERANK_BAD_INPUT' });
  expect((await observe(page, ['not-in-catalogue']))[0]).toMatchObject({ accepted: false, requested: false });

  // The shop's own candidate embeddings: scored against the same user representation. The page's
  // item table is 8-bit: these are the values it stands for.
  const d = a.backbone.get('item_emb')!.shape[1]!;
  const emb = dequantizeItemTable(quantizeItemTable(a.backbone.get('item_emb')!.data, a.items.length, d));
  const asEmbeddings = candidates.map((id) => {
    const i = a.items.indexOf(id);
    return { id: `own-${id}`, embedding: Array.from(emb.subarray(i * d, (i + 1) * d)) };
  });
  const own = await rerank(page, asEmbeddings);
  expect(own.ok && own.ranked).toEqual(ranked.map((x) => ({ id: `own-${x.id}`, score: x.score })));

  expect((await events(page)).map((e) => `${e.type}:${e.reason}`)).toEqual(['strategy:load']);
});

test('one drift -> exactly one strategy request; setBudget re-applies T locally', async ({ page }) => {
  await openRerankerPage(page);
  await create(page, { drift: EAGER_DRIFT });
  const posts = () => servers.strategyPosts.length;
  const before = posts();
  const a = servers.artifact;
  const candidates = a.items.slice(1, 31);

  // Five clicks at once: the first asks, the other four wait for its answer.
  const clicks = await observe(page, a.itemsOfTheme(0).slice(0, 5));
  expect(clicks.map((c) => c.requested)).toEqual([true, false, false, false, false]);
  const s1 = await waitForStrategies(page, 2);
  expect(s1).toMatchObject({ source: 'network', stale: false, budget: null, levelTable: [2, 4, 6, 8] });
  expect(s1!.revision).toMatch(/^[0-9a-f]{16}$/);
  expect(s1!.averageBits).toBeGreaterThan(2);
  expect(s1!.averageBits).toBeLessThan(8);
  expect(s1!.bytes).toBeGreaterThan(59);
  expect(posts() - before).toBe(1);
  const withS1 = await rerank(page, candidates);

  // A new theme: again one drift, one request.
  const more = await observe(page, a.itemsOfTheme(2).slice(0, 5));
  expect(more.filter((c) => c.requested)).toHaveLength(1);
  const s2 = await waitForStrategies(page, 3);
  expect(posts() - before).toBe(2);
  expect(s2!.revision).not.toBe(s1!.revision);
  expect((await events(page)).map((e) => `${e.type}:${e.reason}`)).toEqual([
    'strategy:load',
    'drift:initial',
    'strategy:initial',
    'drift:drift',
    'strategy:drift',
  ]);
  expect(await rerank(page, candidates)).not.toEqual(withS1); // history and strategy moved

  // T locally: no request, monotone, reversible.
  const low = await page.evaluate(() => window.chordReranker.setBudget('r', 2.5));
  expect(low).toMatchObject({ budget: 2.5, revision: s2!.revision, receivedAverageBits: s2!.averageBits });
  expect(low.averageBits).toBeLessThanOrEqual(2.5);
  const lower = await page.evaluate(() => window.chordReranker.setBudget('r', 2));
  expect(lower.averageBits).toBeLessThanOrEqual(2);
  const back = await page.evaluate(() => window.chordReranker.setBudget('r', null));
  expect(back.averageBits).toBe(s2!.averageBits);
  expect(posts() - before).toBe(2);
});

test('offline: reranks go on with the last strategy, and a reload restores it from the cache', async ({ page }) => {
  await openRerankerPage(page);
  await create(page, { drift: EAGER_DRIFT, strategyPolicy: { timeoutMs: 2000, backoffBaseMs: 100, backoffMaxMs: 200 } });
  const a = servers.artifact;
  const candidates = a.items.slice(1, 21);
  await observe(page, a.itemsOfTheme(0).slice(0, 2));
  const good = await waitForStrategies(page, 2);
  expect(good).toMatchObject({ source: 'network' });

  await servers.stopStrategy();
  const before = await rerank(page, candidates);
  await observe(page, a.itemsOfTheme(3).slice(0, 2));
  const failed = await page.evaluate(() => window.chordReranker.waitForEvent('r', 'error'));
  // The page's cache answered with the last good strategy, which is already in use.
  expect(failed).toMatchObject({ type: 'error', reason: 'last-good', code: 'STRATEGY_OFFLINE' });
  const after = await rerank(page, candidates);
  expect(after.ok && after.ranked).toHaveLength(20);
  expect(after).not.toEqual(before); // the new clicks count, with the old strategy
  expect((await page.evaluate(() => window.chordReranker.summary('r'))).strategy).toMatchObject({ revision: good!.revision, source: 'network' });

  // Reload with the strategy server still down: the last good strategy comes back from Cache Storage.
  await openRerankerPage(page);
  const again = await create(page, { drift: EAGER_DRIFT });
  expect(again.ok && again.strategy).toMatchObject({ source: 'cache', stale: true, revision: good!.revision });
  const reranked = await rerank(page, candidates);
  expect(reranked.ok && reranked.ranked).toHaveLength(20);
});

test('reload: trained tensors come from IndexedDB, not the network', async ({ page }) => {
  await openRerankerPage(page);
  const gets = (file: string) => servers.fileLog.filter((r) => r.path.endsWith(`/${file}`)).length;
  const bin0 = gets('backbone.bin');
  await create(page);
  const firstStages = await page.evaluate(() => window.chordReranker.progress('r'));
  expect(gets('backbone.bin')).toBe(bin0 + 1);
  expect(firstStages.map((p) => p.stage)).toEqual(expect.arrayContaining(['download', 'verify', 'store-write', 'frozen', 'backend', 'strategy', 'ready']));
  expect(firstStages.filter((p) => p.stage === 'store-read')).toEqual([]);
  const ranked = await rerank(page, servers.artifact.items.slice(1, 11));

  await openRerankerPage(page);
  await create(page);
  const secondStages = await page.evaluate(() => window.chordReranker.progress('r'));
  expect(gets('backbone.bin')).toBe(bin0 + 1);
  expect(gets('gru.bin')).toBe(bin0 + 1);
  const reads = secondStages.filter((p) => p.stage === 'store-read').map((p) => p.item);
  expect(reads.map((r) => r.split('/').at(-1)).sort()).toEqual(['backbone', 'gru']);
  for (const r of reads) expect(r).toMatch(new RegExp(`^${servers.modelId}@[0-9a-f]{16}/(backbone|gru)$`));
  expect(secondStages.filter((p) => p.stage === 'download').map((p) => p.item).filter((i) => i.endsWith('.bin'))).toEqual([]);
  expect(secondStages.at(-1)).toMatchObject({ stage: 'ready' });
  expect(await rerank(page, servers.artifact.items.slice(1, 11))).toEqual(ranked);
});

test('dispose: later calls fail with RERANKER_DISPOSED', async ({ page }) => {
  await openRerankerPage(page);
  await create(page);
  expect(await page.evaluate(() => window.chordReranker.dispose('r'))).toEqual({
    disposed: true,
    codes: ['RERANKER_DISPOSED', 'RERANKER_DISPOSED', 'RERANKER_DISPOSED'],
  });
});

test('bad artifacts and options fail createReranker with named errors', async ({ page }) => {
  await openRerankerPage(page);
  expect(await create(page, { model: `${servers.modelUrl}-missing` })).toMatchObject({ ok: false, code: 'ARTIFACT_HTTP' });
  expect(await create(page, { budget: -1 })).toMatchObject({ ok: false, code: 'RERANK_BAD_INPUT' });
  expect(await create(page, { device: 'tpu' })).toMatchObject({ ok: false, code: 'RERANK_BAD_INPUT' });
});

test('serviceWorker: true -> the strategy service worker makes the one request of a drift', async ({ page, context }) => {
  const fromWorker: string[] = [];
  context.on('request', (r) => {
    if (r.serviceWorker() && r.method() === 'POST') fromWorker.push(r.url());
  });
  await openRerankerPage(page);
  await create(page, { serviceWorker: true, drift: EAGER_DRIFT });
  const before = servers.strategyPosts.length;
  const clicks = await observe(page, servers.artifact.itemsOfTheme(1).slice(0, 3));
  expect(clicks.map((c) => c.requested)).toEqual([true, false, false]);
  expect(await waitForStrategies(page, 2)).toMatchObject({ source: 'network', stale: false });
  expect(servers.strategyPosts.length - before).toBe(1);
  expect(fromWorker).toEqual([`${servers.endpoint}/v1/models/${servers.modelId}/strategy`]);
});
