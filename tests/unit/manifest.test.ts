import { beforeAll, describe, expect, it } from 'vitest';
import {
  BackboneDimsError,
  DEFAULT_CASER_DIMS,
  DEFAULT_SASREC_DIMS,
  backboneLayers,
  frozenParamCount,
} from '../../src/core/backbones.ts';
import { ChordError } from '../../src/core/errors.ts';
import { computeFrozenWeightsHash } from '../../src/core/frozen.ts';
import {
  FrozenHashMismatchError,
  ItemTableFileError,
  ManifestError,
  buildManifest,
  itemTableFromFile,
  loadFrozenWeights,
  parseManifest,
  withItemTableFile,
} from '../../src/core/manifest.ts';
import { sha256Hex } from '../../src/core/hash.ts';
import { itemTableByteLength, quantizeItemTable } from '../../src/core/item-table.ts';
import type { ModelManifest } from '../../src/core/manifest.ts';

type Json = Record<string, unknown>;

/** A JSON copy of a manifest that a test can mutate. */
const toJson = (m: ModelManifest): Json => JSON.parse(JSON.stringify(m)) as Json;

function expectManifestError(json: unknown, field: string): ManifestError {
  let caught: unknown;
  try {
    parseManifest(json);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ManifestError);
  expect(caught).toBeInstanceOf(ChordError);
  const error = caught as ManifestError;
  expect(error.field).toBe(field);
  expect(error.code).toBe('MANIFEST_INVALID');
  expect(error.message).toContain(field);
  return error;
}

describe('backboneLayers', () => {
  it('lists SASRec layers per block in order with [out, in] shapes', () => {
    const layers = backboneLayers({ backbone: 'sasrec', dims: DEFAULT_SASREC_DIMS });
    expect(layers.map((l) => l.name)).toEqual([
      'block0.attn.q', 'block0.attn.k', 'block0.attn.v', 'block0.attn.out', 'block0.ffn.in', 'block0.ffn.out',
      'block1.attn.q', 'block1.attn.k', 'block1.attn.v', 'block1.attn.out', 'block1.ffn.in', 'block1.ffn.out',
    ]);
    expect(layers[0]).toEqual({
      name: 'block0.attn.q',
      shape: [64, 64],
      outChannels: 64,
      rowLength: 64,
      init: { kind: 'xavier_uniform', gain: 1 },
    });
    expect(layers[4]).toMatchObject({ shape: [256, 64], outChannels: 256, rowLength: 64 });
    expect(layers[5]).toMatchObject({ shape: [64, 256], outChannels: 64, rowLength: 256 });
    expect(frozenParamCount(layers)).toBe(2 * (4 * 64 * 64 + 2 * 256 * 64));
  });

  it('lists Caser conv.v, conv.h1..hL, fc1 with Conv2d-default init on convs', () => {
    const layers = backboneLayers({ backbone: 'caser', dims: DEFAULT_CASER_DIMS });
    expect(layers.map((l) => l.name)).toEqual(['conv.v', 'conv.h1', 'conv.h2', 'conv.h3', 'conv.h4', 'conv.h5', 'fc1']);
    expect(layers[0]).toMatchObject({ shape: [4, 1, 5, 1], outChannels: 4, rowLength: 5 });
    expect(layers[3]).toEqual({
      name: 'conv.h3',
      shape: [16, 1, 3, 64],
      outChannels: 16,
      rowLength: 192,
      init: { kind: 'kaiming_uniform', a: Math.sqrt(5), mode: 'fan_in', nonlinearity: 'leaky_relu' },
    });
    expect(layers[6]).toMatchObject({ shape: [64, 4 * 64 + 16 * 5], outChannels: 64, rowLength: 336 });
    expect(layers[6]!.init).toEqual({ kind: 'xavier_uniform', gain: 1 });
  });

  it('rejects dims that do not make a backbone', () => {
    const bad = (f: () => unknown, field: string | undefined): void => {
      expect(f).toThrow(BackboneDimsError);
      try {
        f();
      } catch (error) {
        expect((error as BackboneDimsError).field).toBe(field);
      }
    };
    bad(() => backboneLayers({ backbone: 'sasrec', dims: { ...DEFAULT_SASREC_DIMS, heads: 3 } }), 'heads');
    bad(() => backboneLayers({ backbone: 'sasrec', dims: { ...DEFAULT_SASREC_DIMS, blocks: 0 } }), 'blocks');
    bad(() => backboneLayers({ backbone: 'caser', dims: { ...DEFAULT_CASER_DIMS, maxLen: 6 } }), 'maxLen');
    bad(() => backboneLayers({ backbone: 'caser', dims: { ...DEFAULT_CASER_DIMS, nh: 2.5 } }), 'nh');
    bad(
      () => backboneLayers({ backbone: 'sasrec', dims: { hidden: 4096, heads: 1, blocks: 64, ffn: 4096, maxLen: 8 } }),
      undefined,
    );
  });
});

