// Frozen-pretrained artifacts: the layer weights ship in the backbone tensors and the manifest pins
// them (`frozenWeights: 'shipped'`). Core's rules, the artifact writer/reader, the strategy server's
// validation and the page's loader (in Node, over real HTTP, with the in-memory weight store).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadServedModel } from '../../src/cloud/artifacts.ts';
import { ModelLoadError } from '../../src/cloud/errors.ts';
import { backboneLayers } from '../../src/core/backbones.ts';
import type { SasrecDims } from '../../src/core/backbones.ts';
import { channelRangesFromWeights } from '../../src/core/budget.ts';
import {
  ShippedWeightsError,
  computeFrozenWeightsHash,
  generateFrozenWeights,
  hashFrozenWeights,
  shippedFrozenWeights,
} from '../../src/core/frozen.ts';
import type { FrozenLayer } from '../../src/core/frozen.ts';
import {
  FrozenHashMismatchError,
  FrozenSourceError,
  ManifestError,
  buildManifest,
  frozenWeightsOrigin,
  loadFrozenWeights,
  parseManifest,
  resolveFrozenWeights,
  verifyShippedWeights,
} from '../../src/core/manifest.ts';
import type { ModelManifest } from '../../src/core/manifest.ts';
import { decodeTensorFile, encodeTensorFile } from '../../src/core/tensor-file.ts';
import type { TensorMap } from '../../src/core/tensor-file.ts';
import { regenerateFrozenWeights } from '../../src/device/artifacts.ts';
import { loadDeviceModel } from '../../src/device/model-loader.ts';
import { WeightStore } from '../../src/device/store.ts';
import { ChordTrainError } from '../../src/model/chord/errors.ts';
import { manifestForBackbone, readArtifact, writeArtifact } from '../../src/model/export.ts';
import { writeTestModel } from '../fixtures/artifacts.ts';
import { RerankerTestServers } from '../browser/pages/reranker.server.ts';

const DIMS: SasrecDims = { hidden: 8, heads: 2, blocks: 1, ffn: 16, maxLen: 6 };
const LAYERS = backboneLayers({ backbone: 'sasrec', dims: DIMS });
const INPUT = { backbone: 'sasrec', dims: DIMS, modelId: 'pre', numItems: 5, userDim: 4, seed: 3 } as const;

/** Layer weights from another seed: stand-ins for a pretrained Base run's. */
const PRETRAINED = generateFrozenWeights({ seed: 77, layers: LAYERS });

function tensorsOf(layers: readonly FrozenLayer[], extra: TensorMap = new Map()): TensorMap {
  const map: TensorMap = new Map(extra);
  for (const l of layers) map.set(l.spec.name, { shape: [...l.spec.shape], data: l.weights.slice() });
  return map;
}

const BIASES: TensorMap = new Map(LAYERS.map((l) => [`${l.name}.bias`, { shape: [l.outChannels], data: new Float32Array(l.outChannels) }]));

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  throw new Error('did not throw');
}

