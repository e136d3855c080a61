/**
 * Loading a model's trained tensors (backbone, gru) through the weight store, and the frozen
 * weights (regenerated from the seed, or shipped in the backbone tensors), with progress reports.
 *
 * Artifact URLs: `<baseUrl>/<name>.json` (tensor index) and `<baseUrl>/<name>.bin` (float32 data).
 */
import { decodeTensorFile, parseTensorIndex } from '../core/tensor-file.ts';
import type { TensorIndex, TensorMap } from '../core/tensor-file.ts';
import { sha256Hex } from '../core/hash.ts';
import { generateLayerWeights, hashFrozenWeights } from '../core/frozen.ts';
import type { FrozenLayer } from '../core/frozen.ts';
import { FrozenHashMismatchError, FrozenSourceError, verifyShippedWeights } from '../core/manifest.ts';
import type { ModelManifest } from '../core/manifest.ts';
import { ArtifactError, StoreIntegrityError } from './errors.ts';
import type { ProgressCallback } from './progress.ts';
import type { ArtifactKey, PutResult, WeightStore } from './store.ts';

export interface LoadArtifactOptions {
  readonly key: ArtifactKey;
  /** Directory URL holding <name>.json and <name>.bin. */
  readonly baseUrl: string;
  readonly store?: WeightStore;
  /** Pinned SHA-256 of the .bin, when the manifest has one. */
  readonly expectSha256?: string;
  readonly fetch?: typeof fetch;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressCallback;
  /**
   * A check of the decoded tensors beyond the .bin hash (e.g. shipped frozen weights against the
   * manifest's hash). A download that fails it throws and is not stored; a stored copy that
   * fails it is replaced by a download (reported as `dropped`).
   */
  readonly verify?: (tensors: TensorMap) => Promise<void>;
  /**
   * Awaited after every check of a download, before it is stored; a rejection fails the load and
   * stores nothing. A model load makes its files wait for each other here, so a bad file stores
   * (and prunes) nothing.
   */
  readonly beforeStore?: () => Promise<void>;
}

export interface LoadedArtifact {
  readonly tensors: TensorMap;
  readonly sha256: string;
  readonly source: 'store' | 'network';
  /** A stored copy that failed its check and was replaced by a download. */
  readonly dropped?: StoreIntegrityError;
  /** How the download was stored (network source only). */
  readonly put?: PutResult;
}

function joinUrl(base: string, file: string): string {
  return `${base.replace(/\/+$/, '')}/${file}`;
}

async function fetchChecked(fetchFn: typeof fetch, url: string, signal: AbortSignal | undefined): Promise<Response> {
  let res: Response;
  try {
    res = await fetchFn(url, { signal, credentials: 'same-origin' });
  } catch (e) {
    throw new ArtifactError('ARTIFACT_HTTP', url, `request failed: ${(e as Error).message}`, { cause: e });
  }
  if (!res.ok) throw new ArtifactError('ARTIFACT_HTTP', url, `HTTP ${res.status}`);
  return res;
}

/**
 * Reads a response body, reporting 'download' progress. `total` is undefined when the size is
 * unknown: no Content-Length, or a compressed body (Content-Length then counts the compressed
 * bytes, while the stream yields the decompressed ones).
 */
export async function readWithProgress(res: Response, item: string, onProgress?: ProgressCallback): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  const encoding = res.headers.get('content-encoding');
  const compressed = encoding !== null && encoding !== 'identity';
  const total = Number.isSafeInteger(declared) && declared >= 0 && !compressed ? declared : undefined;
  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    onProgress?.({ stage: 'download', item, loaded: bytes.byteLength, total: bytes.byteLength });
    return bytes;
  }
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = res.body.getReader();
  onProgress?.({ stage: 'download', item, loaded: 0, total });
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    onProgress?.({ stage: 'download', item, loaded, total });
  }
  const out = new Uint8Array(loaded);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.byteLength;
  }
  return out;
}

/**
 * Returns the artifact's tensors from the store when a verified copy is there, else downloads,
 * checks (index/binary consistency, pinned hash) and stores it.
 */
