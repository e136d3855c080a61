// A frozen-pretrained artifact in the page: its backbone tensors ship the layer weights and the
// manifest pins them (`frozenWeights: 'shipped'`). Both backends must rank with those weights (the
// CPU reference computed here in Node with them, not with the manifest seed's), strategies from the
// real server apply, and a damaged shipped tensor — from the network or in IndexedDB — never runs.
import { expect, test } from '@playwright/test';
import type { Page } from '@playwright/test';
import { createForward, scoreCandidates, topK } from '../../src/core/forward/index.ts';
import { generateFrozenWeights, shippedFrozenWeights } from '../../src/core/frozen.ts';
import type { FrozenLayer } from '../../src/core/frozen.ts';
import { dequantizeItemTable, quantizeItemTable } from '../../src/core/item-table.ts';
import { encodeTensorFile } from '../../src/core/tensor-file.ts';
import type { TensorMap } from '../../src/core/tensor-file.ts';
import { quantizedLayerWeights } from '../../src/device/backend-cpu.ts';
import { defaultStrategy } from '../../src/device/strategy-state.ts';
import { RerankerTestServers } from './pages/reranker.server.ts';
import { openRerankerPage } from './reranker-page.ts';

const SHIP_SEED = 2024;
let servers: RerankerTestServers;

test.beforeAll(async ({}, info) => {
  // The real strategy server loads the artifact at start: its validation must accept it.
  servers = await RerankerTestServers.start([new URL(info.project.use.baseURL!).origin], {
    modelId: 'sasrec-demo-pretrained',
    shippedWeightsSeed: SHIP_SEED,
  });
});
test.afterAll(async () => servers?.close());

const QUIET = { warmupClicks: 1000 }; // no strategy request: the default strategy stays in use
const EAGER = { high: 1e-9, low: 0, confirmClicks: 1, minIntervalClicks: 1 };

function create(page: Page, name: string, extra: Record<string, unknown>) {
  const options = { model: servers.modelUrl, strategyEndpoint: servers.endpoint, budget: null, ...extra };
  return page.evaluate(([n, o]) => window.chordReranker.create(n, o as never), [name, options] as const);
}
const observe = (page: Page, name: string, ids: string[]) => page.evaluate(([n, i]) => window.chordReranker.observe(n, i), [name, ids] as const);
async function rerank(page: Page, name: string, candidates: string[], k: number) {
  const r = await page.evaluate(([n, c, kk]) => window.chordReranker.rerank(n, c, { k: kk }), [name, candidates, k] as const);
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.ranked;
}

/** The backbone as the page uses it: item_emb holds the values of its 8-bit table (core/item-table.ts). */
function pageBackbone(): TensorMap {
  const a = servers.artifact;
  const emb = a.backbone.get('item_emb')!;
  const [rows, dim] = emb.shape as [number, number];
  return new Map(a.backbone).set('item_emb', { shape: emb.shape, data: dequantizeItemTable(quantizeItemTable(emb.data, rows, dim)) });
}

/** Top-k of core's CPU forward with `frozen` quantized to the default strategy (what a fresh page uses). */
function reference(frozen: readonly FrozenLayer[], history: string[], candidates: string[], k: number) {
  const a = servers.artifact;
  const m = a.manifest;
  const fwd = createForward(m, pageBackbone(), quantizedLayerWeights(frozen, defaultStrategy(m).strategy));
  const rep = fwd.represent(history.map((id) => a.items.indexOf(id)));
  const scores = scoreCandidates(rep, fwd.scoring, candidates.map((id) => a.items.indexOf(id)));
  return Array.from(topK(scores, k), (i) => ({ id: candidates[i]!, score: scores[i]! }));
}

function expectRanking(got: { id: string; score: number }[], want: { id: string; score: number }[], tol: number): void {
  expect(got.map((x) => x.id)).toEqual(want.map((x) => x.id));
  got.forEach((x, i) => expect(Math.abs(x.score - want[i]!.score)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want[i]!.score))));
}

test('both backends rank with the shipped weights, not the seed weights', async ({ page }) => {
  const a = servers.artifact;
  expect(a.manifest.frozenWeights).toBe('shipped');
  const shipped = shippedFrozenWeights(a.manifest.layers, a.backbone)!;
  const seed = generateFrozenWeights(a.manifest);
  const history = a.itemsOfTheme(1).slice(0, 4);
  const candidates = a.items.slice(1);
  const want = reference(shipped, history, candidates, 10);
  const seedRanking = reference(seed, history, candidates, 10);
  // Otherwise the test could not tell which weights the page used.
  expect(seedRanking.map((x) => x.id)).not.toEqual(want.map((x) => x.id));

  await openRerankerPage(page);
  expect(await create(page, 'gpu', { device: 'webgpu', drift: QUIET, persist: false })).toMatchObject({ ok: true, backend: 'webgpu' });
  expect(await create(page, 'cpu', { device: 'cpu', drift: QUIET, persist: false })).toMatchObject({ ok: true, backend: 'cpu' });
  for (const name of ['gpu', 'cpu']) {
    await observe(page, name, history);
    const strategy = await page.evaluate((n) => window.chordReranker.summary(n).strategy, name);
    expect(strategy).toMatchObject({ source: 'default' });
  }
  expectRanking(await rerank(page, 'cpu', candidates, 10), want, 1e-5);
  expectRanking(await rerank(page, 'gpu', candidates, 10), want, 1e-4);
});

