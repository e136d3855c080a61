// A model whose hypernet uses the off level (levels 0/3/4/5, β 0.375: chord-gate) served end to end:
// the real strategy server sends strategies with channels switched off, the page decodes them
// (bitstream v1), and the WebGPU backend ranks exactly as the CPU backend, which is core's quantizer
// and forward (src/core) in the page: as sent, and after T has switched more channels off.
import { expect, test } from '@playwright/test';
import type { Page } from '@playwright/test';
import { RerankerTestServers } from './pages/reranker.server.ts';

const PAGE = '/tests/browser/pages/reranker.html';
let servers: RerankerTestServers;

test.beforeAll(async ({}, info) => {
  servers = await RerankerTestServers.start([new URL(info.project.use.baseURL!).origin], {
    modelId: 'sasrec-gate',
    levelTable: [0, 3, 4, 5],
    beta: 0.375,
  });
});
test.afterAll(async () => servers?.close());

const EAGER_DRIFT = { high: 1e-9, low: 0, confirmClicks: 1, minIntervalClicks: 1 };

function create(page: Page, name: string, device: 'webgpu' | 'cpu') {
  const options = { model: servers.modelUrl, strategyEndpoint: servers.endpoint, budget: null, drift: EAGER_DRIFT, device };
  return page.evaluate(([n, o]) => window.chordReranker.create(n, o as never), [name, options] as const);
}

async function rerank(page: Page, name: string, candidates: string[], k: number) {
  const r = await page.evaluate(([n, c, kk]) => window.chordReranker.rerank(n, c, { k: kk }), [name, candidates, k] as const);
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.ranked;
}

async function recommend(page: Page, name: string, k: number) {
  const r = await page.evaluate(([n, kk]) => window.chordReranker.recommend(n, { k: kk }), [name, k] as const);
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.ranked;
}

/** Same ids in the same order; scores equal up to f32 rounding of a different summation order. */
function expectSameRanking(gpu: { id: string; score: number }[], cpu: { id: string; score: number }[]): void {
  expect(gpu.map((x) => x.id)).toEqual(cpu.map((x) => x.id));
  gpu.forEach((x, i) => expect(Math.abs(x.score - cpu[i]!.score)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(cpu[i]!.score))));
}

test('off level (levels 0/3/4/5): served strategies switch channels off; WebGPU ranks as the CPU (core) path, as sent and after T', async ({ page }) => {
  await page.goto(PAGE);
  await page.waitForSelector('body[data-ready="1"]');
  expect(await create(page, 'gpu', 'webgpu')).toMatchObject({ ok: true, backend: 'webgpu' });
  expect(await create(page, 'cpu', 'cpu')).toMatchObject({ ok: true, backend: 'cpu' });
  const a = servers.artifact;
  const candidates = a.items.slice(1);
  const n = candidates.length;

  const clicks = a.itemsOfTheme(1).slice(0, 4);
  for (const name of ['gpu', 'cpu']) await page.evaluate(([r, ids]) => window.chordReranker.observe(r, ids), [name, clicks] as const);
  const sg = await page.evaluate(() => window.chordReranker.waitForStrategies('gpu', 2));
  const sc = await page.evaluate(() => window.chordReranker.waitForStrategies('cpu', 2));
  expect(sg).toMatchObject({ source: 'network', levelTable: [0, 3, 4, 5] });
  expect(sg!.revision).toBe(sc!.revision);
  const [off, ...on] = sg!.channelsPerLevel;
  expect(off).toBeGreaterThan(0);
  expect(on.reduce((s, c) => s + c, 0)).toBeGreaterThan(0);
  console.log(`channels per level (off/3/4/5): ${sg!.channelsPerLevel.join('/')}, ${sg!.averageBits.toFixed(3)} bits`);

  expectSameRanking(await rerank(page, 'gpu', candidates, n), await rerank(page, 'cpu', candidates, n));
  expectSameRanking(await recommend(page, 'gpu', 20), await recommend(page, 'cpu', 20));

  // Below the lowest on-level (3 bits) T can only meet the budget by switching channels off.
  for (const budget of [2, 1]) {
    const [tg, tc] = [
      await page.evaluate((b) => window.chordReranker.setBudget('gpu', b), budget),
      await page.evaluate((b) => window.chordReranker.setBudget('cpu', b), budget),
    ];
    expect(tg.averageBits).toBeLessThanOrEqual(budget);
    expect(tg.channelsPerLevel).toEqual(tc.channelsPerLevel);
    expect(tg.channelsPerLevel[0]).toBeGreaterThan(off!);
    expectSameRanking(await rerank(page, 'gpu', candidates, n), await rerank(page, 'cpu', candidates, n));
  }
});
