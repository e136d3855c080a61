/**
 * The model artifact directory the page and the strategy server load (src/cloud/artifacts.ts
 * documents the contract), written from a trained run and read back with core's own parsers:
 *
 *   manifest.json         core ModelManifest (seed of the frozen weights + their SHA-256)
 *   items.json            the dataset's item ids by dense index, ["[PAD]", id1, ...]
 *   backbone.json/.bin    trained tensors: item_emb, pos_emb, biases, norms (Caser: out_emb,
 *                         out_bias, user_emb_mean instead of the per-user table); a backbone whose
 *                         linear/conv weights are not the seed's (Base, frozen-pretrained) also
 *                         ships them here under their layer names (e.g. `block0.attn.q`),
 *                         and then the manifest says `frozenWeights: 'shipped'` and hashes those
 *                         (writeArtifact makes it so, whatever manifest it is given)
 *   gru.json/.bin         the profiler GRU (gru.weight_ih, ...)
 *   hypernet.json         core HypernetConfig            (absent for Base: nothing to allocate)
 *   hyper.json/.bin       hypernet tensors (hyper.*)
 *   training.json         method, options, epochs, metrics, timings, command line
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LayerSpec } from '../core/backbones.ts';
import { frozenWeightsBytes, shippedFrozenWeights, ShippedWeightsError } from '../core/frozen.ts';
import { parseHypernetConfig, type HypernetConfig } from '../core/hypernet.ts';
import { FrozenHashMismatchError, frozenWeightsOrigin, parseManifest, type ModelManifest } from '../core/manifest.ts';
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

/** SHA-256 of frozen weights, synchronously (node:crypto) over the bytes core's hashFrozenWeights hashes. */
function frozenHashSync(layers: Parameters<typeof frozenWeightsBytes>[0]): string {
  return createHash('sha256').update(frozenWeightsBytes(layers)).digest('hex');
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

/**
 * Writes every file of the artifact into `dir` (created if needed). The manifest written is
 * manifestForBackbone(files.manifest, files.backbone).
 */
export function writeArtifact(dir: string, files: ArtifactFiles): void {
  mkdirSync(dir, { recursive: true });
  if (files.items.length !== files.manifest.numItems + 1) {
    throw new ChordTrainError('CHORD_BAD_ARTIFACT', `${files.items.length} item ids for ${files.manifest.numItems} items + padding`);
  }
  const manifest = manifestForBackbone(files.manifest, files.backbone);
  writeFileAtomic(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));
  writeFileAtomic(join(dir, 'items.json'), JSON.stringify(files.items));
  writeTensors(dir, 'backbone', files.backbone);
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
  const backbone = readTensors(dir, 'backbone');
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

/** core's shippedFrozenWeights, its errors as this module's CHORD_BAD_ARTIFACT. */
function shippedLayers(backbone: TensorMap, layers: readonly LayerSpec[]) {
  try {
    return shippedFrozenWeights(layers, backbone);
  } catch (error) {
    if (error instanceof ShippedWeightsError) throw new ChordTrainError('CHORD_BAD_ARTIFACT', error.message, { cause: error });
    throw error;
  }
}
