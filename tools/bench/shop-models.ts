/**
 * Shop-size model folders for the server benchmark, written from seeded random weights without
 * any training (the server's speed and memory do not depend on what the weights are worth).
 *
 * A folder has every file of the artifact contract (src/cloud/artifacts.ts, as src/model/export.ts
 * writes it) with a trained model's shapes at shop size:
 *   manifest.json        frozenWeights 'shipped' (a trained fp32 backbone, the default deployment),
 *                        version 2: the item table is item_emb.q8
 *   items.json           ["[PAD]", numItems Amazon-like ids ("B0" + 8 characters)]
 *   item_emb.q8          item_emb [n+1, 64] in the page's 8-bit layout (src/core/item-table.ts), as
 *                        the export writes it (`itemTable: 'fp32'` keeps it in backbone.bin instead)
 *   backbone.json/.bin   SASRec: pos_emb [50, 64], layer biases, layer norms;
 *                        Caser: out_emb [n+1, 128], out_bias [n+1], user_emb_mean [64], layer
 *                        biases; both ship the layer weights
 *   gru.json/.bin        the profiler GRU (z 32, input = the item embedding width)
 *   hypernet.json, hyper.json/.bin   CHORD hypernet (hidden 64, rank 2: CHORD_DEFAULTS)
 *
 * The catalogue sizes are the Amazon 5-core sets the reproduction uses: Toys 11,924 items,
 * Sports 18,357.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { backboneLayers, DEFAULT_CASER_DIMS, DEFAULT_SASREC_DIMS } from '../../src/core/backbones.ts';
import type { BackboneConfig } from '../../src/core/backbones.ts';
import { generateFrozenWeights } from '../../src/core/frozen.ts';
import type { HypernetConfig } from '../../src/core/hypernet.ts';
import { sha256Hex } from '../../src/core/hash.ts';
import { quantizeItemTable } from '../../src/core/item-table.ts';
import { buildManifest, ITEM_TABLE_FILE, withItemTableFile } from '../../src/core/manifest.ts';
import type { ModelManifest } from '../../src/core/manifest.ts';
import { encodeTensorFile } from '../../src/core/tensor-file.ts';
import type { TensorMap } from '../../src/core/tensor-file.ts';
import { hypernetTensors } from '../../tests/fixtures/artifacts.ts';
import { mulberry32 } from '../../tests/fixtures/mulberry32.ts';

export const TOYS_ITEMS = 11_924;
export const SPORTS_ITEMS = 18_357;

export interface ShopModelSpec {
  readonly modelId: string;
  readonly backbone: 'sasrec' | 'caser';
  readonly numItems: number;
  readonly seed: number;
  /** How the item table ships (as src/model/export.ts WriteArtifactOptions); default 'q8'. */
  readonly itemTable?: 'q8' | 'fp32';
}

/** Two backbones × two catalogues: what a shop's strategy server may hold at once. */
export const SHOP_MODELS: readonly ShopModelSpec[] = [
  { modelId: 'sasrec-toys', backbone: 'sasrec', numItems: TOYS_ITEMS, seed: 11 },
  { modelId: 'sasrec-sports', backbone: 'sasrec', numItems: SPORTS_ITEMS, seed: 12 },
  { modelId: 'caser-toys', backbone: 'caser', numItems: TOYS_ITEMS, seed: 13 },
  { modelId: 'caser-sports', backbone: 'caser', numItems: SPORTS_ITEMS, seed: 14 },
];

const Z_DIM = 32;
const HYPER_HIDDEN = 64;
const RANK = 2;

export interface ShopModel {
  readonly spec: ShopModelSpec;
  readonly dir: string;
  readonly manifest: ModelManifest;
  readonly hypernetConfig: HypernetConfig;
  /** Bytes of each file written, by name. */
  readonly fileBytes: Record<string, number>;
}

function uniform(next: () => number, shape: number[], bound: number) {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (next() * 2 - 1) * bound;
  return { shape, data };
}

function filled(shape: number[], value: number) {
  return { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value) };
}

/** Amazon-like item ids ("B0" + 8 of [0-9A-Z]), distinct, the same for a seed. */
export function shopItemIds(numItems: number, seed: number): string[] {
  const next = mulberry32(seed ^ 0x1d872b41);
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const seen = new Set<string>();
  const ids = ['[PAD]'];
  while (ids.length <= numItems) {
    let id = 'B0';
    for (let k = 0; k < 8; k++) id += alphabet[Math.floor(next() * alphabet.length)];
    if (seen.has(id)) continue;
    seen.add(id);
    ids.push(id);
  }
  return ids;
}

async function writeTensors(dir: string, name: string, tensors: TensorMap, sizes: Record<string, number>): Promise<void> {
  const { index, bin } = encodeTensorFile(tensors);
  const json = JSON.stringify(index);
  await writeFile(join(dir, `${name}.json`), json);
  await writeFile(join(dir, `${name}.bin`), bin);
  sizes[`${name}.json`] = Buffer.byteLength(json);
  sizes[`${name}.bin`] = bin.byteLength;
}

