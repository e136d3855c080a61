import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { channelRangesFromWeights } from '../../src/core/budget.ts';
import { generateFrozenWeights } from '../../src/core/frozen.ts';
import { decodeTensorFile, parseTensorIndex } from '../../src/core/tensor-file.ts';
import { decodeNamedTensors, loadServedModel, loadServedModels, SERVED_FILES } from '../../src/cloud/artifacts.ts';
import type { ServedModel } from '../../src/cloud/artifacts.ts';
import { ModelLoadError } from '../../src/cloud/errors.ts';
import { writeTestModel } from '../fixtures/artifacts.ts';
import type { TestModel } from '../fixtures/artifacts.ts';

let root: string;
let model: TestModel;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'chord-artifacts-'));
  model = await writeTestModel(root, { modelId: 'm1', seed: 9 });
});
afterEach(async () => rm(root, { recursive: true, force: true }));

async function editJson(name: string, edit: (json: Record<string, unknown>) => void): Promise<void> {
  const path = join(model.dir, name);
  const json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  edit(json);
  await writeFile(path, JSON.stringify(json));
}

async function loadError(dir = model.dir): Promise<ModelLoadError> {
  const error = await loadServedModel(dir).then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(ModelLoadError);
  return error as ModelLoadError;
}

describe('loadServedModel', () => {
  it('loads a complete directory: ranges for T, served files only, averageBits', async () => {
    const m = await loadServedModel(model.dir);
    expect(m.modelId).toBe('m1');
    expect(m.hypernetConfig.method).toBe('chord');
    const frozen = generateFrozenWeights(model.manifest);
    expect(m.frozen.map((f) => f.rowLength)).toEqual(model.manifest.layers.map((l) => l.rowLength));
    frozen.forEach((l, i) => {
      expect(Array.from(m.frozen[i]!.ranges)).toEqual(Array.from(channelRangesFromWeights(l.weights, l.spec.outChannels, l.spec.rowLength)));
    });
    // A version-1 model (item_emb in backbone.bin) has no item_emb.q8 to serve.
    expect([...m.files.keys()].sort()).toEqual(SERVED_FILES.filter((f) => f !== 'item_emb.q8').sort());
    expect(m.totalChannels).toBe(model.manifest.layers.reduce((s, l) => s + l.outChannels, 0));
    const all8 = { levelTable: [2, 4, 6, 8] as const, beta: 0.125, layers: model.manifest.layers.map((l) => ({ name: l.name, levels: new Uint8Array(l.outChannels).fill(3) })) };
    expect(m.averageBits(all8)).toBe(8);
  });

  it('refuses a directory named differently from its modelId', async () => {
    const other = join(root, 'other');
    await mkdir(other);
    for (const f of ['manifest.json', 'hypernet.json', 'hyper.json', 'hyper.bin', 'backbone.json', 'backbone.bin', 'gru.json', 'gru.bin']) {
      await writeFile(join(other, f), await readFile(join(model.dir, f)));
    }
    expect((await loadError(other)).message).toMatch(/directory name "other" differs from modelId "m1"/);
  });

  it('refuses an items.json that does not cover every item', async () => {
    await writeFile(join(model.dir, 'items.json'), JSON.stringify(['[PAD]', 'only-one']));
    expect((await loadError()).message).toMatch(/items.json must be an array of \d+ strings/);
  });

  it('refuses a manifest whose frozen weights hash differs', async () => {
    await editJson('manifest.json', (j) => (j.frozenWeightsHash = '0'.repeat(64)));
    expect((await loadError()).message).toMatch(/frozen weights.*hash/);
  });

  it('refuses an invalid manifest, naming the field', async () => {
    await editJson('manifest.json', (j) => (j.userDim = 0));
    expect((await loadError()).message).toMatch(/manifest.json: manifest userDim/);
  });

  it('refuses a hypernet whose zDim or layers disagree with the manifest', async () => {
    await editJson('hypernet.json', (j) => (j.zDim = 9));
    expect((await loadError()).message).toMatch(/zDim 9 != manifest userDim 8/);
    await editJson('hypernet.json', (j) => {
      j.zDim = 8;
      (j.layers as { name: string }[])[1]!.name = 'renamed';
    });
    expect((await loadError()).message).toMatch(/hypernet layer 1 is renamed/);
  });

  it('refuses missing or inconsistent tensor files', async () => {
    await editJson('hyper.json', (j) => {
      (j.tensors as { name: string }[]) = (j.tensors as { name: string }[]).filter((t) => t.name !== 'hyper.L.w');
    });
    expect((await loadError()).message).toMatch(/hypernet tensors: missing tensor hyper.L.w/);
  });

  it('refuses a missing page file and a .bin whose size disagrees with its index', async () => {
    const gru = await readFile(join(model.dir, 'gru.bin'));
    await writeFile(join(model.dir, 'gru.bin'), gru.subarray(0, gru.length - 4));
    expect((await loadError()).message).toMatch(/gru.bin has \d+ bytes, gru.json says \d+/);
    await unlink(join(model.dir, 'gru.bin'));
    expect((await loadError()).message).toMatch(/cannot read gru.bin/);
  });

  it('refuses broken JSON', async () => {
    await writeFile(join(model.dir, 'hypernet.json'), '{');
    expect((await loadError()).message).toMatch(/hypernet.json is not valid JSON/);
  });
});

