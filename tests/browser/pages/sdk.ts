// SDK building blocks exercised in a real page: `await page.evaluate(() => window.chordSdk.<name>(...))`.
// Functions return plain summaries (status, codes, hashes, a few values) for the specs to assert on.
import { openDB } from 'idb';
import { backboneLayers, DEFAULT_CASER_DIMS, DEFAULT_SASREC_DIMS, frozenParamCount } from '../../../src/core/backbones.ts';
import type { BackboneConfig } from '../../../src/core/backbones.ts';
import { computeFrozenWeightsHash } from '../../../src/core/frozen.ts';
import { encodeTensorFile } from '../../../src/core/tensor-file.ts';
import type { TensorMap } from '../../../src/core/tensor-file.ts';
import { generateCatalogue } from '../../../src/data/synthetic.ts';
import { loadTensorArtifact, regenerateFrozenWeights } from '../../../src/device/artifacts.ts';
import { untrainedDriftModel } from '../../../tools/drift/drift-eval.ts';
import { DriftDetector } from '../../../src/core/drift.ts';
import type { ProgressReport } from '../../../src/device/progress.ts';
import { StrategyClient } from '../../../src/device/strategy-client.ts';
import type { StrategyClientOptions } from '../../../src/device/strategy-client.ts';
import { WeightStore } from '../../../src/device/store.ts';
import type { ArtifactKey, LoadResult, PutResult, StoreIssue } from '../../../src/device/store.ts';
import strategySwUrl from '../../../src/sw/url.ts';
import { CACHE_PREFIX } from '../../../src/sw/version.ts';

// ---- Weight store ----

const stores = new Map<string, WeightStore>();
const issues: { code: string; message: string }[] = [];

async function store(dbName: string): Promise<WeightStore> {
  let s = stores.get(dbName);
  if (!s) {
    s = await WeightStore.open({
      dbName,
      onIssue: (e: StoreIssue) => issues.push({ code: e.code, message: e.message }),
    });
    stores.set(dbName, s);
  }
  return s;
}

/** A deterministic artifact of `rows` x 64 floats, values depending on `seed`. */
function makeTensors(rows: number, seed: number): TensorMap {
  const data = new Float32Array(rows * 64);
  for (let i = 0; i < data.length; i++) data[i] = seed + i * 0.25;
  return new Map([
    ['item_emb', { shape: [rows, 64], data }],
    ['norm.bias', { shape: [64], data: new Float32Array(64).fill(seed) }],
  ]);
}

function summarizePut(r: PutResult): { stored: string; code?: string; pruned?: number } {
  return r.stored === 'indexeddb' ? { stored: r.stored, pruned: r.pruned } : { stored: r.stored, code: r.error.code };
}

function summarizeLoad<T>(r: LoadResult<T>, extra: (v: T) => Record<string, unknown>): Record<string, unknown> {
  if (r.status === 'hit') return { status: 'hit', from: r.from, ...extra(r.value) };
  if (r.status === 'dropped') return { status: 'dropped', reason: r.error.reason, code: r.error.code, message: r.error.message };
  return { status: 'miss' };
}

async function storePut(dbName: string, key: ArtifactKey, rows: number, seed: number) {
  const { index, bin } = encodeTensorFile(makeTensors(rows, seed));
  const s = await store(dbName);
  return { ...summarizePut(await s.putArtifact(key, { index, bin })), mode: s.mode, bytes: bin.byteLength };
}

async function storeGet(dbName: string, key: ArtifactKey, expectSha256?: string) {
  const s = await store(dbName);
  const r = await s.getArtifact(key, expectSha256 === undefined ? {} : { expectSha256 });
  return summarizeLoad(r, (v) => ({
    sha256: v.sha256,
    bytes: v.bin.byteLength,
    first: Array.from(new Float32Array(v.bin.buffer, v.bin.byteOffset, 3)),
  }));
}

type Corruption = 'flip-byte' | 'truncate' | 'old-format' | 'garbage';

