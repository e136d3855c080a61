/**
 * A model folder at shop scale for the benchmark, without training (speed does not depend on the
 * values): the bench's seeded SASRec tensors (model.ts: benchModel) at `numItems` items, a seeded
 * GRU, written by the artifact export of src/model (writeArtifact: manifest.json, items.json,
 * backbone.json/.bin, gru.json/.bin, training.json, and the item table as item_emb.q8 in the
 * page's 8-bit layout, manifest version 2; `itemTable: 'fp32'` writes it as float32 item_emb in
 * backbone.bin, version 1, for comparison) so that the page loads it like any trained model. The
 * frozen weights are the seed's (a seed manifest): nothing to ship for them.
 *
 *   writeShopModel('.cache/bench-gpu/models', { numItems: 18357, seed: 7 })
 *
 * Node only (node:fs). Amazon Sports has 18,357 items after 5-core filtering, Toys 11,924.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fillUniform, streamId } from '../../../src/core/prng.ts';
import { buildManifest, ITEM_TABLE_FILE } from '../../../src/core/manifest.ts';
import type { TensorMap } from '../../../src/core/tensor-file.ts';
import { writeArtifact } from '../../../src/model/export.ts';
import { benchModel } from './model.ts';

export interface ShopModelOptions {
  readonly numItems: number;
  readonly seed: number;
  /** GRU width = length of z (the page's profile). */
  readonly userDim?: number;
  /** How the item table ships (src/model/export.ts WriteArtifactOptions); default 'q8'. */
  readonly itemTable?: 'q8' | 'fp32';
}

export interface ShopModelFolder {
  readonly dir: string;
  readonly modelId: string;
  /** Bytes of every file the page downloads, by name. */
  readonly pageFiles: Record<string, number>;
}

/** The model id of a shop-scale bench model. */
export function shopModelId(o: ShopModelOptions): string {
  return `sasrec-bench-${o.numItems}-s${o.seed}`;
}

/** The GRU the page runs over clicks (gru.* tensors): seeded uniform, as PyTorch initialises it. */
export function shopGru(hidden: number, userDim: number, seed: number): TensorMap {
  const bound = 1 / Math.sqrt(userDim);
  const t = (name: string, shape: number[]) => {
    const data = fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1)), seed, streamId(name), -bound, bound);
    return [name, { shape, data }] as const;
  };
  return new Map([
    t('gru.weight_ih', [3 * userDim, hidden]),
    t('gru.weight_hh', [3 * userDim, userDim]),
    t('gru.bias_ih', [3 * userDim]),
    t('gru.bias_hh', [3 * userDim]),
  ]);
}

export async function writeShopModel(modelsDir: string, o: ShopModelOptions): Promise<ShopModelFolder> {
  const model = benchModel(o.seed, o.numItems);
  const userDim = o.userDim ?? 32;
  const modelId = shopModelId(o);
  const manifest = await buildManifest({ ...model.config, modelId, numItems: o.numItems, userDim, seed: model.frozenSeed });
  const dir = join(modelsDir, modelId);
  writeArtifact(
    dir,
    {
      manifest,
      items: ['[PAD]', ...Array.from({ length: o.numItems }, (_, i) => `item-${i + 1}`)],
      backbone: model.tensors,
      gru: shopGru(model.config.dims.hidden, userDim, o.seed + 2),
      training: { method: 'untrained', note: 'seeded weights for npm run bench:gpu (tools/bench/gpu/shop-model.ts); speed does not depend on training' },
    },
    { itemTable: o.itemTable ?? 'q8' },
  );
  const pageFiles: Record<string, number> = {};
  for (const f of ['manifest.json', 'items.json', 'backbone.json', 'backbone.bin', ITEM_TABLE_FILE, 'gru.json', 'gru.bin']) {
    if (existsSync(join(dir, f))) pageFiles[f] = statSync(join(dir, f)).size;
  }
  return { dir, modelId, pageFiles };
}