describe('loadServedModels', () => {
  it('loads every model directory and skips other entries', async () => {
    await writeTestModel(root, { modelId: 'm2', seed: 10, method: 'weighted' });
    await mkdir(join(root, 'notes'));
    await writeFile(join(root, 'README.txt'), 'not a model');
    const models = await loadServedModels(root);
    expect([...models.keys()]).toEqual(['m1', 'm2']);
    expect(models.get('m2')!.hypernetConfig.method).toBe('weighted');
  });

  it('fails when there is no model, or the directory is missing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'chord-empty-'));
    await expect(loadServedModels(empty)).rejects.toThrow(/no model directory/);
    await rm(empty, { recursive: true });
    await expect(loadServedModels(join(root, 'does-not-exist'))).rejects.toThrow(/cannot list models/);
  });
});

/**
 * Bytes reachable from `root` through own properties, array elements and Map/Set entries: typed
 * arrays and ArrayBuffers by byteLength, strings at 2 bytes a character; `skip` is not entered.
 */
function heldBytes(root: unknown, skip: ReadonlySet<unknown>): number {
  const seen = new Set<unknown>();
  const stack: unknown[] = [root];
  let bytes = 0;
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x === 'string') bytes += x.length * 2;
    if (typeof x !== 'object' || x === null || seen.has(x) || skip.has(x)) continue;
    seen.add(x);
    if (ArrayBuffer.isView(x) || x instanceof ArrayBuffer) bytes += x.byteLength;
    else if (x instanceof Map) for (const [k, v] of x) stack.push(k, v);
    else if (x instanceof Set) for (const v of x) stack.push(v);
    else stack.push(...Object.values(x));
  }
  return bytes;
}

const servedBytes = (m: ServedModel) => [...m.files.values()].reduce((s, f) => s + f.bytes.byteLength, 0);

describe('what a loaded model keeps', () => {
  it('decodes only the named tensors of a tensor file, as core decodes them', async () => {
    const index = parseTensorIndex(JSON.parse(await readFile(join(model.dir, 'backbone.json'), 'utf8')));
    const bin = await readFile(join(model.dir, 'backbone.bin'));
    const names = new Set(['item_emb', 'final_ln.gamma']);
    const some = decodeNamedTensors(index, bin, names);
    const all = decodeTensorFile(index, bin);
    expect([...some.keys()].sort()).toEqual([...names].sort());
    for (const name of names) expect(some.get(name)).toEqual(all.get(name));
    expect(decodeNamedTensors(index, bin, new Set()).size).toBe(0);
  });

  it('holds nothing that grows with the catalogue but the served files', async () => {
    // Two models that differ only in their catalogue (40 and 20,000 items; the item table is
    // 1.3 MB of backbone.bin in the larger), both shipping their layer weights, as trained ones do.
    const small = await writeTestModel(root, { modelId: 'cat-small', numItems: 40, shippedWeightsSeed: 3 });
    const large = await writeTestModel(root, { modelId: 'cat-large', numItems: 20_000, shippedWeightsSeed: 3 });
    const [a, b] = await Promise.all([loadServedModel(small.dir), loadServedModel(large.dir)]);
    const fileSize = async (dir: string) => {
      let n = 0;
      for (const f of SERVED_FILES) n += (await readFile(join(dir, f)).catch(() => Buffer.alloc(0))).byteLength;
      return n;
    };
    // The served files are held once each, as bytes.
    expect(servedBytes(a)).toBe(await fileSize(small.dir));
    expect(servedBytes(b)).toBe(await fileSize(large.dir));
    expect(servedBytes(b) - servedBytes(a)).toBeGreaterThan(20_000 * 16 * 4);
    // Everything else (manifest, hypernet, compute, ranges, ...) is the same size for both.
    const skip = (m: ServedModel) => new Set([...m.files.values()].map((f) => f.bytes));
    expect(heldBytes(b, skip(b))).toBe(heldBytes(a, skip(a)));
    expect(heldBytes(a, skip(a))).toBeGreaterThan(0);
  });
});
