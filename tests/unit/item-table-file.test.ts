// The item table shipped as its own 8-bit file (item_emb.q8, manifest version 2): what the export
// writes and reads back, what the strategy server checks and serves, what export-page writes, and
// that version-1 artifacts (item_emb in backbone.bin) read exactly as before.
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dequantizeItemTable, itemTableByteLength, quantizeItemTable } from '../../src/core/item-table.ts';
import { parseManifest } from '../../src/core/manifest.ts';
import { decodeTensorFile } from '../../src/core/tensor-file.ts';
import type { TensorMap } from '../../src/core/tensor-file.ts';
import { loadServedModel } from '../../src/cloud/artifacts.ts';
import { ModelLoadError } from '../../src/cloud/errors.ts';
import { exportPage } from '../../src/cloud/export-page.ts';
import { createServer } from '../../src/cloud/server.ts';
import { ChordTrainError } from '../../src/model/chord/errors.ts';
import { readArtifact, writeArtifact } from '../../src/model/export.ts';
import type { ArtifactFiles } from '../../src/model/export.ts';
import { buildDemoArtifact } from '../fixtures/demo-artifact.ts';
import type { DemoArtifact } from '../fixtures/demo-artifact.ts';

const NUM_ITEMS = 300;
const DIM = 16;
let root: string;
let demo: DemoArtifact;
let files: ArtifactFiles;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'chord-q8-'));
  // A frozen-pretrained model (shipped layer weights), as trained ones are.
  demo = await buildDemoArtifact({ modelId: 'q8-model', numItems: NUM_ITEMS, shippedWeightsSeed: 5 });
  files = {
    manifest: demo.manifest,
    items: demo.items,
    backbone: demo.backbone,
    gru: demo.gru,
    hypernet: { config: demo.hypernetConfig, tensors: demo.hypernetTensors },
    training: { method: 'test' },
  };
});
afterAll(async () => rm(root, { recursive: true, force: true }));

const readTensors = async (dir: string, name: string): Promise<TensorMap> =>
  decodeTensorFile(JSON.parse(await readFile(join(dir, `${name}.json`), 'utf8')), new Uint8Array(await readFile(join(dir, `${name}.bin`))));
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function writeModel(name: string, layout?: 'q8' | 'fp32'): Promise<string> {
  const dir = join(root, name, 'q8-model');
  writeArtifact(dir, files, layout ? { itemTable: layout } : {});
  return dir;
}

