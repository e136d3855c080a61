// A model folder that ships its item table already in the page's 8-bit layout (item_emb.q8,
// manifest version 2, written by the real export: src/model/export.ts) against the same model in
// the float32 layout (item_emb in backbone.bin, version 1, which the page quantizes itself): the
// same rankings on WebGPU and on the CPU, the download smaller by exactly the float32 table less
// the 8-bit one, the old layout still loading, and a damaged item_emb.q8 failing the load with a
// typed error while the store keeps everything it held.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import type { Page } from '@playwright/test';
import { RerankerTestServers } from './pages/reranker.server.ts';
import { createWithHistory, openRerankerPage, rankedBy } from './reranker-page.ts';

const NUM_ITEMS = 3000;
const MODEL_ID = 'sasrec-shop-q8';
/** The demo fixture's width (hidden 16): 16 code bytes a row + one f16 scale a row, padded to whole words. */
const DIM = 16;
const ROWS = NUM_ITEMS + 1;
const TABLE_BYTES = ROWS * DIM + Math.ceil(ROWS / 2) * 4;
const FP32_TABLE_BYTES = ROWS * DIM * 4;

/** The same model (same modelId, seed and tensors) in both layouts, each on its own file server. */
let fp32: RerankerTestServers;
let q8: RerankerTestServers;

test.beforeAll(async ({}, info) => {
  const origins = [new URL(info.project.use.baseURL!).origin];
  fp32 = await RerankerTestServers.start(origins, { numItems: NUM_ITEMS, modelId: MODEL_ID });
  q8 = await RerankerTestServers.start(origins, { numItems: NUM_ITEMS, modelId: MODEL_ID, itemTable: 'q8' });
});
test.afterAll(async () => {
  await fp32?.close();
  await q8?.close();
});

/** One reranker's load, rankings and memory report, then disposed. */
async function session(page: Page, servers: RerankerTestServers, name: string, device: 'webgpu' | 'cpu') {
  const clicks = servers.artifact.itemsOfTheme(1).slice(0, 6);
  const candidates = servers.artifact.items.slice(1, 501);
  expect(await createWithHistory(page, servers, name, device, clicks)).toMatchObject({ ok: true, backend: device });
  const result = {
    memory: await page.evaluate((n) => window.chordReranker.memory(n), name),
    top: await rankedBy(page, name, 'recommend', 20),
    reranked: await rankedBy(page, name, 'rerank', candidates),
  };
  await page.evaluate((n) => window.chordReranker.dispose(n), name);
  return result;
}

/** Bytes the page downloaded from a model server since log index `from`, by file name. */
function downloaded(servers: RerankerTestServers, from: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of servers.fileLog.slice(from)) {
    const file = r.path.split('/').pop()!;
    out[file] = (out[file] ?? 0) + (r.bytes ?? 0);
  }
  return out;
}

const total = (files: Record<string, number>) => Object.values(files).reduce((a, b) => a + b, 0);

