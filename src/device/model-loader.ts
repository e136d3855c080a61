/**
 * Loads a model artifact directory into the page:
 *
 *   <model>/manifest.json        ModelManifest (fetched on every load; small)
 *   <model>/items.json           the shop's ids by dense index, index 0 = padding (fetched; small)
 *   <model>/backbone.json|.bin   trained tensors, through the WeightStore (IndexedDB, integrity checked);
 *                                in a version-1 model the item table `item_emb` is here in float32 and
 *                                is quantized to 8 bits per value on the first download
 *                                (src/core/item-table.ts) and stored as such, the rest as is
 *   <model>/item_emb.q8          version 2 (manifest `itemTable`): the item table already in that 8-bit
 *                                layout, checked against the manifest's length and SHA-256 and stored
 *                                as it came (no item_emb in backbone.bin, nothing quantized here)
 *   <model>/gru.json|.bin        the profiler GRU, likewise
 *
 * and the frozen weights, checked against the manifest's hash: regenerated from its seed, or, when
 * the manifest says `frozenWeights: 'shipped'` (a frozen-pretrained model), the backbone tensors
 * named after the layers. The shipped ones are checked before the download is stored and again
 * on every load from the store, so damaged weights are never quantized (src/core/manifest.ts has
 * the rules).
 *
 * The 8-bit item table is THE item table of the page: both backends embed the history and score
 * candidates with its values (the GPU reads the codes, the CPU path and the GRU their exact
 * float32 dequantization, `backbone.get('item_emb')`). Both layouts give the same table, byte for
 * byte (the export quantizes with the same function). A stored table that fails its check (hash,
 * length, layout, or for version 2 the manifest's hash) is dropped with a StoreIntegrityError,
 * reported in `itemTable.dropped`, and downloaded again: nothing is lost but a download.
 *
 * Nothing is stored until every downloaded file of the load has passed its checks (the backbone,
 * the table and the GRU wait for each other): a corrupt or truncated file fails the load with an
 * ArtifactError and leaves the store as it was, including the copies of an earlier release that
 * a write would prune.
 *
 * Store version: the first 16 hex digits of the SHA-256 of manifest.json's bytes. Model files are
 * immutable under a modelId (the cloud serves them as such), so a new release means a new
 * manifest; the store drops the old version's tensors when the new one is written.
 */
import type { FrozenLayerInfo } from '../core/budget.ts';
import { channelRangesFromWeights } from '../core/budget.ts';
import type { FrozenLayer } from '../core/frozen.ts';
import { sha256Hex } from '../core/hash.ts';
import { ITEM_TABLE_FILE, ItemTableFileError, itemTableFromFile, manifestItemDim, parseManifest } from '../core/manifest.ts';
import type { ModelManifest } from '../core/manifest.ts';
import { dequantizeItemTable, quantizeItemTable } from '../core/item-table.ts';
import type { ItemTableQ8 } from '../core/item-table.ts';
import { decodeTensorFile, encodeTensorFile } from '../core/tensor-file.ts';
import type { TensorMap } from '../core/tensor-file.ts';
import { checkShippedWeights, loadTensorArtifact, readWithProgress, regenerateFrozenWeights } from './artifacts.ts';
import { ArtifactError, StoreIntegrityError } from './errors.ts';
import type { ProgressCallback } from './progress.ts';
import type { PutResult, WeightStore } from './store.ts';

/** The page's 8-bit item table and where it came from. */
export interface DeviceItemTable {
  readonly table: ItemTableQ8;
  /** Bytes of the 8-bit table (codes + scales), as stored and as uploaded to the GPU. */
  readonly bytes: number;
  /** Bytes the same table takes in float32. */
  readonly fp32Bytes: number;
  readonly source: 'store' | 'network';
  /** How the model folder ships it: 8 = item_emb.q8 as stored (version 2), 32 = float32 item_emb quantized here (version 1). */
  readonly shippedBits: 8 | 32;
  /** A stored table (or backbone) that failed its check and was replaced by a download. */
  readonly dropped?: StoreIntegrityError;
  /** How the table was stored after a download. */
  readonly put?: PutResult;
}

