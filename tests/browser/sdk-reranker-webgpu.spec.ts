// The Reranker's WebGPU backend (src/gpu/engine.ts behind src/device/backend-webgpu.ts) in
// Chromium (SwiftShader where there is no GPU): same top-k as the CPU backend, fallback to the
// CPU when WebGPU is missing or the device is lost, without losing the strategy.
import { expect, test } from '@playwright/test';
import type { Page } from '@playwright/test';
import { budgetFromResources } from '../../src/device/resources.ts';
import { RerankerTestServers } from './pages/reranker.server.ts';
import { openRerankerPage } from './reranker-page.ts';

let servers: RerankerTestServers;

test.beforeAll(async ({}, info) => {
  servers = await RerankerTestServers.start([new URL(info.project.use.baseURL!).origin]);
});
test.afterAll(async () => servers?.close());

const EAGER_DRIFT = { high: 1e-9, low: 0, confirmClicks: 1, minIntervalClicks: 1 };

function create(page: Page, name: string, extra: Record<string, unknown>) {
  const options = { model: servers.modelUrl, strategyEndpoint: servers.endpoint, budget: null, drift: EAGER_DRIFT, ...extra };
  return page.evaluate(([n, o]) => window.chordReranker.create(n, o as never), [name, options] as const);
}

const observe = (page: Page, name: string, ids: string[]) => page.evaluate(([n, i]) => window.chordReranker.observe(n, i), [name, ids] as const);
async function rerank(page: Page, name: string, candidates: unknown[], k?: number) {
  const r = await page.evaluate(([n, c, kk]) => window.chordReranker.rerank(n, c as never, kk === null ? {} : { k: kk }), [name, candidates, k ?? null] as const);
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.ranked;
}
const waitForStrategies = (page: Page, name: string, count: number) =>
  page.evaluate(([n, c]) => window.chordReranker.waitForStrategies(n, c), [name, count] as const);
const events = (page: Page, name: string) => page.evaluate((n) => window.chordReranker.events(n), name);

/** Same ids in the same order; scores equal up to f32 rounding of a different summation order. */
function expectSameRanking(gpu: { id: string; score: number }[], cpu: { id: string; score: number }[]): void {
  expect(gpu.map((x) => x.id)).toEqual(cpu.map((x) => x.id));
  gpu.forEach((x, i) => expect(Math.abs(x.score - cpu[i]!.score)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(cpu[i]!.score))));
}

test('WebGPU and CPU backends give the same top-k: default strategy, server strategy, after T, with embeddings', async ({ page }) => {
  await openRerankerPage(page);
  const gpu = await create(page, 'gpu', { device: 'webgpu' });
  expect(gpu).toMatchObject({ ok: true, backend: 'webgpu' });
  expect(gpu.ok && gpu.backendName.length).toBeGreaterThan(0);
  expect(await create(page, 'cpu', { device: 'cpu' })).toMatchObject({ ok: true, backend: 'cpu' });
  const a = servers.artifact;
  const candidates = a.items.slice(1);
  const top = async (k = 10) => [await rerank(page, 'gpu', candidates, k), await rerank(page, 'cpu', candidates, k)] as const;

  const [g0, c0] = await top();
  expect(g0).toHaveLength(10);
  expectSameRanking(g0, c0);

  const clicks = a.itemsOfTheme(2).slice(0, 4);
  await observe(page, 'gpu', clicks);
  await observe(page, 'cpu', clicks);
  const [sg, sc] = [await waitForStrategies(page, 'gpu', 2), await waitForStrategies(page, 'cpu', 2)];
  expect(sg).toMatchObject({ source: 'network' });
  expect(sg!.revision).toBe(sc!.revision); // same clicks -> same z -> same strategy
  const [g1, c1] = await top();
  expectSameRanking(g1, c1);
  expect(g1.map((x) => x.id)).not.toEqual(g0.map((x) => x.id));

  for (const budget of [2.5, 2]) {
    await page.evaluate((b) => window.chordReranker.setBudget('gpu', b), budget);
    await page.evaluate((b) => window.chordReranker.setBudget('cpu', b), budget);
    const [g, c] = await top(a.items.length - 1);
    expectSameRanking(g, c);
  }

  const d = a.backbone.get('item_emb')!.shape[1]!;
  const emb = a.backbone.get('item_emb')!.data;
  const own = a.items.slice(1, 26).map((id, i) => ({ id: `own-${id}`, embedding: Array.from(emb.subarray((i + 1) * d, (i + 2) * d), (v, j) => v * (1 + 0.01 * j)) }));
  expectSameRanking(await rerank(page, 'gpu', own, 8), await rerank(page, 'cpu', own, 8));
});

