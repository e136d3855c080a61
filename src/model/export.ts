/**
 * The model artifact directory the page and the strategy server load (src/cloud/artifacts.ts
 * documents the contract), written from a trained run and read back with core's own parsers:
 *
 *   manifest.json         core ModelManifest (seed of the frozen weights + their SHA-256)
 *   items.json            the dataset's item ids by dense index, ["[PAD]", id1, ...]
 *   item_emb.q8           the item table `item_emb` in core's 8-bit layout (src/core/item-table.ts:
 *                         int8 codes + one f16 scale per row), pinned by the manifest (version 2,
 *                         `itemTable`): the page stores and scores with exactly these bytes, so it
 *                         downloads a quarter of the float32 table and quantizes nothing
 *   backbone.json/.bin    trained tensors: pos_emb, biases, norms (Caser: out_emb, out_bias,
 *                         user_emb_mean instead of the per-user table), and item_emb only in the
 *                         float32 layout (`itemTable: 'fp32'`, a version-1 manifest); a backbone whose
 *                         linear/conv weights are not the seed's (Base, frozen-pretrained) also
 *                         ships them here under their layer names (e.g. `block0.attn.q`),
 *                         and then the manifest says `frozenWeights: 'shipped'` and hashes those
 *                         (writeArtifact makes it so, whatever manifest it is given)
 *   gru.json/.bin         the profiler GRU (gru.weight_ih, ...)
 *   hypernet.json         core HypernetConfig            (absent for Base: nothing to allocate)
 *   hyper.json/.bin       hypernet tensors (hyper.*)
 *   training.json         method, options, epochs, metrics, timings, command line
 *
 * readArtifact gives back the backbone with item_emb in either layout: from a version-2 artifact,
 * the 8-bit table's exact float32 values (what the page and its CPU path score with), so Node-side
 * evaluation of a new artifact sees the page's numbers; from a version-1 artifact, the float32
 * table as before, so existing artifacts evaluate exactly as they always did.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LayerSpec } from '../core/backbones.ts';
import { frozenWeightsBytes, shippedFrozenWeights, ShippedWeightsError } from '../core/frozen.ts';
import { parseHypernetConfig, type HypernetConfig } from '../core/hypernet.ts';
import { joinItemTable, splitItemTable } from '../core/item-table.ts';
import {
  FrozenHashMismatchError,
  frozenWeightsOrigin,
  ITEM_TABLE_FILE,
  itemTableFromFile,
  manifestItemDim,
  parseManifest,
  withItemTableFile,
  type ModelManifest,
} from '../core/manifest.ts';
import { decodeTensorFile, encodeTensorFile, type TensorMap } from '../core/tensor-file.ts';
import { writeFileAtomic } from './checkpoint.ts';
import { ChordTrainError } from './chord/errors.ts';

export interface ArtifactFiles {
  readonly manifest: ModelManifest;
  /** Item ids by dense index; [0] is the padding token. */
  readonly items: readonly string[];
  readonly backbone: TensorMap;
  readonly gru: TensorMap;
  readonly hypernet?: { readonly config: HypernetConfig; readonly tensors: TensorMap };
  readonly training: Record<string, unknown>;
}

/** A lower-case slug as manifests require ("SASRec ml-100k/chord" -> "sasrec-ml-100k-chord"). */
export function slugify(text: string): string {
  const slug = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/g, '');
  if (slug === '') throw new ChordTrainError('CHORD_BAD_OPTION', `cannot make a model id from "${text}"`);
  return slug;
}

function writeTensors(dir: string, name: string, tensors: TensorMap): void {
  const { index, bin } = encodeTensorFile(tensors);
  writeFileAtomic(join(dir, `${name}.bin`), bin);
  writeFileAtomic(join(dir, `${name}.json`), JSON.stringify(index));
}