export interface DeviceModel {
  readonly baseUrl: string;
  readonly manifest: ModelManifest;
  /** Store version (see the module comment). */
  readonly version: string;
  /** Trained tensors; `item_emb` holds the 8-bit table's float32 values (see the module comment). */
  readonly backbone: TensorMap;
  readonly itemTable: DeviceItemTable;
  readonly gru: TensorMap;
  /** items.json as served. */
  readonly items: readonly string[];
  /** Shop id -> item index (1..numItems). */
  readonly index: ReadonlyMap<string, number>;
  readonly frozen: readonly FrozenLayer[];
  /** Row lengths and per-channel ranges of the frozen weights: T's input. */
  readonly frozenInfo: readonly FrozenLayerInfo[];
  /** Where the trained tensors came from. */
  readonly sources: { readonly backbone: 'store' | 'network'; readonly gru: 'store' | 'network' };
}

export interface LoadDeviceModelOptions {
  readonly baseUrl: string;
  readonly store?: WeightStore;
  readonly fetch: typeof fetch;
  readonly onProgress?: ProgressCallback;
}

function joinUrl(base: string, file: string): string {
  return `${base.replace(/\/+$/, '')}/${file}`;
}

async function fetchBytes(fetchFn: typeof fetch, url: string, onProgress?: ProgressCallback): Promise<Uint8Array<ArrayBuffer>> {
  let res: Response;
  try {
    res = await fetchFn(url, { credentials: 'same-origin' });
  } catch (e) {
    throw new ArtifactError('ARTIFACT_HTTP', url, `request failed: ${(e as Error).message}`, { cause: e });
  }
  if (!res.ok) throw new ArtifactError('ARTIFACT_HTTP', url, `HTTP ${res.status}`);
  return readWithProgress(res, url, onProgress);
}

function parseJsonBytes(url: string, bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new ArtifactError('ARTIFACT_INVALID', url, `not JSON: ${(e as Error).message}`, { cause: e });
  }
}

/** items.json: numItems + 1 strings, index 0 = padding, ids 1..numItems unique and non-empty. */
export function parseItems(url: string, json: unknown, numItems: number): { items: string[]; index: Map<string, number> } {
  if (!Array.isArray(json)) throw new ArtifactError('ARTIFACT_INVALID', url, 'items.json is not an array');
  if (json.length !== numItems + 1) {
    throw new ArtifactError('ARTIFACT_INVALID', url, `${json.length} entries; the manifest has ${numItems} items + padding`);
  }
  const index = new Map<string, number>();
  for (let i = 1; i < json.length; i++) {
    const id: unknown = json[i];
    if (typeof id !== 'string' || id.length === 0) throw new ArtifactError('ARTIFACT_INVALID', url, `entry ${i} is not a non-empty string`);
    if (index.has(id)) throw new ArtifactError('ARTIFACT_INVALID', url, `id ${JSON.stringify(id)} appears twice`);
    index.set(id, i);
  }
  return { items: json.map(String), index };
}