test('a strategy from the strategy server applies to the shipped weights on both backends alike', async ({ page }) => {
  const a = servers.artifact;
  await openRerankerPage(page);
  expect(await create(page, 'gpu', { device: 'webgpu', drift: EAGER, persist: false })).toMatchObject({ ok: true, backend: 'webgpu' });
  expect(await create(page, 'cpu', { device: 'cpu', drift: EAGER, persist: false })).toMatchObject({ ok: true, backend: 'cpu' });
  const clicks = a.itemsOfTheme(2).slice(0, 4);
  const strategies = [];
  for (const name of ['gpu', 'cpu']) {
    await observe(page, name, clicks);
    // The bitstream names the manifest's hash (that of the shipped weights); the page accepts it.
    strategies.push(await page.evaluate(([n]) => window.chordReranker.waitForStrategies(n, 2), [name] as const));
  }
  expect(strategies[0]).toMatchObject({ source: 'network' });
  expect(strategies[0]!.revision).toBe(strategies[1]!.revision);
  const candidates = a.items.slice(1);
  expectRanking(await rerank(page, 'gpu', candidates, 10), await rerank(page, 'cpu', candidates, 10), 1e-4);
  const errors = await page.evaluate(() => [...window.chordReranker.events('gpu'), ...window.chordReranker.events('cpu')].filter((e) => e.type === 'error'));
  expect(errors).toEqual([]);
});

/** Byte offset of a tensor in backbone.bin. */
function offsetOf(tensor: string): number {
  return encodeTensorFile(servers.artifact.backbone).index.tensors.find((t) => t.name === tensor)!.offset;
}

/** Offset in the stored backbone record, which keeps every tensor but item_emb (in its own store, 8-bit). */
function storedOffsetOf(tensor: string): number {
  const body = new Map(servers.artifact.backbone);
  body.delete('item_emb');
  return encodeTensorFile(body).index.tensors.find((t) => t.name === tensor)!.offset;
}

test('a shipped tensor damaged on the way is refused with FROZEN_HASH_MISMATCH and never stored', async ({ page }) => {
  const at = offsetOf('block1.ffn.in') + 4 * 17;
  await page.route('**/backbone.bin', async (route) => {
    const response = await route.fetch();
    const body = Buffer.from(await response.body());
    body[at] = body[at]! ^ 0x01; // lowest mantissa bit: a tiny change the hash still catches
    await route.fulfill({ response, body });
  });
  await openRerankerPage(page);
  for (const device of ['cpu', 'webgpu']) {
    const r = await create(page, `bad-${device}`, { device, drift: QUIET });
    expect(r).toMatchObject({ ok: false, code: 'FROZEN_HASH_MISMATCH' });
    expect(!r.ok && r.message).toMatch(/shipped frozen weights hash to/);
  }
  await page.unroute('**/backbone.bin');
  const before = servers.fileLog.filter((r) => r.path.endsWith('/backbone.bin')).length;
  expect(await create(page, 'good', { device: 'cpu', drift: QUIET })).toMatchObject({ ok: true });
  // Nothing was stored from the damaged downloads: this load went to the network.
  expect(servers.fileLog.filter((r) => r.path.endsWith('/backbone.bin')).length).toBe(before + 1);
});

test('a shipped tensor damaged in IndexedDB (its record hash rewritten to match) is replaced by a download', async ({ page }) => {
  const a = servers.artifact;
  await openRerankerPage(page);
  const history = a.itemsOfTheme(3).slice(0, 3);
  const candidates = a.items.slice(1);
  expect(await create(page, 'first', { device: 'cpu', drift: QUIET })).toMatchObject({ ok: true });
  await observe(page, 'first', history);
  const ranked = await rerank(page, 'first', candidates, 10);
  expectRanking(ranked, reference(shippedFrozenWeights(a.manifest.layers, a.backbone)!, history, candidates, 10), 1e-5);

  // Change one weight of the stored backbone and rewrite the record's own SHA-256, as a bug or a
  // tampering script could: the store's check passes, only the manifest's hash can catch it.
  const tampered = await page.evaluate(async (offset) => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open('chord-rerank');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const done = <T,>(req: IDBRequest<T>) => new Promise<T>((resolve, reject) => ((req.onsuccess = () => resolve(req.result)), (req.onerror = () => reject(req.error))));
    const records = (await done(db.transaction('artifacts').objectStore('artifacts').getAll())) as { name: string; bin: ArrayBuffer; sha256: string }[];
    const rec = records.find((r) => r.name === 'backbone')!;
    const view = new DataView(rec.bin);
    view.setFloat32(offset, view.getFloat32(offset, true) + 0.5, true);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', rec.bin));
    rec.sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
    await done(db.transaction('artifacts', 'readwrite').objectStore('artifacts').put(rec));
    db.close();
    return records.length;
  }, storedOffsetOf('block0.attn.q'));
  expect(tampered).toBe(2); // backbone and gru

  const before = servers.fileLog.filter((r) => r.path.endsWith('/backbone.bin')).length;
  expect(await create(page, 'second', { device: 'cpu', drift: QUIET })).toMatchObject({ ok: true });
  expect(servers.fileLog.filter((r) => r.path.endsWith('/backbone.bin')).length).toBe(before + 1);
  await observe(page, 'second', history);
  expect(await rerank(page, 'second', candidates, 10)).toEqual(ranked);

  // The download replaced the damaged copy: the next load is served by the store.
  expect(await create(page, 'third', { device: 'cpu', drift: QUIET })).toMatchObject({ ok: true });
  expect(servers.fileLog.filter((r) => r.path.endsWith('/backbone.bin')).length).toBe(before + 1);
});
