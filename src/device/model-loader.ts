/**
 * Loads a model artifact directory into the page:
 *
 *   <model>/manifest.json        ModelManifest (fetched on every load; small)
 *   <model>/items.json           the shop's ids by dense index, index 0 = padding (fetched; small)
 *   <model>/backbone.json|.bin   trained tensors, through the WeightStore (IndexedDB, integrity checked);
 *                                the item table `item_emb` is quantized to 8 bits per value on the first
 *                                download (src/core/item-table.ts) and stored as such, the rest as is
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
 * float32 dequantization, `backbone.get('item_emb')`). A stored table that fails its check (hash,
 * length, layout) is dropped with a StoreIntegrityError, reported in `itemTable.dropped`, and the
 * backbone is downloaded again and re-quantized: nothing is lost but a download.
 *
 * Store version: the first 16 hex digits of the SHA-256 of manifest.json's bytes. Model files are
 * immutable under a modelId (the cloud serves them as such), so a new release means a new
 * manifest; the store drops the old version's tensors when the new one is written.
 */
import type { FrozenLayerInfo } from '../core/budget.ts';
import { channelRangesFromWeights } from '../core/budget.ts';
import type { FrozenLayer } from '../core/frozen.ts';
import { sha256Hex } from '../core/hash.ts';
import { parseManifest } from '../core/manifest.ts';
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
  const [backbone, gru] = await Promise.all([
    loadBackbone({
      baseUrl,
      fetch: fetchFn,
      modelId: manifest.modelId,
      version,
      rows: manifest.numItems + 1,
      dim: manifest.backbone === 'sasrec' ? manifest.dims.hidden : manifest.dims.d,
      ...(store ? { store } : {}),
      ...(onProgress ? { onProgress } : {}),
      verify: async (tensors) => {
        shipped = await checkShippedWeights(manifest, tensors, onProgress);
      },
    }),
    loadTensorArtifact({
      key: { modelId: manifest.modelId, version, name: 'gru' },
      baseUrl,
      fetch: fetchFn,
      ...(store ? { store } : {}),
      ...(onProgress ? { onProgress } : {}),
    }),
  ]);

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

interface LoadBackboneOptions {
  readonly baseUrl: string;
  readonly fetch: typeof fetch;
  readonly store?: WeightStore;
  readonly modelId: string;
  readonly version: string;
  /** Shape the item table must have: numItems + 1 rows of the backbone's width. */
  readonly rows: number;
  readonly dim: number;
  readonly onProgress?: ProgressCallback;
  readonly verify: (tensors: TensorMap) => Promise<void>;
}

/**
 * The backbone with its 8-bit item table: from the store when both the backbone (stored without
 * item_emb) and the table pass their checks, else downloaded, quantized and stored.
 */
async function loadBackbone(o: LoadBackboneOptions): Promise<{ tensors: TensorMap; itemTable: DeviceItemTable }> {
  const backboneKey = { modelId: o.modelId, version: o.version, name: 'backbone' };
  const tableKey = { modelId: o.modelId, version: o.version, name: 'item_emb' };
  const fp32Bytes = o.rows * o.dim * 4;
  const withTable = (tensors: TensorMap, table: ItemTableQ8): TensorMap => {
    const out: TensorMap = new Map(tensors);
    out.set('item_emb', { shape: [table.rows, table.dim], data: dequantizeItemTable(table) });
    return out;
  };
  let dropped: StoreIntegrityError | undefined;
  if (o.store) {
    const [body, stored] = await Promise.all([
      o.store.getArtifact(backboneKey, o.onProgress ? { onProgress: o.onProgress } : {}),
      o.store.getItemTable(tableKey, { rows: o.rows, dim: o.dim }),
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
          return { tensors: withTable(tensors, table), itemTable: { table, bytes: table.bytes.byteLength, fp32Bytes, source: 'store' } };
        }
        // Bytes that match their own record hash but not what the manifest pins: replaced below.
        dropped = new StoreIntegrityError('corrupt', `${o.modelId}@${o.version}/backbone`, failed.message);
      }
    }
  }
  const downloaded = await loadTensorArtifact({
    key: backboneKey,
    baseUrl: o.baseUrl,
    fetch: o.fetch,
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    verify: o.verify,
  });
  const binUrl = joinUrl(o.baseUrl, 'backbone.bin');
  const itemEmb = downloaded.tensors.get('item_emb');
  if (!itemEmb) throw new ArtifactError('ARTIFACT_INVALID', binUrl, 'the backbone has no item_emb tensor');
  if (itemEmb.shape.length !== 2 || itemEmb.shape[0] !== o.rows || itemEmb.shape[1] !== o.dim) {
    throw new ArtifactError(
      'ARTIFACT_INVALID',
      binUrl,
      `item_emb has shape [${itemEmb.shape.join(', ')}]; the manifest has ${o.rows - 1} items + padding of width ${o.dim}`,
    );
  }
  let table: ItemTableQ8;
  try {
    table = quantizeItemTable(itemEmb.data, o.rows, o.dim);
  } catch (e) {
    throw new ArtifactError('ARTIFACT_INVALID', binUrl, `item_emb: ${(e as Error).message}`, { cause: e });
  }
  const body: TensorMap = new Map(downloaded.tensors);
  body.delete('item_emb');
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
      ...(dropped ? { dropped } : {}),
      ...(put ? { put } : {}),
    },
  };
}