export async function loadDeviceModel(options: LoadDeviceModelOptions): Promise<DeviceModel> {
  const { baseUrl, store, onProgress } = options;
  const fetchFn = options.fetch;
  const manifestUrl = joinUrl(baseUrl, 'manifest.json');
  const itemsUrl = joinUrl(baseUrl, 'items.json');
  const [manifestBytes, itemsBytes] = await Promise.all([
    fetchBytes(fetchFn, manifestUrl, onProgress),
    fetchBytes(fetchFn, itemsUrl, onProgress),
  ]);
  // A bad manifest is reported as core's ManifestError (naming the field), not wrapped.
  const manifest = parseManifest(parseJsonBytes(manifestUrl, manifestBytes));
  const { items, index } = parseItems(itemsUrl, parseJsonBytes(itemsUrl, itemsBytes), manifest.numItems);
  const version = (await sha256Hex(manifestBytes)).slice(0, 16);

  let shipped: FrozenLayer[] | undefined;
  // Each load stores its download only once the other's checks have passed too (see the module comment).
  const backboneChecked = settled();
  const gruChecked = settled();
  const backbonePromise = loadBackbone({
    baseUrl,
    fetch: fetchFn,
    manifest,
    version,
    ...(store ? { store } : {}),
    ...(onProgress ? { onProgress } : {}),
    verify: async (tensors) => {
      shipped = await checkShippedWeights(manifest, tensors, onProgress);
    },
    beforeStore: () => {
      backboneChecked.resolve();
      return gruChecked.promise;
    },
  });
  const gruPromise = loadTensorArtifact({
    key: { modelId: manifest.modelId, version, name: 'gru' },
    baseUrl,
    fetch: fetchFn,
    ...(store ? { store } : {}),
    ...(onProgress ? { onProgress } : {}),
    beforeStore: () => {
      gruChecked.resolve();
      return backboneChecked.promise;
    },
  });
  backbonePromise.then(backboneChecked.resolve, backboneChecked.reject);
  gruPromise.then(gruChecked.resolve, gruChecked.reject);
  const [backbone, gru] = await Promise.all([backbonePromise, gruPromise]);

  const frozen = shipped ?? (await regenerateFrozenWeights(manifest, onProgress)).layers;
  const frozenInfo = frozen.map(({ spec, weights }) => ({
    rowLength: spec.rowLength,
    ranges: channelRangesFromWeights(weights, spec.outChannels, spec.rowLength),
  }));
  return {
    baseUrl,
    manifest,
    version,
    backbone: backbone.tensors,
    itemTable: backbone.itemTable,
    gru: gru.tensors,
    items,
    index,
    frozen,
    frozenInfo,
    sources: { backbone: backbone.itemTable.source, gru: gru.source },
  };
}