/** Damages a stored record directly in IndexedDB, as disk corruption or an old SDK would. */
async function storeCorrupt(dbName: string, storeName: 'artifacts', key: [string, string, string], how: Corruption) {
  stores.get(dbName)?.close();
  stores.delete(dbName);
  const db = await openDB(dbName);
  const rec = await db.get(storeName, key);
  if (!rec) throw new Error('nothing to corrupt');
  if (how === 'flip-byte') {
    const bytes = new Uint8Array(rec.bin);
    bytes[17] = bytes[17]! ^ 0x40;
  } else if (how === 'truncate') {
    rec.bin = rec.bin.slice(0, rec.bin.byteLength - 4);
  } else if (how === 'old-format') {
    rec.format = 0;
  } else {
    await db.put(storeName, { modelId: key[0], version: key[1], name: key[2], junk: true });
    db.close();
    return;
  }
  await db.put(storeName, rec);
  db.close();
}

/**
 * A database as schema version 1 left it: the artifacts store and the packed-weights store (since
 * removed), with one record in the latter.
 */
async function storeVersion1(dbName: string): Promise<void> {
  const db = await openDB(dbName, 1, {
    upgrade(database) {
      database.createObjectStore('artifacts', { keyPath: ['modelId', 'version', 'name'] }).createIndex('byModel', 'modelId');
      database.createObjectStore('packed', { keyPath: ['modelId', 'version', 'strategyHash'] }).createIndex('byModel', 'modelId');
    },
  });
  await db.put('packed', { format: 1, modelId: 'm', version: 'v1', strategyHash: 'f'.repeat(64), layers: [] });
  db.close();
}

/** The database's version and object stores, as IndexedDB reports them. */
async function storeSchema(dbName: string): Promise<{ version: number; stores: string[] }> {
  const db = await openDB(dbName);
  const schema = { version: db.version, stores: [...db.objectStoreNames] };
  db.close();
  return schema;
}

async function storeCount(dbName: string, storeName: 'artifacts'): Promise<number> {
  const db = await openDB(dbName);
  const n = await db.count(storeName);
  db.close();
  return n;
}

async function storeMode(dbName: string): Promise<string> {
  return (await store(dbName)).mode;
}

async function loadArtifact(dbName: string, baseUrl: string, key: ArtifactKey, expectSha256?: string) {
  const reports: ProgressReport[] = [];
  const r = await loadTensorArtifact({
    key,
    baseUrl,
    store: await store(dbName),
    onProgress: (p) => reports.push(p),
    ...(expectSha256 === undefined ? {} : { expectSha256 }),
  });
  const emb = r.tensors.get('item_emb');
  return {
    source: r.source,
    sha256: r.sha256,
    dropped: r.dropped?.reason ?? null,
    put: r.put ? summarizePut(r.put) : null,
    shape: emb?.shape ?? null,
    first: emb ? Array.from(emb.data.subarray(0, 3)) : null,
    stages: [...new Set(reports.map((p) => p.stage))],
    lastDownload: reports.filter((p) => p.stage === 'download').at(-1) ?? null,
  };
}

/** Times frozen-weight regeneration + hashing for the default backbones (median of `runs`). */
async function frozenBench(runs = 5) {
  const out: Record<string, { params: number; generateMs: number; hashMs: number; sha256: string }> = {};
  const configs: BackboneConfig[] = [
    { backbone: 'sasrec', dims: DEFAULT_SASREC_DIMS },
    { backbone: 'caser', dims: DEFAULT_CASER_DIMS },
  ];
  for (const config of configs) {
    const layers = backboneLayers(config);
    const manifest = { modelId: config.backbone, seed: 42, layers, frozenWeightsHash: await computeFrozenWeightsHash({ seed: 42, layers }) };
    const gen: number[] = [];
    const hash: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await regenerateFrozenWeights(manifest);
      gen.push(r.generateMs);
      hash.push(r.hashMs);
    }
    const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
    out[config.backbone] = { params: frozenParamCount(layers), generateMs: median(gen), hashMs: median(hash), sha256: manifest.frozenWeightsHash };
  }
  return out;
}