/** Writes <modelsDir>/<spec.modelId>/ (see the module comment). */
export async function writeShopModel(modelsDir: string, spec: ShopModelSpec): Promise<ShopModel> {
  const config: BackboneConfig =
    spec.backbone === 'sasrec' ? { backbone: 'sasrec', dims: DEFAULT_SASREC_DIMS } : { backbone: 'caser', dims: DEFAULT_CASER_DIMS };
  const d = config.backbone === 'sasrec' ? config.dims.hidden : config.dims.d;
  const layers = backboneLayers(config);
  // The layer weights a trained backbone ships: seeded uniform draws with the layers' own inits.
  const shipped: TensorMap = new Map();
  for (const l of generateFrozenWeights({ seed: spec.seed + 1000, layers })) shipped.set(l.spec.name, { shape: [...l.spec.shape], data: l.weights });
  const fp32Manifest = await buildManifest({
    ...config,
    modelId: spec.modelId,
    numItems: spec.numItems,
    userDim: Z_DIM,
    seed: spec.seed,
    backboneTensors: shipped,
  });

  const next = mulberry32(spec.seed ^ 0x5bd1e995);
  const n = spec.numItems + 1;
  const backbone: TensorMap = new Map();
  backbone.set('item_emb', uniform(next, [n, d], 0.1));
  if (config.backbone === 'sasrec') {
    backbone.set('pos_emb', uniform(next, [config.dims.maxLen, d], 0.1));
    for (let b = 0; b < config.dims.blocks; b++) {
      for (const ln of ['ln_attn', 'ln_ffn']) {
        backbone.set(`block${b}.${ln}.gamma`, filled([d], 1));
        backbone.set(`block${b}.${ln}.beta`, filled([d], 0));
      }
    }
    backbone.set('final_ln.gamma', filled([d], 1));
    backbone.set('final_ln.beta', filled([d], 0));
  } else {
    backbone.set('out_emb', uniform(next, [n, 2 * d], 0.05));
    backbone.set('out_bias', uniform(next, [n], 0.01));
    backbone.set('user_emb_mean', uniform(next, [d], 0.1));
  }
  for (const l of layers) backbone.set(`${l.name}.bias`, uniform(next, [l.outChannels], 0.01));
  for (const [name, t] of shipped) backbone.set(name, t);
  // As the export writes it: the item table in the page's 8-bit layout, out of backbone.bin.
  const table = spec.itemTable === 'fp32' ? undefined : quantizeItemTable(backbone.get('item_emb')!.data, n, d).bytes;
  if (table) backbone.delete('item_emb');
  const manifest = withItemTableFile(fp32Manifest, table ? await sha256Hex(table) : undefined);

  const gru: TensorMap = new Map([
    ['gru.weight_ih', uniform(next, [3 * Z_DIM, d], 0.1)],
    ['gru.weight_hh', uniform(next, [3 * Z_DIM, Z_DIM], 0.1)],
    ['gru.bias_ih', uniform(next, [3 * Z_DIM], 0.1)],
    ['gru.bias_hh', uniform(next, [3 * Z_DIM], 0.1)],
  ]);
  const hypernetConfig: HypernetConfig = {
    format: 'chord-hypernet',
    version: 1,
    method: 'chord',
    zDim: Z_DIM,
    hidden: HYPER_HIDDEN,
    rank: RANK,
    levelTable: [2, 4, 6, 8],
    beta: 0.125,
    lambda: { up: 1, down: 1 },
    layers: manifest.layers.map((l) => ({ name: l.name, outChannels: l.outChannels, rowLength: l.rowLength })),
  };

  const dir = join(modelsDir, spec.modelId);
  await mkdir(dir, { recursive: true });
  const sizes: Record<string, number> = {};
  const put = async (name: string, text: string) => {
    await writeFile(join(dir, name), text);
    sizes[name] = Buffer.byteLength(text);
  };
  await put('manifest.json', JSON.stringify(manifest, null, 1));
  await put('items.json', JSON.stringify(shopItemIds(spec.numItems, spec.seed)));
  if (table) {
    await writeFile(join(dir, ITEM_TABLE_FILE), table);
    sizes[ITEM_TABLE_FILE] = table.byteLength;
  }
  await writeTensors(dir, 'backbone', backbone, sizes);
  await writeTensors(dir, 'gru', gru, sizes);
  await put('hypernet.json', JSON.stringify(hypernetConfig, null, 1));
  await writeTensors(dir, 'hyper', hypernetTensors(hypernetConfig, spec.seed), sizes);
  return { spec, dir, manifest, hypernetConfig, fileBytes: sizes };
}
