/**
 * Loading the model artifact directories the strategy server serves.
 *
 * ## src/cloud README: the model artifact directory (the contract)
 *
 *     <modelsDir>/<modelId>/manifest.json         ModelManifest (src/core/manifest.ts)
 *     <modelsDir>/<modelId>/backbone.json|.bin    trained backbone tensors (the page loads these)
 *     <modelsDir>/<modelId>/item_emb.q8           the 8-bit item table, when the manifest (version 2)
 *                                                 pins it; then backbone.bin holds no item_emb
 *     <modelsDir>/<modelId>/gru.json|.bin         the profiler GRU (the page loads these)
 *     <modelsDir>/<modelId>/items.json            the shop's item ids by dense index, ["[PAD]", id1, ...]
 *     <modelsDir>/<modelId>/hypernet.json         HypernetConfig (cloud only)
 *     <modelsDir>/<modelId>/hyper.json|.bin       hypernet tensors (cloud only, never served)
 *
 * `.json`/`.bin` pairs are chord-tensors files (src/core/tensor-file.ts). The directory name must
 * equal the manifest's modelId. At load the server checks everything it can, so a broken model
 * fails at start-up and never at request time:
 * - the manifest parses, and the frozen weights hash to its frozenWeightsHash (the same check
 *   every device makes): regenerated from its seed, or, for `frozenWeights: 'shipped'` (a
 *   frozen-pretrained model), the layer weights backbone.bin ships; a seed manifest whose
 *   backbone ships layer weights is refused (src/core/manifest.ts verifyShippedWeights);
 * - hypernet.json parses, its zDim equals the manifest's userDim and its layers equal the
 *   manifest's layers (names, channels, row lengths, in order);
 * - the hypernet tensors have every name and shape the config needs;
 * - backbone and gru indexes parse and their .bin sizes match;
 * - a version-2 model's item_emb.q8 has the manifest's length and SHA-256 and core's layout (no
 *   -128 code, normal f16 scales), and backbone.bin has no item_emb beside it: the page checks the
 *   same, and a shop should learn of a bad table at start-up, not from its shoppers.
 * The per-channel ranges (max - min) of the frozen weights (shipped ones included), which the
 * resource transform T needs, are computed here once per model.
 *
 * What a loaded model keeps: the served files' bytes (once; at shop size mostly backbone.bin's
 * item tables), the hypernet (its tensors and the compute's copy of them, one more per compute
 * worker) and the frozen ranges. Nothing decoded from the item tables or items.json is kept, so
 * past the served bytes a model's memory does not grow with the catalogue; the item tables are
 * not even decoded at load (decodeNamedTensors). bench:server's shop_scale measures it.
 *
 * Only manifest.json, items.json, backbone.*, gru.* and item_emb.q8 (where the manifest pins it) are
 * ever served (GET /v1/models/:model/files/<name>),
 * from memory, with a strong ETag and `Cache-Control: public, max-age=31536000, immutable`:
 * a model's files must never change under the same modelId — publish a new modelId instead.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { averageBits } from '../core/allocation.ts';
import { channelRangesFromWeights } from '../core/budget.ts';
import type { FrozenLayerInfo } from '../core/budget.ts';
import { ChordError } from '../core/errors.ts';
import { parseHypernetConfig } from '../core/hypernet.ts';
import type { HypernetConfig } from '../core/hypernet.ts';
import { sha256Hex } from '../core/hash.ts';
import { ITEM_TABLE_FILE, itemTableFromFile, manifestItemDim, parseManifest, resolveFrozenWeights } from '../core/manifest.ts';
import type { ModelManifest } from '../core/manifest.ts';
import type { Strategy } from '../core/strategy.ts';
import { decodeTensorFile, parseTensorIndex } from '../core/tensor-file.ts';
import type { TensorIndex, TensorMap } from '../core/tensor-file.ts';
import type { BatchedHypernet } from './batched-hypernet.ts';
import { ModelLoadError } from './errors.ts';
import { etagOf, StrategyCompute } from './strategy-compute.ts';
import type { ComputeSpec } from './strategy-compute.ts';

export { etagOf } from './strategy-compute.ts';

/**
 * The files a page may download, by the name used in the URL. item_emb.q8 only where the manifest
 * pins it (version 2): `ServedModel.files` holds the ones a model has.
 */
export const SERVED_FILES = ['manifest.json', 'items.json', 'backbone.json', 'backbone.bin', 'gru.json', 'gru.bin', ITEM_TABLE_FILE] as const;
export type ServedFileName = (typeof SERVED_FILES)[number];

export interface StaticFile {
  readonly bytes: Buffer;
  /** Strong ETag (quoted), from the SHA-256 of the bytes. */
  readonly etag: string;
  readonly contentType: string;
}