/** A promise settled from outside, at most once; a rejection nobody awaits is not reported as unhandled. */
function settled(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

interface LoadBackboneOptions {
  readonly baseUrl: string;
  readonly fetch: typeof fetch;
  readonly store?: WeightStore;
  /** Gives the item table's shape (numItems + 1 rows of the backbone's width) and, in version 2, its own file. */
  readonly manifest: ModelManifest;
  readonly version: string;
  readonly onProgress?: ProgressCallback;
  readonly verify: (tensors: TensorMap) => Promise<void>;
  /** Awaited after every check of a download and before it is stored; a rejection fails the load. */
  readonly beforeStore: () => Promise<void>;
}

/**
 * The backbone with its 8-bit item table: from the store when both the backbone (stored without
 * item_emb) and the table pass their checks, else downloaded (the table as shipped, or quantized
 * from a float32 item_emb) and stored.
 */
async function loadBackbone(o: LoadBackboneOptions): Promise<{ tensors: TensorMap; itemTable: DeviceItemTable }> {
  const { modelId, itemTable: pinned } = o.manifest;
  const rows = o.manifest.numItems + 1;
  const dim = manifestItemDim(o.manifest);
  const backboneKey = { modelId, version: o.version, name: 'backbone' };
  const tableKey = { modelId, version: o.version, name: 'item_emb' };
  const fp32Bytes = rows * dim * 4;
  const withTable = (tensors: TensorMap, table: ItemTableQ8): TensorMap => {
    const out: TensorMap = new Map(tensors);
    out.set('item_emb', { shape: [table.rows, table.dim], data: dequantizeItemTable(table) });
    return out;
  };
  let dropped: StoreIntegrityError | undefined;
  if (o.store) {
    const [body, stored] = await Promise.all([
      o.store.getArtifact(backboneKey, o.onProgress ? { onProgress: o.onProgress } : {}),
      o.store.getItemTable(tableKey, { rows, dim, ...(pinned ? { sha256: pinned.sha256 } : {}) }),
    ]);
    if (body.status === 'dropped') dropped = body.error;
    if (stored.status === 'dropped') dropped ??= stored.error;
    if (body.status === 'hit' && stored.status === 'hit') {
      const tensors = decodeTensorFile(body.value.index, body.value.bin);
      // A backbone stored before the item table had its own store still holds item_emb: download again.
      if (!tensors.has('item_emb')) {
        const failed = await o.verify(tensors).then(() => undefined, (e: unknown) => e as Error);
        if (!failed) {
          const { table } = stored.value;
          return {
            tensors: withTable(tensors, table),
            itemTable: { table, bytes: table.bytes.byteLength, fp32Bytes, source: 'store', shippedBits: pinned ? 8 : 32 },
          };
        }
        // Bytes that match their own record hash but not what the manifest pins: replaced below.
        dropped = new StoreIntegrityError('corrupt', `${modelId}@${o.version}/backbone`, failed.message);
      }
    }
  }
  const [downloaded, shippedTable] = await Promise.all([
    loadTensorArtifact({
      key: backboneKey,
      baseUrl: o.baseUrl,
      fetch: o.fetch,
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      verify: o.verify,
    }),
    pinned ? fetchItemTable(o) : undefined,
  ]);
  const binUrl = joinUrl(o.baseUrl, 'backbone.bin');
  const itemEmb = downloaded.tensors.get('item_emb');
  let table: ItemTableQ8;
  if (shippedTable) {
    if (itemEmb) throw new ArtifactError('ARTIFACT_INVALID', binUrl, `the backbone holds item_emb although the manifest ships it as ${pinned!.file}`);
    table = shippedTable;
  } else {
    if (!itemEmb) throw new ArtifactError('ARTIFACT_INVALID', binUrl, 'the backbone has no item_emb tensor');
    if (itemEmb.shape.length !== 2 || itemEmb.shape[0] !== rows || itemEmb.shape[1] !== dim) {
      throw new ArtifactError(
        'ARTIFACT_INVALID',
        binUrl,
        `item_emb has shape [${itemEmb.shape.join(', ')}]; the manifest has ${rows - 1} items + padding of width ${dim}`,
      );
    }
    try {
      table = quantizeItemTable(itemEmb.data, rows, dim);
    } catch (e) {
      throw new ArtifactError('ARTIFACT_INVALID', binUrl, `item_emb: ${(e as Error).message}`, { cause: e });
    }
  }
  const body: TensorMap = new Map(downloaded.tensors);
  body.delete('item_emb');
  await o.beforeStore();
  let put: PutResult | undefined;
  if (o.store) {
    // The table first: a backbone record without its table is never read as complete.
    put = await o.store.putItemTable(tableKey, table);
    await o.store.putArtifact(backboneKey, encodeTensorFile(body), o.onProgress ? { onProgress: o.onProgress } : {});
  }
  return {
    tensors: withTable(body, table),
    itemTable: {
      table,
      bytes: table.bytes.byteLength,
      fp32Bytes,
      source: 'network',
      shippedBits: pinned ? 8 : 32,
      ...(dropped ? { dropped } : {}),
      ...(put ? { put } : {}),
    },
  };
}

/**
 * A version-2 model's item_emb.q8, checked before anything is stored: its length (a short file is
 * ARTIFACT_INVALID), its SHA-256 against the manifest (ARTIFACT_HASH_MISMATCH) and core's layout
 * (ARTIFACT_INVALID: a -128 code or a scale quantizeItemTable cannot produce).
 */
async function fetchItemTable(o: LoadBackboneOptions): Promise<ItemTableQ8> {
  const url = joinUrl(o.baseUrl, ITEM_TABLE_FILE);
  const bytes = await fetchBytes(o.fetch, url, o.onProgress);
  o.onProgress?.({ stage: 'verify', item: url, loaded: 0, total: bytes.byteLength });
  const sha256 = await sha256Hex(bytes);
  o.onProgress?.({ stage: 'verify', item: url, loaded: bytes.byteLength, total: bytes.byteLength });
  try {
    return itemTableFromFile(o.manifest, bytes, sha256);
  } catch (e) {
    const code = e instanceof ItemTableFileError && e.code === 'ITEM_TABLE_HASH_MISMATCH' ? 'ARTIFACT_HASH_MISMATCH' : 'ARTIFACT_INVALID';
    throw new ArtifactError(code, url, (e as Error).message, { cause: e });
  }
}