function sha256Sync(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** SHA-256 of frozen weights, synchronously (node:crypto) over the bytes core's hashFrozenWeights hashes. */
function frozenHashSync(layers: Parameters<typeof frozenWeightsBytes>[0]): string {
  return sha256Sync(frozenWeightsBytes(layers));
}

/**
 * The manifest that belongs with `backbone`: when the backbone ships the layer weights, one that
 * says `frozenWeights: 'shipped'` and pins their hash (the training loop builds its manifest from
 * the seed before it knows what it ships); otherwise the manifest as given, which must then be a
 * seed one.
 */
export function manifestForBackbone(manifest: ModelManifest, backbone: TensorMap): ModelManifest {
  const shipped = shippedLayers(backbone, manifest.layers);
  if (!shipped) {
    if (frozenWeightsOrigin(manifest) === 'shipped') {
      throw new ChordTrainError('CHORD_BAD_ARTIFACT', "manifest says frozenWeights 'shipped' but the backbone ships no layer weights");
    }
    return manifest;
  }
  return parseManifest({ ...manifest, frozenWeights: 'shipped', frozenWeightsHash: frozenHashSync(shipped) });
}

export interface WriteArtifactOptions {
  /**
   * How the item table travels: 'q8' (default) as item_emb.q8 in core's 8-bit layout with a
   * version-2 manifest; 'fp32' as float32 item_emb in backbone.bin with a version-1 manifest, the
   * layout pages before version 2 read (they refuse version 2 with a ManifestError).
   */
  readonly itemTable?: 'q8' | 'fp32';
}

/**
 * The item table's 8-bit bytes and the backbone without it; CHORD_BAD_ARTIFACT when item_emb is
 * misshapen. A backbone without item_emb (a partial one, as some tests write) has nothing to ship
 * in 8 bits: undefined, and it is written as version 1.
 */
function itemTableOf(manifest: ModelManifest, backbone: TensorMap): { table: Uint8Array; rest: TensorMap } | undefined {
  try {
    const split = splitItemTable(backbone, manifest.numItems + 1, manifestItemDim(manifest));
    return split && { table: split.table.bytes, rest: split.rest };
  } catch (cause) {
    throw new ChordTrainError('CHORD_BAD_ARTIFACT', `item_emb: ${(cause as Error).message} (the manifest has ${manifest.numItems} items + padding)`, { cause });
  }
}

/**
 * Writes every file of the artifact into `dir` (created if needed). The manifest written is
 * manifestForBackbone(files.manifest, files.backbone), at the version of the item table's layout
 * (see WriteArtifactOptions). Writing an artifact read back from either layout gives the same
 * files as writing the original: quantizing the 8-bit table's own values gives the same bytes.
 */
export function writeArtifact(dir: string, files: ArtifactFiles, options: WriteArtifactOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  if (files.items.length !== files.manifest.numItems + 1) {
    throw new ChordTrainError('CHORD_BAD_ARTIFACT', `${files.items.length} item ids for ${files.manifest.numItems} items + padding`);
  }
  const base = manifestForBackbone(files.manifest, files.backbone);
  const q8 = (options.itemTable ?? 'q8') === 'q8' ? itemTableOf(base, files.backbone) : undefined;
  const manifest = withItemTableFile(base, q8 ? sha256Sync(q8.table) : undefined);
  if (q8) writeFileAtomic(join(dir, ITEM_TABLE_FILE), q8.table);
  // An earlier 8-bit table beside a float32 backbone would be a file no manifest pins: gone.
  else rmSync(join(dir, ITEM_TABLE_FILE), { force: true });
  writeFileAtomic(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));
  writeFileAtomic(join(dir, 'items.json'), JSON.stringify(files.items));
  writeTensors(dir, 'backbone', q8 ? q8.rest : files.backbone);
  writeTensors(dir, 'gru', files.gru);
  if (files.hypernet) {
    writeFileAtomic(join(dir, 'hypernet.json'), JSON.stringify(files.hypernet.config, null, 1));
    writeTensors(dir, 'hyper', files.hypernet.tensors);
  }
  writeFileAtomic(join(dir, 'training.json'), JSON.stringify(files.training, null, 1));
}

