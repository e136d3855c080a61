// The public Reranker in a real page: `await page.evaluate(() => window.chordReranker.<fn>(...))`.
// Every function returns plain data (ids, scores, codes, event logs) for the specs to assert on.
import { openDB } from 'idb';
import { createReranker } from '../../../src/device/index.ts';
import { STORE_DB_NAME } from '../../../src/device/store.ts';
import type { CreateRerankerOptions, LoadProgress, Reranker, RerankOptions, StrategyInfo } from '../../../src/device/index.ts';

/** Every GPUDevice the page creates, so a spec can "lose" them (device.destroy() resolves `lost`). */
const devices: GPUDevice[] = [];
if (typeof GPUAdapter !== 'undefined') {
  const request = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, descriptor?: GPUDeviceDescriptor) {
    const device = await request.call(this, descriptor);
    devices.push(device);
    return device;
  };
}

interface LoggedEvent {
  readonly type: string;
  readonly reason?: string;
  readonly code?: string;
  readonly revision?: string | null;
  readonly source?: string;
  readonly averageBits?: number;
  readonly keptRevision?: string | null;
}

const rerankers = new Map<string, Reranker>();
const logs = new Map<string, { events: LoggedEvent[]; progress: LoadProgress[] }>();

function errorCode(e: unknown): string {
  return (e as { code?: string }).code ?? (e as Error).name ?? String(e);
}

function get(name: string): Reranker {
  const r = rerankers.get(name);
  if (!r) throw new Error(`no reranker "${name}"`);
  return r;
}

function summary(r: Reranker) {
  return { backend: r.backend, backendName: r.backendName, strategy: r.strategy, modelId: r.modelId, resources: r.resources };
}

async function create(name: string, options: CreateRerankerOptions) {
  const log = { events: [] as LoggedEvent[], progress: [] as LoadProgress[] };
  logs.set(name, log);
  const push = (e: LoggedEvent) => log.events.push(e);
  try {
    const r = await createReranker({
      ...options,
      onProgress: (p) => log.progress.push(p),
      on: {
        drift: (e) => push({ type: 'drift', reason: e.reason }),
        strategy: (e) => push({ type: 'strategy', reason: e.reason, revision: e.strategy.revision, source: e.strategy.source, averageBits: e.strategy.averageBits }),
        fallback: (e) => push({ type: 'fallback', reason: e.reason, code: errorCode(e.error), keptRevision: e.strategy?.revision ?? null }),
        error: (e) => push({ type: 'error', reason: e.recovered, code: errorCode(e.error) }),
      },
    });
    rerankers.set(name, r);
    return { ok: true as const, ...summary(r) };
  } catch (e) {
    return { ok: false as const, code: errorCode(e), message: (e as Error).message };
  }
}

function events(name: string): LoggedEvent[] {
  return logs.get(name)?.events ?? [];
}

/** Stages and items of the load progress, in order (consecutive repeats merged). */
function progress(name: string): { stage: string; item: string }[] {
  const out: { stage: string; item: string }[] = [];
  for (const p of logs.get(name)?.progress ?? []) {
    const last = out.at(-1);
    if (!last || last.stage !== p.stage || last.item !== p.item) out.push({ stage: p.stage, item: p.item });
  }
  return out;
}

function observe(name: string, ids: string[]) {
  return ids.map((id) => get(name).observe(id));
}

async function rerank(name: string, candidates: Parameters<Reranker['rerank']>[0], options?: RerankOptions) {
  try {
    return { ok: true as const, ranked: await get(name).rerank(candidates, options) };
  } catch (e) {
    return { ok: false as const, code: errorCode(e), message: (e as Error).message };
  }
}

/** An embedding as plain data: an array, or a typed array named by its constructor (page.evaluate passes JSON-like values). */
export type EmbeddingSpec = unknown[] | { readonly typed: string; readonly values: readonly (number | string)[] };

const TYPED: Record<string, (values: readonly (number | string)[]) => unknown> = {
  Float32Array: (v) => Float32Array.from(v as number[]),
  Float64Array: (v) => Float64Array.from(v as number[]),
  Int8Array: (v) => Int8Array.from(v as number[]),
  BigInt64Array: (v) => BigInt64Array.from(v, (x) => BigInt(x)),
};