test('device auto without WebGPU: CPU backend and a fallback event; device webgpu rejects', async ({ page }) => {
  await page.addInitScript(() => {
    delete (Navigator.prototype as { gpu?: unknown }).gpu;
  });
  await openRerankerPage(page);
  expect(await page.evaluate(() => 'gpu' in navigator)).toBe(false);
  expect(await create(page, 'webgpu-only', { device: 'webgpu' })).toMatchObject({ ok: false, code: 'WEBGPU_UNAVAILABLE' });
  const auto = await create(page, 'auto', { device: 'auto' });
  expect(auto).toMatchObject({ ok: true, backend: 'cpu', backendName: 'cpu (JavaScript)' });
  expect((await events(page, 'auto')).slice(0, 2)).toEqual([
    { type: 'fallback', reason: 'unavailable', code: 'WEBGPU_UNAVAILABLE', keptRevision: null },
    expect.objectContaining({ type: 'strategy', reason: 'load', source: 'default' }),
  ]);
  expect(await rerank(page, 'auto', servers.artifact.items.slice(1, 6))).toHaveLength(5);
});

test('device lost: falls back to the CPU with the strategy in use, same ranking', async ({ page }) => {
  await openRerankerPage(page);
  expect(await create(page, 'r', { device: 'auto' })).toMatchObject({ ok: true, backend: 'webgpu' });
  const a = servers.artifact;
  await observe(page, 'r', a.itemsOfTheme(1).slice(0, 3));
  const strategy = await waitForStrategies(page, 'r', 2);
  const candidates = a.items.slice(1, 31);
  const onGpu = await rerank(page, 'r', candidates);

  // Lose the device and rerank at once: the call is retried on the CPU.
  const [lost, during] = await page.evaluate(
    ([c]) => Promise.all([window.chordReranker.loseDevices(), window.chordReranker.rerank('r', c)]),
    [candidates] as const,
  );
  expect(lost).toBeGreaterThan(0);
  expect(during.ok && during.ranked.map((x) => x.id)).toEqual(onGpu.map((x) => x.id));
  const fallback = await page.evaluate(() => window.chordReranker.waitForEvent('r', 'fallback'));
  expect(fallback).toMatchObject({ reason: 'device-lost', code: 'GPU_DEVICE_LOST', keptRevision: strategy!.revision });
  const now = await page.evaluate(() => window.chordReranker.summary('r'));
  expect(now).toMatchObject({ backend: 'cpu', strategy: { revision: strategy!.revision, averageBits: strategy!.averageBits } });
  expectSameRanking(onGpu, await rerank(page, 'r', candidates));
  expect((await events(page, 'r')).filter((e) => e.type === 'fallback')).toHaveLength(1);
});

test("budget 'auto': T's budget follows the device's signals (adapter included)", async ({ page }) => {
  await openRerankerPage(page);
  const r = await create(page, 'r', { device: 'auto', budget: 'auto' });
  expect(r).toMatchObject({ ok: true, backend: 'webgpu' });
  if (!r.ok) return;
  expect(r.resources).toMatchObject({ backend: 'webgpu', hardwareConcurrency: expect.any(Number) });
  expect(r.resources!.adapter!.maxStorageBufferBindingSize).toBeGreaterThan(0);
  const { budget } = budgetFromResources(r.resources!);
  expect(r.strategy!.budget).toBe(budget);
  expect(r.strategy!.averageBits).toBeLessThanOrEqual(budget ?? 4);
  const fixed = await page.evaluate(() => window.chordReranker.setBudget('r', 3));
  expect(fixed).toMatchObject({ budget: 3, averageBits: 3 });
});
