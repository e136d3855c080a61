/**
 * `chord-rerank export-page <artifact> <out> [--item-table q8|fp32]`: writes the files a page may
 * see of a trained artifact directory (manifest.json, items.json, backbone.json|.bin, gru.json|.bin,
 * and item_emb.q8 where the manifest pins it: the same list the strategy server serves) into a
 * folder a static host or CDN can publish as it is. The hypernets (hypernet.json, hyper.*) and
 * training.json stay behind: they are the cloud's model of every shopper and must never reach a page.
 *
 * The item table leaves in the layout asked for. 'q8' (the default): the 8-bit table file and a
 * version-2 manifest, a quarter of the float32 table's download; a version-1 artifact (training
 * writes those, so that runs compare on the same float32 table) is converted. 'fp32': item_emb in
 * backbone.bin and a version-1 manifest, for pages older than version 2; a version-2 artifact's
 * table is written as the exact float32 values its codes stand for, so both exports rank alike.
 * An artifact already in the layout asked for is copied byte for byte.
 */
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '../core/hash.ts';
import { itemTableFromBytes, joinItemTable, splitItemTable } from '../core/item-table.ts';
import { ITEM_TABLE_FILE, manifestItemDim, parseManifest, withItemTableFile } from '../core/manifest.ts';
import type { ModelManifest } from '../core/manifest.ts';
import { decodeTensorFile, encodeTensorFile, parseTensorIndex, type TensorIndex, type TensorMap } from '../core/tensor-file.ts';
import { readItemTable, SERVED_FILES } from './artifacts.ts';
import type { ServedFileName } from './artifacts.ts';
import { ModelLoadError } from './errors.ts';

export const EXPORT_PAGE_USAGE = `usage: chord-rerank export-page <artifact dir> <out dir> [--item-table q8|fp32]
  Writes the files a page loads (${SERVED_FILES.join(', ')}; ${ITEM_TABLE_FILE} where the
  manifest pins it) of a trained artifact
  (the folder \`npm run train\` writes, holding manifest.json) into <out dir>, and nothing else:
  hypernet.json, hyper.* and training.json are read by the strategy server only.
  <out dir> may exist, but only with page files in it (an earlier export).
  --item-table q8    (default) the item table as ${ITEM_TABLE_FILE}, 8 bits per value (manifest
                     version 2): a version-1 artifact is converted
  --item-table fp32  the item table in backbone.bin as float32 (manifest version 1), for pages
                     older than version 2`;

/** The item table's layout in an export: see the module comment. */
export type ExportItemTable = 'q8' | 'fp32';

export const EXPORT_ITEM_TABLES: readonly ExportItemTable[] = ['q8', 'fp32'];

export interface ExportPageOptions {
  /** Default 'q8'. */
  readonly itemTable?: ExportItemTable;
}

const PAGE_FILES: ReadonlySet<string> = new Set(SERVED_FILES);

async function readText(dir: string, name: string): Promise<string> {
  try {
    return await readFile(join(dir, name), 'utf8');
  } catch (error) {
    throw new ModelLoadError(dir, `cannot read ${name}: ${(error as Error).message}`, { cause: error });
  }
}