describe('shippedFrozenWeights (core)', () => {
  it('none shipped -> undefined; all shipped -> the layers in layer order, views of the same arrays', () => {
    expect(shippedFrozenWeights(LAYERS, BIASES)).toBeUndefined();
    const tensors = tensorsOf([...PRETRAINED].reverse(), BIASES);
    const got = shippedFrozenWeights(LAYERS, tensors)!;
    expect(got.map((l) => l.spec)).toEqual(LAYERS);
    got.forEach((l) => expect(l.weights).toBe(tensors.get(l.spec.name)!.data));
    expect(got.map((l) => Array.from(l.weights))).toEqual(PRETRAINED.map((l) => Array.from(l.weights)));
  });

  it('a partial set, a wrong shape or a non-finite value is a ShippedWeightsError naming the layer', async () => {
    const partial = tensorsOf(PRETRAINED);
    partial.delete('block0.ffn.in');
    const e1 = (await errorOf(() => shippedFrozenWeights(LAYERS, partial))) as ShippedWeightsError;
    expect(e1).toBeInstanceOf(ShippedWeightsError);
    expect(e1).toMatchObject({ code: 'SHIPPED_WEIGHTS_INVALID', layer: 'block0.ffn.in' });
    expect(e1.message).toMatch(/5 of 6 layer weights/);

    // [in, out] instead of [out, in]: same element count, transposed meaning.
    const transposed = tensorsOf(PRETRAINED);
    const ffnIn = transposed.get('block0.ffn.in')!;
    transposed.set('block0.ffn.in', { shape: [ffnIn.shape[1]!, ffnIn.shape[0]!], data: ffnIn.data });
    expect(await errorOf(() => shippedFrozenWeights(LAYERS, transposed))).toMatchObject({ code: 'SHIPPED_WEIGHTS_INVALID', layer: 'block0.ffn.in' });

    const short = tensorsOf(PRETRAINED);
    short.set('block0.attn.q', { shape: [8, 8], data: new Float32Array(63) });
    expect(await errorOf(() => shippedFrozenWeights(LAYERS, short))).toMatchObject({ layer: 'block0.attn.q' });

    const nan = tensorsOf(PRETRAINED);
    nan.get('block0.attn.v')!.data[5] = Number.NaN;
    expect(((await errorOf(() => shippedFrozenWeights(LAYERS, nan))) as Error).message).toMatch(/block0\.attn\.v\[5\] is NaN/);
  });
});