export interface ServedModel {
  readonly modelId: string;
  readonly dir: string;
  readonly manifest: ModelManifest;
  readonly hypernetConfig: HypernetConfig;
  readonly hypernet: BatchedHypernet;
  /** z batch -> answers on this thread (the server's `workers: 0` path). */
  readonly compute: StrategyCompute;
  /** What a compute worker needs to build its own copy of `compute`. */
  readonly computeSpec: ComputeSpec;
  /** Per quantizable layer: row length and frozen per-channel ranges, in layer order (T's input). */
  readonly frozen: readonly FrozenLayerInfo[];
  readonly rowLengths: readonly number[];
  readonly totalChannels: number;
  /** The page files this model has (SERVED_FILES, less item_emb.q8 for a version-1 model). */
  readonly files: ReadonlyMap<ServedFileName, StaticFile>;
  /** Weight-weighted average bits of a strategy for this model. */
  averageBits(strategy: Strategy): number;
}

async function readRequired(dir: string, name: string): Promise<Buffer> {
  try {
    return await readFile(join(dir, name));
  } catch (error) {
    throw new ModelLoadError(dir, `cannot read ${name}: ${(error as Error).message}`, { cause: error });
  }
}

function parseJson(dir: string, name: string, bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new ModelLoadError(dir, `${name} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

/** Re-throws core's validation errors as ModelLoadError naming the directory. */
function wrap<T>(dir: string, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ModelLoadError) throw error;
    const message = error instanceof ChordError ? error.message : String(error);
    throw new ModelLoadError(dir, `${what}: ${message}`, { cause: error });
  }
}

function checkLayersMatch(dir: string, manifest: ModelManifest, config: HypernetConfig): void {
  if (config.zDim !== manifest.userDim) {
    throw new ModelLoadError(dir, `hypernet zDim ${config.zDim} != manifest userDim ${manifest.userDim}`);
  }
  if (config.layers.length !== manifest.layers.length) {
    throw new ModelLoadError(dir, `hypernet has ${config.layers.length} layers, manifest ${manifest.layers.length}`);
  }
  config.layers.forEach((h, i) => {
    const m = manifest.layers[i]!;
    if (h.name !== m.name || h.outChannels !== m.outChannels || h.rowLength !== m.rowLength) {
      throw new ModelLoadError(
        dir,
        `hypernet layer ${i} is ${h.name} [${h.outChannels}x${h.rowLength}], manifest has ${m.name} [${m.outChannels}x${m.rowLength}]`,
      );
    }
  });
}

/**
 * The tensors of a tensor file whose names are in `names`, decoded as core's decodeTensorFile
 * decodes them (the index is checked whole); the others are left undecoded.
 */
export function decodeNamedTensors(index: TensorIndex, bin: Uint8Array, names: ReadonlySet<string>): TensorMap {
  return decodeTensorFile({ ...index, tensors: index.tensors.filter((t) => names.has(t.name)) }, bin);
}

/**
 * A version-2 model's item_emb.q8, checked as the page checks it (length and SHA-256 against the
 * manifest, core's layout); undefined for version 1. Its bytes are served as they are: nothing
 * decoded from them is kept.
 */
export async function readItemTable(dir: string, manifest: ModelManifest, backboneIndex: TensorIndex): Promise<Buffer | undefined> {
  const pinned = manifest.itemTable;
  if (!pinned) return undefined;
  if (backboneIndex.tensors.some((t) => t.name === 'item_emb')) {
    throw new ModelLoadError(dir, `backbone.bin holds item_emb although the manifest ships it as ${pinned.file}`);
  }
  const bytes = await readRequired(dir, pinned.file);
  // A copy the size of the table, checked and let go (the Buffer may sit in Node's shared pool).
  const own = new Uint8Array(bytes.byteLength);
  own.set(bytes);
  const sha256 = await sha256Hex(own);
  wrap(dir, pinned.file, () => itemTableFromFile(manifest, own, sha256));
  return bytes;
}

/** Loads and checks one model directory (see the module comment). */
export async function loadServedModel(dir: string): Promise<ServedModel> {
  const manifestBytes = await readRequired(dir, 'manifest.json');
  const manifest = wrap(dir, 'manifest.json', () => parseManifest(parseJson(dir, 'manifest.json', manifestBytes)));
  const dirName = dir.split(/[\\/]/).filter(Boolean).pop();
  if (dirName !== manifest.modelId) {
    throw new ModelLoadError(dir, `directory name "${dirName}" differs from modelId "${manifest.modelId}"`);
  }
  // The page's tensor files: read (and size-checked) first, since shipped frozen weights live in backbone.bin.
  const tensorFiles = new Map<'backbone' | 'gru', { indexBytes: Buffer; index: TensorIndex; bin: Buffer }>();
  for (const name of ['backbone', 'gru'] as const) {
    const indexBytes = await readRequired(dir, `${name}.json`);
    const bin = await readRequired(dir, `${name}.bin`);
    const index = wrap(dir, `${name}.json`, () => parseTensorIndex(parseJson(dir, `${name}.json`, indexBytes)));
    if (index.byteLength !== bin.byteLength) {
      throw new ModelLoadError(dir, `${name}.bin has ${bin.byteLength} bytes, ${name}.json says ${index.byteLength}`);
    }
    tensorFiles.set(name, { indexBytes, index, bin });
  }
  const backboneFile = tensorFiles.get('backbone')!;
  const itemTable = await readItemTable(dir, manifest, backboneFile.index);
  // Only the layer weights the frozen check reads are decoded: the item tables (item_emb, Caser's
  // out_emb), most of the file at shop size, are served as bytes and never read here.
  const layerNames = new Set(manifest.layers.map((l) => l.name));
  const backbone = wrap(dir, 'backbone.json/.bin', () => decodeNamedTensors(backboneFile.index, backboneFile.bin, layerNames));
  let frozenLayers;
  try {
    frozenLayers = await resolveFrozenWeights(manifest, backbone);
  } catch (error) {
    throw new ModelLoadError(dir, `frozen weights: ${(error as Error).message}`, { cause: error });
  }
  const frozen: FrozenLayerInfo[] = frozenLayers.map((l) => ({
    rowLength: l.spec.rowLength,
    ranges: channelRangesFromWeights(l.weights, l.spec.outChannels, l.spec.rowLength),
  }));

  const hypernetBytes = await readRequired(dir, 'hypernet.json');
  const hypernetConfig = wrap(dir, 'hypernet.json', () => parseHypernetConfig(parseJson(dir, 'hypernet.json', hypernetBytes)));
  checkLayersMatch(dir, manifest, hypernetConfig);
  const hyperIndex = parseJson(dir, 'hyper.json', await readRequired(dir, 'hyper.json'));
  const hyperBin = await readRequired(dir, 'hyper.bin');
  const tensors = wrap(dir, 'hyper.json/.bin', () => decodeTensorFile(hyperIndex, hyperBin));
  const computeSpec: ComputeSpec = {
    modelId: manifest.modelId,
    frozenWeightsHash: manifest.frozenWeightsHash,
    hypernetConfig,
    hypernetTensors: tensors,
    frozen,
  };
  const compute = wrap(dir, 'hypernet tensors', () => new StrategyCompute(computeSpec));

  const files = new Map<ServedFileName, StaticFile>();
  files.set('manifest.json', { bytes: manifestBytes, etag: etagOf(manifestBytes), contentType: 'application/json' });
  const itemsBytes = await readRequired(dir, 'items.json');
  const items = parseJson(dir, 'items.json', itemsBytes);
  // Index 0 is the padding slot; ids 1..numItems must all be present so the page can map every item.
  if (!Array.isArray(items) || items.length !== manifest.numItems + 1 || !items.every((x) => typeof x === 'string')) {
    throw new ModelLoadError(dir, `items.json must be an array of ${manifest.numItems + 1} strings (index 0 = padding)`);
  }
  files.set('items.json', { bytes: itemsBytes, etag: etagOf(itemsBytes), contentType: 'application/json' });
  for (const [name, { indexBytes, bin }] of tensorFiles) {
    files.set(`${name}.json`, { bytes: indexBytes, etag: etagOf(indexBytes), contentType: 'application/json' });
    files.set(`${name}.bin`, { bytes: bin, etag: etagOf(bin), contentType: 'application/octet-stream' });
  }
  if (itemTable) files.set(ITEM_TABLE_FILE, { bytes: itemTable, etag: etagOf(itemTable), contentType: 'application/octet-stream' });

  const rowLengths = manifest.layers.map((l) => l.rowLength);
  return {
    modelId: manifest.modelId,
    dir,
    manifest,
    hypernetConfig,
    hypernet: compute.hypernet,
    compute,
    computeSpec,
    frozen,
    rowLengths,
    totalChannels: manifest.layers.reduce((s, l) => s + l.outChannels, 0),
    files,
    averageBits: (strategy) => averageBits(strategy, rowLengths),
  };
}

/**
 * Loads every subdirectory of `modelsDir` that holds a manifest.json. Throws ModelLoadError if
 * one of them is broken (a server must not start half-configured) or if there is none.
 */
export async function loadServedModels(modelsDir: string): Promise<Map<string, ServedModel>> {
  let entries: string[];
  try {
    entries = (await readdir(modelsDir)).sort();
  } catch (error) {
    throw new ModelLoadError(modelsDir, `cannot list models: ${(error as Error).message}`, { cause: error });
  }
  const models = new Map<string, ServedModel>();
  for (const entry of entries) {
    const dir = join(modelsDir, entry);
    const isModel = await stat(join(dir, 'manifest.json')).then((s) => s.isFile(), () => false);
    if (!isModel) continue;
    const model = await loadServedModel(dir);
    models.set(model.modelId, model);
  }
  if (models.size === 0) throw new ModelLoadError(modelsDir, 'no model directory (<modelId>/manifest.json) found');
  return models;
}