function parseJson(dir: string, name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError(dir, `${name} is not JSON: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Checks what a page will check first (the manifest parses, items.json has numItems + 1 ids, the
 * tensor indexes parse and their .bin files exist, a pinned item table has its length and hash),
 * then writes the page files, converting the item table where the artifact holds it in the other
 * layout. Returns the names written, in SERVED_FILES order.
 */
export async function exportPage(artifactDir: string, outDir: string, options: ExportPageOptions = {}): Promise<ServedFileName[]> {
  const target = options.itemTable ?? 'q8';
  if (!EXPORT_ITEM_TABLES.includes(target)) throw new TypeError(`itemTable must be one of ${EXPORT_ITEM_TABLES.join(', ')}, got ${String(target)}`);
  const manifestJson = parseJson(artifactDir, 'manifest.json', await readText(artifactDir, 'manifest.json'));
  let manifest: ModelManifest;
  try {
    manifest = parseManifest(manifestJson);
  } catch (error) {
    throw new ModelLoadError(artifactDir, `manifest.json: ${(error as Error).message}`, { cause: error });
  }
  const numItems = manifest.numItems;
  const items = parseJson(artifactDir, 'items.json', await readText(artifactDir, 'items.json'));
  if (!Array.isArray(items) || items.length !== numItems + 1 || !items.every((x) => typeof x === 'string')) {
    throw new ModelLoadError(artifactDir, `items.json must be an array of ${numItems + 1} strings (index 0 = padding)`);
  }
  const present = new Set(await readdir(artifactDir));
  const indexes = new Map<'backbone' | 'gru', TensorIndex>();
  for (const tensors of ['backbone', 'gru'] as const) {
    const index = parseJson(artifactDir, `${tensors}.json`, await readText(artifactDir, `${tensors}.json`));
    try {
      indexes.set(tensors, parseTensorIndex(index));
    } catch (error) {
      throw new ModelLoadError(artifactDir, `${tensors}.json: ${(error as Error).message}`, { cause: error });
    }
    if (!present.has(`${tensors}.bin`)) throw new ModelLoadError(artifactDir, `${tensors}.bin is missing`);
  }
  if (manifest.itemTable && !present.has(ITEM_TABLE_FILE)) throw new ModelLoadError(artifactDir, `${ITEM_TABLE_FILE} is missing`);
  const backboneIndex = indexes.get('backbone')!;
  const tableBytes = manifest.itemTable ? await readItemTable(artifactDir, manifest, backboneIndex) : undefined;
  // Converted before anything is written, so a table that fails its checks leaves <out dir> as it was.
  const converted = (target === 'q8') !== (tableBytes !== undefined) ? await convertItemTable(artifactDir, manifest, backboneIndex, tableBytes) : undefined;

  let existing: string[] = [];
  try {
    existing = await readdir(outDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new ModelLoadError(outDir, `cannot list: ${(error as Error).message}`, { cause: error });
  }
  const foreign = existing.filter((name) => !PAGE_FILES.has(name));
  if (foreign.length > 0) {
    // A page folder holding anything else (hyper.bin from a copied artifact, say) would be published with it.
    throw new ModelLoadError(outDir, `holds files a page must not see (${foreign.join(', ')}); export into an empty folder`);
  }
  await mkdir(outDir, { recursive: true });
  const written: ServedFileName[] = [];
  for (const name of SERVED_FILES) {
    if (name === ITEM_TABLE_FILE && target === 'fp32') {
      // A version-1 export has no table file: one from an earlier export would be a file no manifest pins.
      await rm(join(outDir, name), { force: true });
      continue;
    }
    const bytes = converted?.get(name);
    if (bytes) await writeFile(join(outDir, name), bytes);
    else await copyFile(join(artifactDir, name), join(outDir, name));
    written.push(name);
  }
  return written;
}

/**
 * The page files that change when the item table changes layout (manifest.json, backbone.json,
 * backbone.bin, and item_emb.q8 when it is created), as bytes to write.
 */
async function convertItemTable(
  artifactDir: string,
  manifest: ModelManifest,
  backboneIndex: TensorIndex,
  tableBytes: Uint8Array | undefined,
): Promise<Map<ServedFileName, Uint8Array>> {
  const bin = await readFile(join(artifactDir, 'backbone.bin'));
  let backbone: TensorMap;
  try {
    backbone = decodeTensorFile(backboneIndex, bin);
  } catch (error) {
    throw new ModelLoadError(artifactDir, `backbone.json/.bin: ${(error as Error).message}`, { cause: error });
  }
  const rows = manifest.numItems + 1;
  const dim = manifestItemDim(manifest);
  const out = new Map<ServedFileName, Uint8Array>();
  let pageBackbone: TensorMap;
  let sha: string | undefined;
  try {
    if (tableBytes) {
      pageBackbone = joinItemTable(backbone, itemTableFromBytes(new Uint8Array(tableBytes), rows, dim));
    } else {
      const split = splitItemTable(backbone, rows, dim);
      if (!split) throw new Error('backbone.bin holds no item_emb to write as the 8-bit table');
      pageBackbone = split.rest;
      out.set(ITEM_TABLE_FILE, split.table.bytes);
      sha = await sha256Hex(split.table.bytes);
    }
  } catch (error) {
    throw new ModelLoadError(artifactDir, `item table: ${(error as Error).message}`, { cause: error });
  }
  const { index, bin: pageBin } = encodeTensorFile(pageBackbone);
  out.set('backbone.json', new TextEncoder().encode(JSON.stringify(index)));
  out.set('backbone.bin', pageBin);
  out.set('manifest.json', new TextEncoder().encode(JSON.stringify(withItemTableFile(manifest, sha), null, 1)));
  return out;
}