function readJson(dir: string, name: string): unknown {
  try {
    return JSON.parse(readFileSync(join(dir, name), 'utf8'));
  } catch (cause) {
    throw new ChordTrainError('CHORD_BAD_ARTIFACT', `cannot read ${join(dir, name)}`, { cause });
  }
}

function readTensors(dir: string, name: string): TensorMap {
  const index = readJson(dir, `${name}.json`);
  return decodeTensorFile(index, new Uint8Array(readFileSync(join(dir, `${name}.bin`))));
}

/**
 * Reads an artifact back, validating each file with core's parsers; shipped layer weights are
 * checked against the manifest's hash when it pins them. An artifact from before the manifest
 * said `frozenWeights` (seed manifest, shipped weights) still reads: writing it back with
 * writeArtifact gives it the manifest devices accept.
 */
export function readArtifact(dir: string): ArtifactFiles {
  const manifest = parseManifest(readJson(dir, 'manifest.json'));
  const items = readJson(dir, 'items.json');
  if (!Array.isArray(items) || items.length !== manifest.numItems + 1 || !items.every((x) => typeof x === 'string')) {
    throw new ChordTrainError('CHORD_BAD_ARTIFACT', `items.json must list ${manifest.numItems + 1} item ids`);
  }
  const backbone = readItemTable(dir, manifest, readTensors(dir, 'backbone'));
  if (frozenWeightsOrigin(manifest) === 'shipped') {
    const shipped = shippedLayers(backbone, manifest.layers);
    if (!shipped) throw new ChordTrainError('CHORD_BAD_ARTIFACT', `${dir}: manifest says frozenWeights 'shipped' but the backbone ships none`);
    const actual = frozenHashSync(shipped);
    if (actual !== manifest.frozenWeightsHash) throw new FrozenHashMismatchError(manifest.frozenWeightsHash, actual, 'shipped');
  }
  const gru = readTensors(dir, 'gru');
  const hypernet = existsSync(join(dir, 'hypernet.json'))
    ? { config: parseHypernetConfig(readJson(dir, 'hypernet.json')), tensors: readTensors(dir, 'hyper') }
    : undefined;
  const training = existsSync(join(dir, 'training.json')) ? (readJson(dir, 'training.json') as Record<string, unknown>) : {};
  return { manifest, items: items as string[], backbone, gru, ...(hypernet ? { hypernet } : {}), training };
}

/**
 * A version-2 artifact's backbone with item_emb put back from item_emb.q8 (checked against the
 * manifest's length and hash, and core's layout rules), as the 8-bit table's exact float32
 * values; a version-1 backbone as it is.
 */
function readItemTable(dir: string, manifest: ModelManifest, backbone: TensorMap): TensorMap {
  const pinned = manifest.itemTable;
  if (!pinned) return backbone;
  const where = join(dir, pinned.file);
  if (backbone.has('item_emb')) throw new ChordTrainError('CHORD_BAD_ARTIFACT', `${dir}: backbone.bin holds item_emb although the manifest ships it as ${pinned.file}`);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(readFileSync(where));
  } catch (cause) {
    throw new ChordTrainError('CHORD_BAD_ARTIFACT', `cannot read ${where}`, { cause });
  }
  try {
    return joinItemTable(backbone, itemTableFromFile(manifest, bytes, sha256Sync(bytes)));
  } catch (cause) {
    throw new ChordTrainError('CHORD_BAD_ARTIFACT', `${dir}: ${(cause as Error).message}`, { cause });
  }
}

/** core's shippedFrozenWeights, its errors as this module's CHORD_BAD_ARTIFACT. */
function shippedLayers(backbone: TensorMap, layers: readonly LayerSpec[]) {
  try {
    return shippedFrozenWeights(layers, backbone);
  } catch (error) {
    if (error instanceof ShippedWeightsError) throw new ChordTrainError('CHORD_BAD_ARTIFACT', error.message, { cause: error });
    throw error;
  }
}