/** rerank() with embeddings built in the page from `specs` (typed arrays included). */
async function rerankEmbeddings(
  name: string,
  specs: readonly { id: string; embedding: EmbeddingSpec; bias?: unknown }[],
  options?: RerankOptions,
) {
  const candidates = specs.map((c) => {
    const e = c.embedding;
    const embedding = Array.isArray(e) ? e : TYPED[e.typed]!(e.values);
    return 'bias' in c ? { id: c.id, embedding, bias: c.bias } : { id: c.id, embedding };
  });
  return rerank(name, candidates as never, options);
}

/** Resolves once `count` 'strategy' events were logged (load included), or rejects after `ms`. */
async function waitForStrategies(name: string, count: number, ms = 30_000): Promise<StrategyInfo | null> {
  const t0 = performance.now();
  while (events(name).filter((e) => e.type === 'strategy').length < count) {
    if (performance.now() - t0 > ms) throw new Error(`${count} strategy events not seen within ${ms} ms: ${JSON.stringify(events(name))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return get(name).strategy;
}

async function waitForEvent(name: string, type: string, ms = 30_000): Promise<LoggedEvent> {
  const t0 = performance.now();
  for (;;) {
    const e = events(name).find((x) => x.type === type);
    if (e) return e;
    if (performance.now() - t0 > ms) throw new Error(`no ${type} event within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function setBudget(name: string, budget: number | 'auto' | null) {
  return get(name).setBudget(budget);
}

/** Destroys every GPUDevice the page made: to the Reranker this is a device loss. */
function loseDevices(): number {
  for (const d of devices) d.destroy();
  return devices.length;
}

async function dispose(name: string) {
  const r = get(name);
  r.dispose();
  r.dispose(); // idempotent
  const after = await Promise.allSettled([
    r.rerank(['sku-1']),
    (async () => r.observe('sku-1'))(),
    r.setBudget(3),
  ]);
  return { disposed: r.disposed, codes: after.map((s) => (s.status === 'rejected' ? errorCode(s.reason) : 'resolved')) };
}

async function recommend(name: string, options?: { k?: number }) {
  try {
    return { ok: true as const, ranked: await get(name).recommend(options) };
  } catch (e) {
    return { ok: false as const, code: errorCode(e), message: (e as Error).message };
  }
}

/** The reranker's memory report as plain data (the dropped error by its code). */
function memory(name: string) {
  const m = get(name).memory;
  return { ...m, itemTable: { ...m.itemTable, dropped: m.itemTable.dropped?.code ?? null } };
}

/**
 * Damages every stored 8-bit item table in the SDK's IndexedDB database, as disk corruption
 * would: a flipped code byte, or the last 8 bytes cut off. Dispose the rerankers first.
 */
async function corruptItemTables(how: 'flip-byte' | 'truncate'): Promise<number> {
  const db = await openDB(STORE_DB_NAME);
  try {
    const records = await db.getAll('itemTables');
    for (const rec of records) {
      if (how === 'flip-byte') {
        const bytes = new Uint8Array(rec.bin);
        bytes[33] = bytes[33]! ^ 0x11;
      } else {
        rec.bin = rec.bin.slice(0, rec.bin.byteLength - 8);
      }
      await db.put('itemTables', rec);
    }
    return records.length;
  } finally {
    db.close();
  }
}

/** Every record of the SDK's IndexedDB database, by store, key and size (what a failed load must leave alone). */
async function storedRecords(): Promise<string[]> {
  const db = await openDB(STORE_DB_NAME);
  try {
    const out: string[] = [];
    for (const store of ['artifacts', 'itemTables'] as const) {
      for (const rec of await db.getAll(store)) out.push(`${store}:${rec.modelId}@${rec.version}/${rec.name}:${rec.byteLength}`);
    }
    return out.sort();
  } finally {
    db.close();
  }
}

const api = { create, events, recommend, memory, corruptItemTables, storedRecords, progress, observe, rerank, rerankEmbeddings, waitForStrategies, waitForEvent, setBudget, loseDevices, dispose, summary: (n: string) => summary(get(n)) };
declare global {
  interface Window {
    chordReranker: typeof api;
  }
}
window.chordReranker = api;
document.body.dataset.ready = '1';
