/**
 * `chord-rerank export-page <artifact> <out>`: copies the files a page may see out of a trained
 * artifact directory (manifest.json, items.json, backbone.json|.bin, gru.json|.bin, and item_emb.q8
 * where the manifest pins it: the same list the strategy server serves) into a folder a static
 * host or CDN can publish as it is. The
 * hypernets (hypernet.json, hyper.*) and training.json stay behind: they are the cloud's model of
 * every shopper and must never reach a page.
 */
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ITEM_TABLE_FILE, parseManifest } from '../core/manifest.ts';
import type { ModelManifest } from '../core/manifest.ts';
import { parseTensorIndex } from '../core/tensor-file.ts';
import { SERVED_FILES } from './artifacts.ts';
import type { ServedFileName } from './artifacts.ts';
import { ModelLoadError } from './errors.ts';

export const EXPORT_PAGE_USAGE = `usage: chord-rerank export-page <artifact dir> <out dir>
  Copies the files a page loads (${SERVED_FILES.join(', ')}; ${ITEM_TABLE_FILE} where the
  manifest pins it) from a trained artifact
  (the folder \`npm run train\` writes, holding manifest.json) into <out dir>, and nothing else:
  hypernet.json, hyper.* and training.json are read by the strategy server only.
  <out dir> may exist, but only with page files in it (an earlier export).`;

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
 * tensor indexes parse and their .bin files exist), then copies the page files. Returns the names
 * written, in SERVED_FILES order.
 */
export async function exportPage(artifactDir: string, outDir: string): Promise<ServedFileName[]> {
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
  for (const tensors of ['backbone', 'gru']) {
    const index = parseJson(artifactDir, `${tensors}.json`, await readText(artifactDir, `${tensors}.json`));
    try {
      parseTensorIndex(index);
    } catch (error) {
      throw new ModelLoadError(artifactDir, `${tensors}.json: ${(error as Error).message}`, { cause: error });
    }
    if (!present.has(`${tensors}.bin`)) throw new ModelLoadError(artifactDir, `${tensors}.bin is missing`);
  }
  // A version-1 artifact's page files do not include the table; a stray one is left behind.
  const pageFiles = SERVED_FILES.filter((name) => name !== ITEM_TABLE_FILE || manifest.itemTable !== undefined);
  if (manifest.itemTable && !present.has(ITEM_TABLE_FILE)) throw new ModelLoadError(artifactDir, `${ITEM_TABLE_FILE} is missing`);

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
  for (const name of pageFiles) {
    await copyFile(join(artifactDir, name), join(outDir, name));
    written.push(name);
  }
  return written;
}