export async function loadTensorArtifact(options: LoadArtifactOptions): Promise<LoadedArtifact> {
  const { key, store, onProgress } = options;
  let dropped: StoreIntegrityError | undefined;
  if (store) {
    const cached = await store.getArtifact(key, {
      ...(options.expectSha256 === undefined ? {} : { expectSha256: options.expectSha256 }),
      ...(onProgress ? { onProgress } : {}),
    });
    if (cached.status === 'hit') {
      const tensors = decodeTensorFile(cached.value.index, cached.value.bin);
      const failed = options.verify ? await options.verify(tensors).then(() => undefined, (e: unknown) => e as Error) : undefined;
      if (!failed) return { tensors, sha256: cached.value.sha256, source: 'store' };
      // The stored bytes match the hash stored with them, yet not what the manifest pins: replaced
      // by the download below (same key), or kept out if the download fails the check too.
      dropped = new StoreIntegrityError('corrupt', `${key.modelId}@${key.version}/${key.name}`, failed.message);
    }
    if (cached.status === 'dropped') dropped = cached.error;
  }
  const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  const jsonUrl = joinUrl(options.baseUrl, `${key.name}.json`);
  const binUrl = joinUrl(options.baseUrl, `${key.name}.bin`);
  const [jsonRes, binRes] = await Promise.all([
    fetchChecked(fetchFn, jsonUrl, options.signal),
    fetchChecked(fetchFn, binUrl, options.signal),
  ]);
  let index: TensorIndex;
  try {
    index = parseTensorIndex(await jsonRes.json());
  } catch (e) {
    throw new ArtifactError('ARTIFACT_INVALID', jsonUrl, (e as Error).message, { cause: e });
  }
  const bin = await readWithProgress(binRes, binUrl, onProgress);
  let tensors: TensorMap;
  try {
    tensors = decodeTensorFile(index, bin);
  } catch (e) {
    throw new ArtifactError('ARTIFACT_INVALID', binUrl, (e as Error).message, { cause: e });
  }
  onProgress?.({ stage: 'verify', item: binUrl, loaded: 0, total: bin.byteLength });
  const sha256 = await sha256Hex(bin);
  onProgress?.({ stage: 'verify', item: binUrl, loaded: bin.byteLength, total: bin.byteLength });
  if (options.expectSha256 !== undefined && sha256 !== options.expectSha256.toLowerCase()) {
    throw new ArtifactError('ARTIFACT_HASH_MISMATCH', binUrl, `hash ${sha256}, expected ${options.expectSha256}`);
  }
  await options.verify?.(tensors);
  await options.beforeStore?.();
  const put = store ? await store.putArtifact(key, { index, bin }, onProgress ? { onProgress } : {}) : undefined;
  return {
    tensors,
    sha256,
    source: 'network',
    ...(dropped ? { dropped } : {}),
    ...(put ? { put } : {}),
  };
}

export interface RegeneratedFrozen {
  readonly layers: FrozenLayer[];
  readonly generateMs: number;
  readonly hashMs: number;
}

/**
 * The frozen weights a backbone ships, checked against a 'shipped' manifest's hash ('verify'
 * progress over their bytes); undefined for a seed manifest, after checking the backbone ships
 * none (core's verifyShippedWeights has the rules and the errors).
 */
export async function checkShippedWeights(
  manifest: Pick<ModelManifest, 'layers' | 'frozenWeights' | 'frozenWeightsHash' | 'modelId'>,
  backbone: TensorMap,
  onProgress?: ProgressCallback,
): Promise<FrozenLayer[] | undefined> {
  if (manifest.frozenWeights !== 'shipped') return verifyShippedWeights(manifest, backbone);
  const item = `${manifest.modelId}/frozen`;
  const total = manifest.layers.reduce((s, l) => s + l.outChannels * l.rowLength * 4, 0);
  onProgress?.({ stage: 'verify', item, loaded: 0, total });
  const layers = await verifyShippedWeights(manifest, backbone);
  onProgress?.({ stage: 'verify', item, loaded: total, total });
  return layers;
}

/**
 * Regenerates the frozen weights of a parsed manifest layer by layer ('frozen' progress, loaded
 * = layers done) and checks them against the manifest's hash.
 */
export async function regenerateFrozenWeights(
  manifest: Pick<ModelManifest, 'seed' | 'layers' | 'frozenWeightsHash' | 'modelId' | 'frozenWeights'>,
  onProgress?: ProgressCallback,
): Promise<RegeneratedFrozen> {
  if (manifest.frozenWeights === 'shipped') {
    throw new FrozenSourceError('the frozen weights are shipped in the backbone tensors, not regenerated from the seed (checkShippedWeights reads them)');
  }
  const t0 = performance.now();
  const total = manifest.layers.length;
  const layers: FrozenLayer[] = [];
  onProgress?.({ stage: 'frozen', item: manifest.modelId, loaded: 0, total });
  for (const spec of manifest.layers) {
    layers.push({ spec, weights: generateLayerWeights(manifest.seed, spec) });
    onProgress?.({ stage: 'frozen', item: spec.name, loaded: layers.length, total });
  }
  const t1 = performance.now();
  const actual = await hashFrozenWeights(layers);
  const t2 = performance.now();
  if (actual !== manifest.frozenWeightsHash) throw new FrozenHashMismatchError(manifest.frozenWeightsHash, actual);
  return { layers, generateMs: t1 - t0, hashMs: t2 - t1 };
}
