/**
 * Loads a model artifact directory into the page:
 *
 *   <model>/manifest.json        ModelManifest (fetched on every load; small)
 *   <model>/items.json           the shop's ids by dense index, index 0 = padding (fetched; small)
 *   <model>/backbone.json|.bin   trained tensors, through the WeightStore (IndexedDB, integrity checked)
 *   <model>/gru.json|.bin        the profiler GRU, likewise
 *
 * and the frozen weights, checked against the manifest's hash: regenerated from its seed, or, when
 * the manifest says `frozenWeights: 'shipped'` (a frozen-pretrained model), the backbone tensors
 * named after the layers. The shipped ones are checked before the download is stored and again
 * on every load from the store, so damaged weights are never quantized (src/core/manifest.ts has
 * the rules).
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
import type { TensorMap } from '../core/tensor-file.ts';
import { checkShippedWeights, loadTensorArtifact, readWithProgress, regenerateFrozenWeights } from './artifacts.ts';
import { ArtifactError } from './errors.ts';
import type { ProgressCallback } from './progress.ts';
import type { WeightStore } from './store.ts';

export interface DeviceModel {
  readonly baseUrl: string;
  readonly manifest: ModelManifest;
  /** Store version (see the module comment). */
  readonly version: string;
  readonly backbone: TensorMap;
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
  const load = (name: 'backbone' | 'gru', verify?: (tensors: TensorMap) => Promise<void>) =>
    loadTensorArtifact({
      key: { modelId: manifest.modelId, version, name },
      baseUrl,
      fetch: fetchFn,
      ...(store ? { store } : {}),
      ...(onProgress ? { onProgress } : {}),
      ...(verify ? { verify } : {}),
    });
  const [backbone, gru] = await Promise.all([
    load('backbone', async (tensors) => {
      shipped = await checkShippedWeights(manifest, tensors, onProgress);
    }),
    load('gru'),
  ]);
  const itemEmb = backbone.tensors.get('item_emb');
  if (itemEmb && itemEmb.shape[0] !== manifest.numItems + 1) {
    throw new ArtifactError(
      'ARTIFACT_INVALID',
      joinUrl(baseUrl, 'backbone.json'),
      `item_emb has ${itemEmb.shape[0]} rows; the manifest has ${manifest.numItems} items + padding`,
    );
  }

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
    gru: gru.tensors,
    items,
    index,
    frozen,
    frozenInfo,
    sources: { backbone: backbone.source, gru: gru.source },
  };
}