test('item_emb.q8 ranks exactly like the float32 layout on the CPU and on WebGPU, and downloads the 8-bit table instead of the float32 one', async ({ page }) => {
  await openRerankerPage(page);
  expect(q8.artifact.manifest).toMatchObject({ version: 2, itemTable: { file: 'item_emb.q8', byteLength: TABLE_BYTES } });
  expect(fp32.artifact.manifest.version).toBe(1);

  const fp32Log = fp32.fileLog.length;
  const fp32Cpu = await session(page, fp32, 'fp32-cpu', 'cpu');
  const fp32Files = downloaded(fp32, fp32Log);
  const fp32Gpu = await session(page, fp32, 'fp32-gpu', 'webgpu'); // from the store
  const q8Log = q8.fileLog.length;
  const q8Cpu = await session(page, q8, 'q8-cpu', 'cpu');
  const q8Files = downloaded(q8, q8Log);
  const q8Again = q8.fileLog.length;
  const q8Gpu = await session(page, q8, 'q8-gpu', 'webgpu'); // from the store
  // manifest.json and items.json are fetched on every load; the rest came from IndexedDB.
  expect(Object.keys(downloaded(q8, q8Again)).sort()).toEqual(['items.json', 'manifest.json']);

  const table = { rows: ROWS, dim: DIM, bits: 8, bytes: TABLE_BYTES, fp32Bytes: FP32_TABLE_BYTES, dropped: null };
  expect(fp32Cpu.memory.itemTable).toEqual({ ...table, source: 'network', shippedBits: 32 });
  expect(fp32Gpu.memory.itemTable).toEqual({ ...table, source: 'store', shippedBits: 32 });
  expect(q8Cpu.memory.itemTable).toEqual({ ...table, source: 'network', shippedBits: 8 });
  expect(q8Gpu.memory.itemTable).toEqual({ ...table, source: 'store', shippedBits: 8 });
  expect(q8Gpu.memory.gpu!.itemTable).toBe(TABLE_BYTES);

  // The same 8-bit values either way, so the very same scores, on each backend.
  expect(q8Cpu.top).toEqual(fp32Cpu.top);
  expect(q8Cpu.reranked).toEqual(fp32Cpu.reranked);
  expect(q8Gpu.top).toEqual(fp32Gpu.top);
  expect(q8Gpu.reranked).toEqual(fp32Gpu.reranked);
  expect(q8Gpu.top.map((x) => x.id)).toEqual(q8Cpu.top.map((x) => x.id));

  // What travelled: backbone.bin lost exactly the float32 table, item_emb.q8 is the 8-bit one.
  expect(fp32Files['item_emb.q8']).toBeUndefined();
  expect(q8Files['item_emb.q8']).toBe(TABLE_BYTES);
  expect(q8Files['backbone.bin']).toBe(fp32Files['backbone.bin']! - FP32_TABLE_BYTES);
  const saved = FP32_TABLE_BYTES - TABLE_BYTES; // 147,048 B at 3,000 x 16
  for (const f of ['items.json', 'gru.json', 'gru.bin']) expect(q8Files[f], f).toBe(fp32Files[f]);
  // The rest is JSON: the manifest (the export's indentation, itemTable) and a shorter tensor index.
  expect(Math.abs(total(fp32Files) - total(q8Files) - saved)).toBeLessThan(1024);
  console.log(`download: float32 layout ${total(fp32Files)} B, 8-bit layout ${total(q8Files)} B (${JSON.stringify(q8Files)})`);
});

test('a damaged item_emb.q8 fails the load with ArtifactError and the store keeps what it held; the float32 layout still loads from it', async ({ page }) => {
  await openRerankerPage(page);
  const tablePath = join(q8.dir, 'item_emb.q8');
  const good = await readFile(tablePath);
  const stored = () => page.evaluate(() => window.chordReranker.storedRecords());

  // An earlier release in the old layout is in the store.
  const first = await session(page, fp32, 'old', 'cpu');
  expect(first.memory.itemTable).toMatchObject({ source: 'network', shippedBits: 32 });
  const before = await stored();
  expect(before).toHaveLength(3); // backbone (without item_emb), gru, the 8-bit table

  try {
    for (const [how, bytes, code] of [
      ['flip-byte', Buffer.from(good.map((b, i) => (i === 40 ? b ^ 0x11 : b))), 'ARTIFACT_HASH_MISMATCH'],
      ['truncate', good.subarray(0, good.byteLength - 8), 'ARTIFACT_INVALID'],
    ] as const) {
      await writeFile(tablePath, bytes);
      for (const device of ['cpu', 'webgpu'] as const) {
        const r = await createWithHistory(page, q8, `${how}-${device}`, device, []);
        expect(r, `${how} on ${device}`).toMatchObject({ ok: false, code });
        expect(r.ok ? '' : r.message).toContain('item_emb.q8');
        // Nothing of the failed release was stored, and nothing of the earlier one pruned.
        expect(await stored(), `${how} on ${device}`).toEqual(before);
      }
    }
  } finally {
    await writeFile(tablePath, good);
  }

  // The old layout loads from the store as before: no download of its backbone, the same rankings.
  const backbone = () => fp32.fileLog.filter((r) => r.path.endsWith('/backbone.bin')).length;
  const downloads = backbone();
  const again = await session(page, fp32, 'old-again', 'cpu');
  expect(again.memory.itemTable).toMatchObject({ source: 'store', shippedBits: 32, dropped: null });
  expect(backbone()).toBe(downloads);
  expect(again.top).toEqual(first.top);
  expect(again.reranked).toEqual(first.reranked);

  // With the file repaired the new release loads, ranks alike, and replaces the old one in the store.
  const repaired = await session(page, q8, 'repaired', 'cpu');
  expect(repaired.memory.itemTable).toMatchObject({ source: 'network', shippedBits: 8, dropped: null });
  expect(repaired.top).toEqual(first.top);
  expect(repaired.reranked).toEqual(first.reranked);
  const after = await stored();
  expect(after).toHaveLength(3);
  expect(after.some((r) => r.startsWith(`itemTables:${MODEL_ID}@`) && r.endsWith(`/item_emb:${TABLE_BYTES}`))).toBe(true);
  expect(after.filter((r) => before.includes(r))).toEqual([]);
});