describe('writeArtifact / readArtifact', () => {
  it('writes item_emb.q8 in core layout beside a backbone.bin without item_emb, pinned by a version-2 manifest', async () => {
    const dir = await writeModel('default');
    const emb = demo.backbone.get('item_emb')!;
    const expected = quantizeItemTable(emb.data, NUM_ITEMS + 1, DIM).bytes;
    const table = await readFile(join(dir, 'item_emb.q8'));
    // The very bytes the page makes from the float32 table (core's quantizer).
    expect(new Uint8Array(table)).toEqual(expected);
    expect(table.byteLength).toBe(itemTableByteLength(NUM_ITEMS + 1, DIM));
    const manifest = parseManifest(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')));
    expect(manifest).toMatchObject({ version: 2, frozenWeights: 'shipped', itemTable: { file: 'item_emb.q8', byteLength: table.byteLength, sha256: sha256(table) } });
    const backbone = await readTensors(dir, 'backbone');
    expect(backbone.has('item_emb')).toBe(false);
    expect([...backbone.keys()]).toEqual([...demo.backbone.keys()].filter((n) => n !== 'item_emb'));
    // backbone.bin is smaller by exactly the float32 table.
    const fp32Dir = await writeModel('fp32-size', 'fp32');
    const size = async (d: string, f: string) => (await readFile(join(d, f))).byteLength;
    expect(await size(fp32Dir, 'backbone.bin') - (await size(dir, 'backbone.bin'))).toBe((NUM_ITEMS + 1) * DIM * 4);

    // Read back: item_emb holds the 8-bit table's exact float32 values, every other tensor as written.
    const back = readArtifact(dir);
    expect(back.manifest).toEqual(manifest);
    expect([...back.backbone.keys()]).toEqual([...demo.backbone.keys()]);
    expect(back.backbone.get('item_emb')).toEqual({ shape: [NUM_ITEMS + 1, DIM], data: dequantizeItemTable(quantizeItemTable(emb.data, NUM_ITEMS + 1, DIM)) });
    for (const [name, t] of demo.backbone) if (name !== 'item_emb') expect(back.backbone.get(name), name).toEqual(t);

    // Writing what was read gives the same files: quantizing the table's own values changes nothing.
    const again = join(root, 'again', 'q8-model');
    writeArtifact(again, back);
    for (const f of ['manifest.json', 'item_emb.q8', 'backbone.json', 'backbone.bin', 'gru.bin']) {
      expect((await readFile(join(again, f))).equals(await readFile(join(dir, f))), f).toBe(true);
    }
  });

  it("itemTable 'fp32' writes version 1 as before (item_emb in backbone.bin) and removes an earlier item_emb.q8", async () => {
    const dir = await writeModel('switch'); // q8 first
    writeArtifact(dir, files, { itemTable: 'fp32' });
    expect((await readdir(dir)).includes('item_emb.q8')).toBe(false);
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.version).toBe(1);
    expect(manifest.itemTable).toBeUndefined();
    expect((await readTensors(dir, 'backbone')).get('item_emb')).toEqual(demo.backbone.get('item_emb'));
  });

  it('reads an existing version-1 artifact exactly as it is on disk (the committed demo model)', async () => {
    const dir = 'public/models/sasrec-demo-shop';
    const back = readArtifact(dir);
    expect(back.manifest.version).toBe(1);
    // Every tensor, item_emb included, as the float32 file holds it: Node-side evaluation sees what it always saw.
    expect(back.backbone).toEqual(await readTensors(dir, 'backbone'));
  });

  it('refuses a damaged, truncated or missing item_emb.q8, and an item_emb left in backbone.bin', async () => {
    const dir = await writeModel('damaged');
    const path = join(dir, 'item_emb.q8');
    const good = await readFile(path);
    const refuses = async (bytes: Buffer | null, message: RegExp) => {
      if (bytes) await writeFile(path, bytes);
      else await rm(path);
      let caught: unknown;
      try {
        readArtifact(dir);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(ChordTrainError);
      expect(caught).toMatchObject({ code: 'CHORD_BAD_ARTIFACT' });
      expect((caught as Error).message).toMatch(message);
      await writeFile(path, good);
    };
    await refuses(Buffer.from(good.map((b, i) => (i === 3 ? b ^ 1 : b))), /hashes to/);
    await refuses(good.subarray(0, good.byteLength - 4), /has \d+ bytes, the manifest says/);
    await refuses(null, /cannot read/);
    expect(readArtifact(dir).backbone.has('item_emb')).toBe(true);
  });
});

describe('the strategy server and export-page', () => {
  it('loads and serves a version-2 model with its item_emb.q8; a version-1 model has none to serve', async () => {
    const models = join(root, 'served');
    await cp(await writeModel('served-src'), join(models, 'q8-model'), { recursive: true });
    await cp(await writeModel('served-old', 'fp32'), join(models, 'q8-old'), { recursive: true });
    // The same model as version 1 under another id (the directory must be named after it).
    const oldManifest = JSON.parse(await readFile(join(models, 'q8-old', 'manifest.json'), 'utf8'));
    await writeFile(join(models, 'q8-old', 'manifest.json'), JSON.stringify({ ...oldManifest, modelId: 'q8-old' }));

    const served = await loadServedModel(join(models, 'q8-model'));
    expect(served.files.get('item_emb.q8')!.bytes.equals(await readFile(join(models, 'q8-model', 'item_emb.q8')))).toBe(true);
    expect(served.files.get('item_emb.q8')!.contentType).toBe('application/octet-stream');

    const server = await createServer({ modelsDir: models, rateLimit: false });
    try {
      const url = await server.listen(0, '127.0.0.1');
      const table = await fetch(`${url}/v1/models/q8-model/files/item_emb.q8`);
      expect(table.status).toBe(200);
      expect(Buffer.from(await table.arrayBuffer()).equals(served.files.get('item_emb.q8')!.bytes)).toBe(true);
      const none = await fetch(`${url}/v1/models/q8-old/files/item_emb.q8`);
      expect(none.status).toBe(404);
      expect(await none.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
      const list = (await (await fetch(`${url}/v1/models`)).json()) as { models: { modelId: string; files: Record<string, string> }[] };
      const filesOf = (id: string) => Object.keys(list.models.find((m) => m.modelId === id)!.files);
      expect(filesOf('q8-model')).toContain('item_emb.q8');
      expect(filesOf('q8-old')).not.toContain('item_emb.q8');
    } finally {
      await server.close();
    }

    // export-page in each artifact's own layout copies the table only where the manifest pins it.
    expect(await exportPage(join(models, 'q8-model'), join(root, 'page-q8'))).toContain('item_emb.q8');
    await writeFile(join(models, 'q8-old', 'item_emb.q8'), 'stray');
    expect(await exportPage(join(models, 'q8-old'), join(root, 'page-old'), { itemTable: 'fp32' })).not.toContain('item_emb.q8');
    expect((await readdir(join(root, 'page-old'))).includes('item_emb.q8')).toBe(false);
  });

  it('export-page converts the item table to the layout asked for: the same files writeArtifact writes in that layout', async () => {
    const q8 = await writeModel('convert-q8');
    const fp32 = await writeModel('convert-fp32', 'fp32');
    const same = async (a: string, b: string, names: readonly string[]) => {
      for (const f of names) expect((await readFile(join(a, f))).equals(await readFile(join(b, f))), f).toBe(true);
    };
    const pageFiles = ['manifest.json', 'items.json', 'backbone.json', 'backbone.bin', 'gru.json', 'gru.bin'];

    // Version 1 (what training writes) to the default 8-bit layout: byte for byte the version-2 artifact's page files.
    const toQ8 = join(root, 'pages-a', 'q8-model');
    expect(await exportPage(fp32, toQ8)).toEqual([...pageFiles, 'item_emb.q8']);
    await same(toQ8, q8, [...pageFiles, 'item_emb.q8']);

    // Version 2 to float32: item_emb holds the codes' exact values, and quantizing those gives the table back.
    const toFp32 = join(root, 'pages-b', 'q8-model');
    expect(await exportPage(q8, toFp32, { itemTable: 'fp32' })).toEqual(pageFiles);
    const fp32Manifest = parseManifest(JSON.parse(await readFile(join(toFp32, 'manifest.json'), 'utf8')));
    expect(fp32Manifest.version).toBe(1);
    expect('itemTable' in fp32Manifest).toBe(false);
    const table = quantizeItemTable(demo.backbone.get('item_emb')!.data, NUM_ITEMS + 1, DIM);
    expect((await readTensors(toFp32, 'backbone')).get('item_emb')).toEqual({ shape: [NUM_ITEMS + 1, DIM], data: dequantizeItemTable(table) });
    const roundTrip = join(root, 'pages-c', 'q8-model');
    await exportPage(toFp32, roundTrip);
    await same(roundTrip, q8, [...pageFiles, 'item_emb.q8']);

    // Exporting float32 over an earlier 8-bit export leaves no table file that no manifest pins.
    await exportPage(fp32, toQ8, { itemTable: 'fp32' });
    expect((await readdir(toQ8)).sort()).toEqual([...pageFiles].sort());
    await same(toQ8, fp32, pageFiles);
  });

  it('export-page refuses a damaged table before it writes anything, and an unknown layout', async () => {
    const dir = await writeModel('export-damaged');
    const path = join(dir, 'item_emb.q8');
    await writeFile(path, Buffer.from((await readFile(path)).map((b, i) => (i === 9 ? b ^ 2 : b))));
    const out = join(root, 'export-damaged-out');
    for (const itemTable of ['q8', 'fp32'] as const) {
      await expect(exportPage(dir, out, { itemTable })).rejects.toThrow(/item_emb\.q8 hashes to/);
    }
    await expect(readdir(out)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(exportPage(dir, out, { itemTable: 'int4' as 'q8' })).rejects.toThrow(TypeError);
  });

  it('refuses at load a table that is damaged, truncated or missing, or an item_emb left in backbone.bin', async () => {
    const dir = join(root, 'refused', 'q8-model');
    await cp(await writeModel('refused-src'), dir, { recursive: true });
    const path = join(dir, 'item_emb.q8');
    const good = await readFile(path);
    const refuses = async (message: RegExp) => {
      const error = await loadServedModel(dir).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(ModelLoadError);
      expect((error as Error).message).toMatch(message);
    };
    await writeFile(path, Buffer.from(good.map((b, i) => (i === 7 ? b ^ 4 : b))));
    await refuses(/item_emb\.q8 hashes to/);
    await writeFile(path, good.subarray(0, 100));
    await refuses(/item_emb\.q8 has 100 bytes/);
    await rm(path);
    await refuses(/cannot read item_emb\.q8/);
    await writeFile(path, good);
    // A well-hashed table with a -128 code (which core's quantizer never writes): the manifest pins its hash.
    const bad = Buffer.from(good);
    bad[5] = 0x80;
    await writeFile(path, bad);
    const manifestPath = join(dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    await writeFile(manifestPath, JSON.stringify({ ...manifest, itemTable: { ...manifest.itemTable, sha256: sha256(bad) } }));
    await refuses(/-128/);
    // backbone.bin from the float32 layout beside a version-2 manifest.
    await writeFile(path, good);
    await writeFile(manifestPath, JSON.stringify(manifest));
    const fp32 = await writeModel('refused-fp32', 'fp32');
    for (const f of ['backbone.json', 'backbone.bin']) await cp(join(fp32, f), join(dir, f));
    await refuses(/backbone\.bin holds item_emb/);
  });
});
