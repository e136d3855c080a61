import { describe, expect, it } from 'vitest';
import fixture from '../fixtures/frozen-vectors.json' with { type: 'json' };
import { backboneLayers } from '../../src/core/backbones.ts';
import {
  computeFrozenVectors,
  computeFrozenWeightsHash,
  float32BitsHex,
  frozenWeightsByName,
  generateChannelWeights,
  generateFrozenWeights,
  generateLayerWeights,
  hashFrozenWeights,
} from '../../src/core/frozen.ts';
import type { FrozenVectorsInput } from '../../src/core/frozen.ts';
import { float32LeBytes, sha256Hex } from '../../src/core/hash.ts';

const SMALL_SASREC = { backbone: 'sasrec', dims: { hidden: 16, heads: 2, blocks: 1, ffn: 32, maxLen: 8 } } as const;

describe('sha256Hex and float32LeBytes', () => {
  it('matches the FIPS 180-2 "abc" vector and the empty-input digest', async () => {
    expect(await sha256Hex(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(await sha256Hex(new Uint8Array(0))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('hashes views of a SharedArrayBuffer too', async () => {
    const shared = new Uint8Array(new SharedArrayBuffer(3));
    shared.set([0x61, 0x62, 0x63]);
    expect(await sha256Hex(shared)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('writes float32 little-endian, arrays concatenated in order', () => {
    const bytes = float32LeBytes([new Float32Array([1, -2]), new Float32Array([]), new Float32Array([0.5])]);
    expect(Array.from(bytes)).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0, 0x3f]);
  });

  it('prints float32 bit patterns as hex', () => {
    expect(float32BitsHex(new Float32Array([1, -2, 0]))).toEqual(['3f800000', 'c0000000', '00000000']);
  });
});

describe('generateFrozenWeights', () => {
  const layers = backboneLayers(SMALL_SASREC);
  const frozen = generateFrozenWeights({ seed: 42, layers });

  it('generates every layer in order with its shape, from (seed, name, init)', () => {
    expect(frozen.map((l) => l.spec.name)).toEqual(layers.map((l) => l.name));
    for (const layer of frozen) {
      expect(layer.weights.length).toBe(layer.spec.outChannels * layer.spec.rowLength);
      expect(layer.weights).toEqual(generateLayerWeights(42, layer.spec));
    }
    // q and k share shape and init but not their stream.
    expect(frozen[0]!.weights).not.toEqual(frozen[1]!.weights);
    expect(generateFrozenWeights({ seed: 43, layers })[0]!.weights).not.toEqual(frozen[0]!.weights);
    const byName = frozenWeightsByName(frozen);
    expect(byName.get('block0.ffn.out')).toBe(frozen[5]!.weights);
  });

  it('regenerates any output channel on its own', () => {
    const ffnIn = frozen[4]!;
    for (const channel of [0, 1, 17, ffnIn.spec.outChannels - 1]) {
      const row = ffnIn.weights.subarray(channel * ffnIn.spec.rowLength, (channel + 1) * ffnIn.spec.rowLength);
      expect(generateChannelWeights(42, ffnIn.spec, channel)).toEqual(row);
    }
    expect(() => generateChannelWeights(42, ffnIn.spec, ffnIn.spec.outChannels)).toThrow(RangeError);
  });

  it('hashes the little-endian bytes in layer order', async () => {
    const hash = await hashFrozenWeights(frozen);
    expect(hash).toBe(await sha256Hex(float32LeBytes(frozen.map((l) => l.weights))));
    expect(await computeFrozenWeightsHash({ seed: 42, layers })).toBe(hash);
    const swapped = [frozen[1]!, frozen[0]!, ...frozen.slice(2)];
    expect(await hashFrozenWeights(swapped)).not.toBe(hash);
    const copy = frozen.map((l) => ({ spec: l.spec, weights: l.weights.slice() }));
    const bits = new Uint32Array(copy[3]!.weights.buffer);
    bits[7]! ^= 1;
    expect(await hashFrozenWeights(copy)).not.toBe(hash);
  });
});

describe('pinned frozen vectors (tests/fixtures/frozen-vectors.json)', () => {
  const input = fixture as unknown as FrozenVectorsInput;

  it('regenerates every case and model hash exactly', async () => {
    const result = await computeFrozenVectors(input);
    expect(result.cases).toEqual(fixture.cases);
    expect(result.models).toEqual(fixture.models);
  });

  it('pins the small SASRec (hidden 16, heads 2, blocks 1, ffn 32, maxLen 8, seed 42)', async () => {
    const pinned = fixture.models.find(
      (m) => m.backbone === 'sasrec' && m.seed === 42 && JSON.stringify(m.dims) === JSON.stringify(SMALL_SASREC.dims),
    );
    expect(pinned?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await computeFrozenWeightsHash({ seed: 42, layers: backboneLayers(SMALL_SASREC) })).toBe(pinned?.sha256);
  });

  it('covers every init scheme, odd offsets, the second counter word and non-ASCII names', () => {
    const kinds = new Set(fixture.cases.map((c) => c.scheme.kind));
    expect([...kinds].sort()).toEqual(
      ['kaiming_normal', 'kaiming_uniform', 'normal', 'uniform', 'xavier_normal', 'xavier_uniform'],
    );
    expect(fixture.cases.some((c) => (c.offset ?? 0) % 2 === 1)).toBe(true);
    // Uniform elements from 2^34 on use Philox blocks >= 2^32, i.e. a non-zero second counter word.
    expect(fixture.cases.some((c) => (c.offset ?? 0) < 2 ** 34 && (c.offset ?? 0) + 8 > 2 ** 34)).toBe(true);
    expect(fixture.cases.some((c) => /[^\x00-\x7f]/.test(c.name))).toBe(true);
    for (const c of fixture.cases) expect(c.first8).toHaveLength(8);
  });
});