describe('manifest: frozenWeights', () => {
  let seedManifest: ModelManifest;
  let shipped: ModelManifest;
  beforeAll(async () => {
    seedManifest = await buildManifest(INPUT);
    shipped = await buildManifest({ ...INPUT, backboneTensors: tensorsOf(PRETRAINED, BIASES) });
  });

  it('buildManifest pins the shipped weights when the backbone carries them, else the seed as before', async () => {
    expect(shipped.frozenWeights).toBe('shipped');
    expect(shipped.frozenWeightsHash).toBe(await hashFrozenWeights(PRETRAINED));
    expect(shipped.frozenWeightsHash).not.toBe(seedManifest.frozenWeightsHash);
    // A seed manifest has no new field: the same JSON (and store version) as before it existed.
    expect('frozenWeights' in seedManifest).toBe(false);
    expect(await buildManifest({ ...INPUT, backboneTensors: BIASES })).toEqual(seedManifest);
    expect(seedManifest.frozenWeightsHash).toBe(await computeFrozenWeightsHash(seedManifest));
    expect(frozenWeightsOrigin(seedManifest)).toBe('seed');
    expect(frozenWeightsOrigin(shipped)).toBe('shipped');
  });

  it('parseManifest accepts seed, shipped or no frozenWeights; anything else names the field', () => {
    const json = JSON.parse(JSON.stringify(shipped)) as Record<string, unknown>;
    expect(parseManifest(json)).toEqual(shipped);
    expect(parseManifest({ ...json, frozenWeights: 'seed' }).frozenWeights).toBe('seed');
    const bad = (() => {
      try {
        parseManifest({ ...json, frozenWeights: 'pretrained' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(bad).toBeInstanceOf(ManifestError);
    expect(bad).toMatchObject({ field: 'frozenWeights', code: 'MANIFEST_INVALID' });
  });

  it('verifyShippedWeights / resolveFrozenWeights: the shipped weights when they hash right', async () => {
    const tensors = tensorsOf(PRETRAINED, BIASES);
    const got = await resolveFrozenWeights(shipped, tensors);
    expect(got.map((l) => Array.from(l.weights))).toEqual(PRETRAINED.map((l) => Array.from(l.weights)));
    expect(await verifyShippedWeights(seedManifest, BIASES)).toBeUndefined();
    const seed = await resolveFrozenWeights(seedManifest, BIASES);
    expect(seed.map((l) => Array.from(l.weights))).toEqual(generateFrozenWeights(seedManifest).map((l) => Array.from(l.weights)));
  });

  it('one changed shipped value is a FrozenHashMismatchError', async () => {
    const tensors = tensorsOf(PRETRAINED, BIASES);
    const w = tensors.get('block0.ffn.out')!.data;
    w[7] = w[7]! + 1e-6;
    const e = (await errorOf(resolveFrozenWeights(shipped, tensors))) as FrozenHashMismatchError;
    expect(e).toBeInstanceOf(FrozenHashMismatchError);
    expect(e).toMatchObject({ code: 'FROZEN_HASH_MISMATCH', source: 'shipped', expected: shipped.frozenWeightsHash });
    expect(e.message).toMatch(/^manifest frozenWeightsHash: shipped frozen weights hash to/);
  });

  it('manifest and backbone disagreeing on the source is a FrozenSourceError either way', async () => {
    // An artifact written before frozenWeights existed: seed manifest, pretrained weights shipped.
    const old = (await errorOf(resolveFrozenWeights(seedManifest, tensorsOf(PRETRAINED, BIASES)))) as FrozenSourceError;
    expect(old).toBeInstanceOf(FrozenSourceError);
    expect(old).toMatchObject({ code: 'FROZEN_SOURCE_MISMATCH', field: 'frozenWeights' });
    expect(await errorOf(resolveFrozenWeights(shipped, BIASES))).toMatchObject({ code: 'FROZEN_SOURCE_MISMATCH' });
    // Seed-only paths refuse a shipped manifest instead of failing on a hash.
    expect(await errorOf(loadFrozenWeights(shipped))).toMatchObject({ code: 'FROZEN_SOURCE_MISMATCH' });
    expect(await errorOf(regenerateFrozenWeights(shipped))).toMatchObject({ code: 'FROZEN_SOURCE_MISMATCH' });
  });
});

describe('artifact files (src/model/export.ts)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chord-shipped-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  const files = (manifest: ModelManifest, backbone: TensorMap) => ({
    manifest,
    items: ['[PAD]', 'a', 'b', 'c', 'd', 'e'],
    backbone,
    gru: new Map([['gru.bias_ih', { shape: [3], data: new Float32Array(3) }]]),
    training: {},
  });

  it('writeArtifact pins the shipped weights even when given the seed manifest the training loop builds', async () => {
    const seedManifest = await buildManifest(INPUT);
    writeArtifact(dir, files(seedManifest, tensorsOf(PRETRAINED, BIASES)));
    const written = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
    expect(written.frozenWeights).toBe('shipped');
    // node:crypto's synchronous hash equals core's WebCrypto one.
    expect(written.frozenWeightsHash).toBe(await hashFrozenWeights(PRETRAINED));
    const back = readArtifact(dir);
    expect(back.manifest).toEqual(written);
    expect(await resolveFrozenWeights(back.manifest, back.backbone)).toHaveLength(LAYERS.length);

    // A seed artifact is written with its manifest untouched.
    writeArtifact(dir, files(seedManifest, BIASES));
    expect(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(seedManifest)));
    // A shipped manifest without shipped weights cannot be written.
    const shipped = manifestForBackbone(seedManifest, tensorsOf(PRETRAINED));
    expect(() => writeArtifact(dir, files(shipped, BIASES))).toThrow(ChordTrainError);
  });

  it('readArtifact checks shipped weights against the manifest; an old artifact reads and is fixed by writing it back', async () => {
    const seedManifest = await buildManifest(INPUT);
    writeArtifact(dir, files(seedManifest, tensorsOf(PRETRAINED, BIASES)));
    const bin = await readFile(join(dir, 'backbone.bin'));
    const index = JSON.parse(await readFile(join(dir, 'backbone.json'), 'utf8')) as { tensors: { name: string; offset: number }[] };
    const at = index.tensors.find((t) => t.name === 'block0.attn.k')!.offset;
    const damaged = Buffer.from(bin);
    damaged[at + 2] = damaged[at + 2]! ^ 0x10;
    await writeFile(join(dir, 'backbone.bin'), damaged);
    expect(() => readArtifact(dir)).toThrow(FrozenHashMismatchError);

    // Before frozenWeights existed: the seed manifest beside shipped weights.
    await writeFile(join(dir, 'backbone.bin'), bin);
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(seedManifest));
    const old = readArtifact(dir);
    expect(frozenWeightsOrigin(old.manifest)).toBe('seed');
    await expect(resolveFrozenWeights(old.manifest, old.backbone)).rejects.toBeInstanceOf(FrozenSourceError);
    writeArtifact(dir, old);
    const fixed = readArtifact(dir);
    expect(fixed.manifest.frozenWeights).toBe('shipped');
    expect(await resolveFrozenWeights(fixed.manifest, fixed.backbone)).toHaveLength(LAYERS.length);
  });
});