describe('manifest', () => {
  let sasrec: ModelManifest;
  let caser: ModelManifest;
  beforeAll(async () => {
    sasrec = await buildManifest({
      modelId: 'sasrec-ml100k',
      backbone: 'sasrec',
      dims: DEFAULT_SASREC_DIMS,
      numItems: 1682,
      userDim: 32,
      seed: 20240607,
    });
    caser = await buildManifest({
      modelId: 'caser-ml100k',
      backbone: 'caser',
      dims: DEFAULT_CASER_DIMS,
      numItems: 1682,
      userDim: 32,
      seed: 7,
    });
  });

  it('builds with derived layers and the hash of the frozen weights', async () => {
    expect(sasrec).toMatchObject({ format: 'chord-manifest', version: 1, backbone: 'sasrec', seed: 20240607 });
    expect(sasrec.layers).toEqual(backboneLayers(sasrec));
    expect(sasrec.frozenWeightsHash).toMatch(/^[0-9a-f]{64}$/);
    expect(sasrec.frozenWeightsHash).toBe(await computeFrozenWeightsHash(sasrec));
    expect(caser.frozenWeightsHash).toBe(await computeFrozenWeightsHash(caser));
    expect(caser.frozenWeightsHash).not.toBe(sasrec.frozenWeightsHash);
  });

  it('round-trips through JSON', () => {
    expect(parseManifest(toJson(sasrec))).toEqual(sasrec);
    expect(parseManifest(toJson(caser))).toEqual(caser);
  });

  it('loads frozen weights whose hash matches, and rejects a mismatch', async () => {
    const layers = await loadFrozenWeights(parseManifest(toJson(caser)));
    expect(layers.map((l) => l.spec.name)).toEqual(caser.layers.map((l) => l.name));
    const tampered = parseManifest({ ...toJson(caser), seed: 8 });
    const error = await loadFrozenWeights(tampered).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FrozenHashMismatchError);
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as FrozenHashMismatchError).code).toBe('FROZEN_HASH_MISMATCH');
    expect((error as FrozenHashMismatchError).field).toBe('frozenWeightsHash');
    expect((error as FrozenHashMismatchError).expected).toBe(caser.frozenWeightsHash);
  });

  it('names the bad top-level field', () => {
    const j = (): Json => toJson(sasrec);
    expectManifestError(null, '(root)');
    expectManifestError([], '(root)');
    expectManifestError({ ...j(), format: 'chord-model' }, 'format');
    expectManifestError({ ...j(), version: 0 }, 'version');
    expectManifestError({ ...j(), version: '1' }, 'version');
    // Version 2 is the 8-bit item table's layout: it needs the table (see 'version 2' below).
    expectManifestError({ ...j(), version: 2 }, 'itemTable');
    expectManifestError({ ...j(), modelId: 'SASRec ML' }, 'modelId');
    expectManifestError({ ...j(), modelId: '' }, 'modelId');
    expectManifestError({ ...j(), modelId: 'a'.repeat(65) }, 'modelId');
    expectManifestError({ ...j(), backbone: 'gru4rec' }, 'backbone');
    expectManifestError({ ...j(), numItems: 0 }, 'numItems');
    expectManifestError({ ...j(), numItems: '1682' }, 'numItems');
    expectManifestError({ ...j(), userDim: 2.5 }, 'userDim');
    expectManifestError({ ...j(), seed: -1 }, 'seed');
    expectManifestError({ ...j(), seed: 2 ** 32 }, 'seed');
    expectManifestError({ ...j(), frozenWeightsHash: sasrec.frozenWeightsHash.toUpperCase() }, 'frozenWeightsHash');
    expectManifestError({ ...j(), frozenWeightsHash: 'abc' }, 'frozenWeightsHash');
    expectManifestError({ ...j(), extra: true }, 'extra');
    const { seed: _omitted, ...noSeed } = j();
    expectManifestError(noSeed, 'seed');
  });

  it('names the bad dims field', () => {
    const withDims = (dims: Json): Json => ({ ...toJson(sasrec), dims });
    expectManifestError(withDims({ ...DEFAULT_SASREC_DIMS, hidden: 0 }), 'dims.hidden');
    expectManifestError(withDims({ ...DEFAULT_SASREC_DIMS, ffn: 1e9 }), 'dims.ffn');
    expectManifestError(withDims({ ...DEFAULT_SASREC_DIMS, heads: 3 }), 'dims.heads');
    expectManifestError(withDims({ ...DEFAULT_SASREC_DIMS, depth: 2 }), 'dims.depth');
    const { maxLen: _omitted, ...noMaxLen } = DEFAULT_SASREC_DIMS;
    expectManifestError(withDims(noMaxLen), 'dims.maxLen');
    // Caser dims under a SASRec backbone are the wrong keys.
    expectManifestError(withDims({ ...DEFAULT_CASER_DIMS }), 'dims.hidden');
    expectManifestError({ ...toJson(caser), dims: { ...DEFAULT_CASER_DIMS, maxLen: 50 } }, 'dims.maxLen');
    expectManifestError(
      withDims({ hidden: 4096, heads: 1, blocks: 64, ffn: 4096, maxLen: 8 }),
      'dims',
    );
  });

  it('rejects a layer list that disagrees with the dims', () => {
    const withLayers = (edit: (layers: Json[]) => void): Json => {
      const json = toJson(sasrec);
      edit(json.layers as Json[]);
      return json;
    };
    expectManifestError(withLayers((ls) => ls.pop()), 'layers');
    expectManifestError(withLayers((ls) => ls.push({ ...ls[0]! })), 'layers');
    expectManifestError(withLayers((ls) => ls.reverse()), 'layers[0].name');
    expectManifestError(withLayers((ls) => (ls[3]!.name = 'block0.attn.o')), 'layers[3].name');
    expectManifestError(withLayers((ls) => (ls[4]!.shape = [64, 256])), 'layers[4].shape');
    expectManifestError(withLayers((ls) => (ls[4]!.shape = [256, 64, 1])), 'layers[4].shape');
    expectManifestError(withLayers((ls) => (ls[1]!.outChannels = 32)), 'layers[1].outChannels');
    expectManifestError(withLayers((ls) => (ls[5]!.rowLength = 64)), 'layers[5].rowLength');
    expectManifestError(withLayers((ls) => (ls[0]!.init = { kind: 'xavier_normal', gain: 1 })), 'layers[0].init.kind');
    expectManifestError(withLayers((ls) => (ls[0]!.init = { kind: 'xavier_uniform', gain: 2 })), 'layers[0].init.gain');
    // Structurally invalid layer entries are caught by the schema with their path.
    expectManifestError(withLayers((ls) => (ls[2]!.shape = [64, 0])), 'layers[2].shape[1]');
    expectManifestError(withLayers((ls) => (ls[2]!.init = { kind: 'orthogonal' })), 'layers[2].init.kind');
    expectManifestError(withLayers((ls) => (ls[2]!.bias = true)), 'layers[2].bias');
    // Dims changed while the layers still describe the old dims.
    expectManifestError({ ...toJson(sasrec), dims: { ...DEFAULT_SASREC_DIMS, hidden: 32 } }, 'layers[0].shape');
    const caserJson = toJson(caser);
    (caserJson.layers as Json[])[0]!.init = { kind: 'kaiming_uniform', a: 0, mode: 'fan_in', nonlinearity: 'leaky_relu' };
    expectManifestError(caserJson, 'layers[0].init.a');
  });

  it('buildManifest reports bad input as ManifestError', async () => {
    const input = { modelId: 'ok', backbone: 'sasrec', dims: DEFAULT_SASREC_DIMS, numItems: 10, userDim: 8, seed: 1 } as const;
    await expect(buildManifest({ ...input, modelId: 'Not A Slug' })).rejects.toMatchObject({ field: 'modelId' });
    await expect(buildManifest({ ...input, dims: { ...DEFAULT_SASREC_DIMS, heads: 5 } })).rejects.toBeInstanceOf(
      ManifestError,
    );
    await expect(buildManifest({ ...input, dims: { ...DEFAULT_SASREC_DIMS, heads: 5 } })).rejects.toMatchObject({
      field: 'dims.heads',
    });
  });

  describe('version 2: the item table as its own 8-bit file', () => {
    const SHA = 'ab'.repeat(32);
    it('withItemTableFile pins item_emb.q8 (version 2) and takes it out again byte for byte (version 1)', () => {
      const v2 = withItemTableFile(sasrec, SHA);
      expect(v2).toMatchObject({ version: 2, itemTable: { file: 'item_emb.q8', scheme: 'int8-symmetric-rowscale-f16', sha256: SHA } });
      // SASRec hidden 64: 64 code bytes a row + an f16 scale a row, in whole words.
      expect(v2.itemTable!.byteLength).toBe(itemTableByteLength(1683, 64));
      expect(v2.itemTable!.byteLength).toBe(1683 * 64 + 842 * 4);
      expect(parseManifest(toJson(v2))).toEqual(v2);
      // Caser's table is item_emb [numItems + 1, d] too.
      expect(withItemTableFile(caser, SHA).itemTable!.byteLength).toBe(itemTableByteLength(1683, DEFAULT_CASER_DIMS.d));
      // Back to version 1: the very bytes buildManifest wrote (a stored copy's version is their hash).
      expect(JSON.stringify(withItemTableFile(v2, undefined))).toBe(JSON.stringify(sasrec));
      expect(JSON.stringify(withItemTableFile(sasrec, undefined))).toBe(JSON.stringify(sasrec));
    });

    it('version 2 needs its table, version 1 refuses one, and the table must fit the catalogue', () => {
      const v2 = toJson(withItemTableFile(sasrec, SHA));
      const table = v2.itemTable as Json;
      const { itemTable: _drop, ...noTable } = v2;
      expectManifestError(noTable, 'itemTable');
      expectManifestError({ ...v2, version: 1 }, 'itemTable');
      expectManifestError({ ...v2, numItems: 1681 }, 'itemTable.byteLength');
      expectManifestError({ ...v2, itemTable: { ...table, byteLength: (table.byteLength as number) - 8 } }, 'itemTable.byteLength');
      expectManifestError({ ...v2, itemTable: { ...table, file: '../hyper.bin' } }, 'itemTable.file');
      expectManifestError({ ...v2, itemTable: { ...table, scheme: 'int4' } }, 'itemTable.scheme');
      expectManifestError({ ...v2, itemTable: { ...table, sha256: 'AB'.repeat(32) } }, 'itemTable.sha256');
      expectManifestError({ ...v2, itemTable: { ...table, offset: 0 } }, 'itemTable.offset');
    });

    it('itemTableFromFile checks the file against its pin: length, then hash, then the layout', async () => {
      const dim = DEFAULT_SASREC_DIMS.hidden;
      const values = Float32Array.from({ length: 1683 * dim }, (_, i) => Math.sin(i) * 0.3);
      const table = quantizeItemTable(values, 1683, dim);
      const sha = await sha256Hex(table.bytes);
      const v2 = withItemTableFile(sasrec, sha);
      expect(itemTableFromFile(v2, table.bytes, sha).bytes).toEqual(table.bytes);

      const short = table.bytes.slice(0, table.bytes.byteLength - 4);
      const shortSha = await sha256Hex(short);
      // A short file's hash differs from the pin too: the length, checked first, names what is wrong.
      expect(() => itemTableFromFile(v2, short, shortSha)).toThrow(ItemTableFileError);
      expect(() => itemTableFromFile(v2, short, shortSha)).toThrow(expect.objectContaining({ code: 'ITEM_TABLE_LENGTH_MISMATCH', field: 'itemTable' }));
      expect(() => itemTableFromFile(v2, table.bytes, 'cd'.repeat(32))).toThrow(expect.objectContaining({ code: 'ITEM_TABLE_HASH_MISMATCH' }));
      expect(() => itemTableFromFile(v2, table.bytes, 'cd'.repeat(32))).toThrow(/item_emb\.q8 hashes to c/);

      // Right length and hash, but a code of -128: core's layout refuses it.
      const bad = table.bytes.slice();
      bad[5] = 0x80;
      const badSha = await sha256Hex(bad);
      expect(() => itemTableFromFile(withItemTableFile(sasrec, badSha), bad, badSha)).toThrow(
        expect.objectContaining({ name: 'QuantizeError', code: 'QUANT_BAD_CODE' }),
      );
      // A version-1 manifest pins no file.
      expect(() => itemTableFromFile(sasrec, table.bytes, sha)).toThrow(expect.objectContaining({ name: 'ManifestError', field: 'itemTable' }));
    });

    it('a later version is MANIFEST_VERSION_UNSUPPORTED, before its fields are read', () => {
      for (const version of [3, 17]) {
        let caught: unknown;
        try {
          parseManifest({ ...toJson(withItemTableFile(sasrec, SHA)), version, somethingNew: true });
        } catch (error) {
          caught = error;
        }
        expect(caught).toBeInstanceOf(ManifestError);
        expect(caught).toMatchObject({ field: 'version', code: 'MANIFEST_VERSION_UNSUPPORTED' });
        expect((caught as Error).message).toContain(`${version} is newer`);
      }
    });
  });
});