// ---- Strategy client ----

let client: StrategyClient | null = null;

type ClientInit = Omit<StrategyClientOptions, 'serviceWorkerUrl'> & { useServiceWorker: boolean; swUrl?: string };

async function strategyInit(options: ClientInit) {
  const { useServiceWorker, swUrl, ...rest } = options;
  client = await StrategyClient.create({ ...rest, serviceWorkerUrl: useServiceWorker ? (swUrl ?? strategySwUrl) : null });
  return { transport: client.transport, fallbackReason: client.fallbackReason, swUrl: strategySwUrl };
}

async function strategyFetch(z: number[], budget?: number) {
  if (!client) throw new Error('strategyInit first');
  try {
    const r = await client.fetchStrategy(z, budget);
    return {
      ok: true as const,
      stale: r.stale,
      source: r.source,
      revision: r.revision,
      transport: r.transport,
      failure: r.failure?.code ?? null,
      retryInMs: r.failure ? r.failure.retryAt - Date.now() : null,
      firstLevel: r.decoded.strategy.layers[0]!.levels[0]!,
      layerNames: r.decoded.strategy.layers.map((l) => l.name),
    };
  } catch (e) {
    return { ok: false as const, code: (e as { code?: string }).code ?? 'UNKNOWN', message: (e as Error).message };
  }
}

async function strategyWorkerInfo() {
  if (!client) throw new Error('strategyInit first');
  return { version: await client.workerVersion(), updateWaiting: client.updateWaiting, transport: client.transport };
}

async function strategyActivateUpdate() {
  if (!client) throw new Error('strategyInit first');
  return client.activateUpdate();
}

async function strategyCheckForUpdate() {
  await client?.checkForUpdate();
}

function controllerUrl(): string | null {
  return navigator.serviceWorker?.controller?.scriptURL ?? null;
}

async function cacheNames(): Promise<string[]> {
  return (await caches.keys()).filter((n) => n.startsWith(CACHE_PREFIX) || n.startsWith('chord-'));
}

async function seedCache(name: string): Promise<void> {
  const c = await caches.open(name);
  await c.put('/__chord/strategy/old/old/0', new Response('old'));
}

// ---- Shopper session: clicks -> GRU -> drift -> strategy (privacy test) ----

async function shopperSession(itemIds: string[], budget: number) {
  const catalogue = generateCatalogue({ seed: 3 });
  const model = untrainedDriftModel({ catalogue });
  const detector = new DriftDetector({ warmupClicks: 3 });
  const results: unknown[] = [];
  // The page knows the click history (as any shop page does); it must stay here.
  sessionStorage.setItem('recentlyViewed', JSON.stringify(itemIds));
  document.cookie = `recentlyViewed=${itemIds.join('.')}; path=/`;
  for (const id of itemIds) {
    const z = model.profiler.click(model.itemIndex(id));
    const d = detector.observe(z);
    if (!d.request) continue;
    const r = await strategyFetch(Array.from(z), budget);
    results.push(r);
    if (r.ok) detector.markApplied(z);
    else detector.markFailed();
  }
  return { requests: results, history: model.profiler.history(), z: Array.from(model.profiler.z) };
}

const api = {
  storePut,
  storeGet,
  storeCorrupt,
  storeVersion1,
  storeSchema,
  storeCount,
  storeMode,
  loadArtifact,
  frozenBench,
  issues: () => issues.slice(),
  strategyInit,
  strategyFetch,
  strategyWorkerInfo,
  strategyActivateUpdate,
  strategyCheckForUpdate,
  cacheNames,
  seedCache,
  controllerUrl,
  shopperSession,
};

declare global {
  interface Window {
    chordSdk: typeof api;
  }
}
window.chordSdk = api;
document.body.dataset.ready = '1';