describe('strategy server artifact validation (src/cloud/artifacts.ts)', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'chord-shipped-cloud-'));
  });
  afterEach(async () => rm(root, { recursive: true, force: true }));

  it('loads a frozen-pretrained model; T ranges come from the shipped weights', async () => {
    const model = await writeTestModel(root, { modelId: 'pre', seed: 9, shippedWeightsSeed: 123 });
    expect(model.manifest.frozenWeights).toBe('shipped');
    const m = await loadServedModel(model.dir);
    const pretrained = generateFrozenWeights({ seed: 123, layers: model.manifest.layers });
    const seed = generateFrozenWeights(model.manifest);
    pretrained.forEach((l, i) => {
      const want = channelRangesFromWeights(l.weights, l.spec.outChannels, l.spec.rowLength);
      expect(Array.from(m.frozen[i]!.ranges)).toEqual(Array.from(want));
      expect(Array.from(m.frozen[i]!.ranges)).not.toEqual(Array.from(channelRangesFromWeights(seed[i]!.weights, l.spec.outChannels, l.spec.rowLength)));
    });
  });

  it('refuses damaged shipped weights and a seed manifest beside shipped weights', async () => {
    const model = await writeTestModel(root, { modelId: 'pre', seed: 9, shippedWeightsSeed: 123 });
    const binPath = join(model.dir, 'backbone.bin');
    const bin = await readFile(binPath);
    const index = JSON.parse(await readFile(join(model.dir, 'backbone.json'), 'utf8')) as { tensors: { name: string; offset: number }[] };
    const damaged = Buffer.from(bin);
    const at = index.tensors.find((t) => t.name === 'block0.ffn.out')!.offset + 1;
    damaged[at] = damaged[at]! ^ 0x01;
    await writeFile(binPath, damaged);
    const e1 = await errorOf(loadServedModel(model.dir));
    expect(e1).toBeInstanceOf(ModelLoadError);
    expect((e1 as Error).message).toMatch(/frozen weights: .*shipped frozen weights hash to/);
    expect((e1 as Error).cause).toBeInstanceOf(FrozenHashMismatchError);

    await writeFile(binPath, bin);
    const manifestPath = join(model.dir, 'manifest.json');
    const seedManifest = { ...model.manifest, frozenWeightsHash: await computeFrozenWeightsHash(model.manifest) } as Record<string, unknown>;
    delete seedManifest['frozenWeights'];
    await writeFile(manifestPath, JSON.stringify(seedManifest));
    const e2 = await errorOf(loadServedModel(model.dir));
    expect(e2).toBeInstanceOf(ModelLoadError);
    expect((e2 as Error).cause).toBeInstanceOf(FrozenSourceError);
  });
});

describe('page loader (src/device/model-loader.ts) in Node', () => {
  const SHIP_SEED = 4242;
  let servers: RerankerTestServers;
  beforeAll(async () => {
    servers = await RerankerTestServers.start([], { modelId: 'sasrec-demo-pre', shippedWeightsSeed: SHIP_SEED });
  });
  afterAll(async () => servers?.close());

  const fetchFn: typeof fetch = (input, init) => fetch(input, init);
  /** A fetch that flips one bit of `tensor` in backbone.bin on the way, as a broken CDN would. */
  function corruptingFetch(tensor: string): typeof fetch {
    const { index } = encodeTensorFile(servers.artifact.backbone);
    const offset = index.tensors.find((t) => t.name === tensor)!.offset;
    return async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).endsWith('/backbone.bin')) return res;
      const bytes = new Uint8Array(await res.arrayBuffer());
      bytes[offset + 3] = bytes[offset + 3]! ^ 0x01;
      return new Response(bytes, { status: 200, headers: { 'content-length': String(bytes.byteLength) } });
    };
  }

  it('uses the shipped weights, from the network and then from the store', async () => {
    const store = await WeightStore.open();
    const first = await loadDeviceModel({ baseUrl: servers.modelUrl, fetch: fetchFn, store });
    const want = generateFrozenWeights({ seed: SHIP_SEED, layers: first.manifest.layers });
    const seed = generateFrozenWeights(first.manifest);
    expect(first.manifest.frozenWeights).toBe('shipped');
    expect(first.sources.backbone).toBe('network');
    expect(first.frozen.map((l) => Array.from(l.weights))).toEqual(want.map((l) => Array.from(l.weights)));
    expect(first.frozen[0]!.weights).not.toEqual(seed[0]!.weights);
    expect(Array.from(first.frozenInfo[2]!.ranges)).toEqual(
      Array.from(channelRangesFromWeights(want[2]!.weights, want[2]!.spec.outChannels, want[2]!.spec.rowLength)),
    );
    const second = await loadDeviceModel({ baseUrl: servers.modelUrl, fetch: fetchFn, store });
    expect(second.sources.backbone).toBe('store');
    expect(second.frozen.map((l) => Array.from(l.weights))).toEqual(want.map((l) => Array.from(l.weights)));
  });

  it('a damaged download is a FrozenHashMismatchError and is not stored', async () => {
    const store = await WeightStore.open();
    const e = await errorOf(loadDeviceModel({ baseUrl: servers.modelUrl, fetch: corruptingFetch('block1.attn.v'), store }));
    expect(e).toBeInstanceOf(FrozenHashMismatchError);
    expect(e).toMatchObject({ code: 'FROZEN_HASH_MISMATCH', source: 'shipped' });
    const good = await loadDeviceModel({ baseUrl: servers.modelUrl, fetch: fetchFn, store });
    expect(good.sources.backbone).toBe('network');
  });

  it('a stored copy that passes the store check but not the manifest hash is replaced by a download', async () => {
    const store = await WeightStore.open();
    const first = await loadDeviceModel({ baseUrl: servers.modelUrl, fetch: fetchFn, store });
    const key = { modelId: first.manifest.modelId, version: first.version, name: 'backbone' };
    const hit = await store.getArtifact(key);
    if (hit.status !== 'hit') throw new Error(`expected a stored backbone, got ${hit.status}`);
    // Rewritten through the store, so its own SHA-256 matches the damaged bytes.
    const tensors = decodeTensorFile(hit.value.index, hit.value.bin);
    const w = tensors.get('block0.ffn.in')!.data;
    w[0] = w[0]! + 0.5;
    await store.putArtifact(key, encodeTensorFile(tensors));
    const again = await loadDeviceModel({ baseUrl: servers.modelUrl, fetch: fetchFn, store });
    expect(again.sources.backbone).toBe('network');
    expect(Array.from(again.frozen[4]!.weights)).toEqual(Array.from(first.frozen[4]!.weights));
    const third = await loadDeviceModel({ baseUrl: servers.modelUrl, fetch: fetchFn, store });
    expect(third.sources.backbone).toBe('store');
  });
});
