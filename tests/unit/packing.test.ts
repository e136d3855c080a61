import { describe, expect, it } from 'vitest';
import { ChordError } from '../../src/core/errors.ts';
import {
  GROUP_STRIDE,
  META_BITS,
  META_CHANNEL,
  META_STRIDE,
  META_VALUES_PER_WORD,
  META_WORD_OFFSET,
  type PackedLayer,
  PackingError,
  dequantizePacked,
  packLayer,
  packQuantized,
  packWeights,
  packedByteLength,
  packingOrder,
  unpackCodes,
  validatePackedLayer,
  valuesPerWord,
  wordsPerRow,
} from '../../src/core/packing.ts';
import { QuantizeError, dequantizeChannels, quantizeChannels } from '../../src/core/quantize.ts';
import { mulberry32 } from '../fixtures/mulberry32.ts';

function randomWeights(rand: () => number, n: number): Float32Array {
  return new Float32Array(n).map(() => (rand() - 0.5) * (rand() < 0.05 ? 8 : 1));
}

/** Bit patterns, so -0/NaN differences and 1-ulp differences cannot hide. */
function bitsOf(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

function groupsOf(p: PackedLayer): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let i = 0; i < p.groups.length; i += GROUP_STRIDE) {
    out.push([p.groups[i]!, p.groups[i + 1]!, p.groups[i + 2]!]);
  }
  return out;
}

function metaColumn(p: PackedLayer, field: number): number[] {
  return Array.from({ length: p.outChannels }, (_, i) => p.meta[i * META_STRIDE + field]!);
}

const ROW_LENGTHS = [1, 7, 33, 64, 257];

describe('valuesPerWord / wordsPerRow', () => {
  it('floor(32 / bits) values, no straddling', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(valuesPerWord)).toEqual([32, 16, 10, 8, 6, 5, 4, 4]);
    expect(wordsPerRow(3, 257)).toBe(26);
    expect(wordsPerRow(7, 257)).toBe(65);
    expect(wordsPerRow(8, 1)).toBe(1);
    expect(() => valuesPerWord(9)).toThrow(QuantizeError);
  });

  it('an off channel (0 bits) stores no codes: 0 values per word, 0 words', () => {
    expect(valuesPerWord(0)).toBe(0);
    expect(wordsPerRow(0, 1)).toBe(0);
    expect(wordsPerRow(0, 257)).toBe(0);
  });
});

describe('packLayer: round trip', () => {
  for (let bits = 1; bits <= 8; bits++) {
    it(`${bits}-bit codes come back exactly for row lengths ${ROW_LENGTHS.join(', ')}`, () => {
      const rand = mulberry32(100 + bits);
      for (const row of ROW_LENGTHS) {
        const out = 5;
        const w = randomWeights(rand, out * row);
        const widths = new Uint8Array(out).fill(bits);
        const q = quantizeChannels(w, { outChannels: out, rowLength: row }, widths);
        const packed = packQuantized(q);
        validatePackedLayer(packed);
        for (let j = 0; j < out; j++) {
          expect(Array.from(unpackCodes(packed, j))).toEqual(
            Array.from(q.codes.subarray(j * row, (j + 1) * row)),
          );
        }
        expect(packed.words.length).toBe(out * Math.ceil(row / Math.floor(32 / bits)));
        // Each non-constant row's maximum takes the top code, so all-ones fields are exercised.
        if (row > 1) expect(Math.max(...q.codes)).toBe(2 ** bits - 1);
      }
    });
  }

  it('mixed random widths and odd row lengths: codes exact, dequantized bit-for-bit', () => {
    const rand = mulberry32(42);
    for (const row of ROW_LENGTHS) {
      const out = 37;
      const w = randomWeights(rand, out * row);
      const widths = new Uint8Array(out).map(() => 1 + Math.floor(rand() * 8));
      const q = quantizeChannels(w, [out, row], widths);
      const packed = packLayer(w, out, row, widths);
      for (let j = 0; j < out; j++) {
        expect(Array.from(unpackCodes(packed, j))).toEqual(
          Array.from(q.codes.subarray(j * row, (j + 1) * row)),
        );
      }
      expect(bitsOf(dequantizePacked(packed))).toEqual(bitsOf(dequantizeChannels(q)));
    }
  });

  it('off channels (0 bits) among mixed widths: codes 0, zero words, dequantized to +0 bit-for-bit as core', () => {
    const rand = mulberry32(43);
    for (const row of ROW_LENGTHS) {
      const out = 29;
      const w = randomWeights(rand, out * row);
      const widths = new Uint8Array(out).map((_, j) => (j % 3 === 0 ? 0 : 1 + Math.floor(rand() * 8)));
      const q = quantizeChannels(w, [out, row], widths);
      const packed = packLayer(w, out, row, widths);
      validatePackedLayer(packed);
      let words = 0;
      for (let j = 0; j < out; j++) {
        expect(Array.from(unpackCodes(packed, j))).toEqual(Array.from(q.codes.subarray(j * row, (j + 1) * row)));
        words += widths[j] === 0 ? 0 : Math.ceil(row / Math.floor(32 / widths[j]!));
      }
      expect(packed.words.length).toBe(words);
      const deq = dequantizePacked(packed);
      expect(bitsOf(deq)).toEqual(bitsOf(dequantizeChannels(q)));
      for (let j = 0; j < out; j += 3) expect(bitsOf(deq.subarray(j * row, (j + 1) * row))).toEqual(new Array(row).fill(0));
    }
  });

  it('a layer with every channel off packs to no words and dequantizes to zeros', () => {
    const w = randomWeights(mulberry32(44), 4 * 9);
    const packed = packLayer(w, 4, 9, new Uint8Array(4));
    validatePackedLayer(packed);
    expect(packed.words.length).toBe(0);
    expect(groupsOf(packed)).toEqual([[0, 0, 4]]);
    expect(bitsOf(dequantizePacked(packed))).toEqual(new Array(36).fill(0));
    expect(packedByteLength(9, new Uint8Array(4)).words).toBe(0);
  });

  it('survives structured clone (what IndexedDB stores)', () => {
    const rand = mulberry32(8);
    const w = randomWeights(rand, 12 * 19);
    const widths = Uint8Array.from([2, 4, 8, 2, 2, 2, 3, 5, 6, 7, 1, 4]);
    const packed = packWeights(w, [12, 19], widths);
    const cloned = structuredClone(packed);
    expect(cloned.words).toBeInstanceOf(Uint32Array);
    expect(bitsOf(dequantizePacked(cloned))).toEqual(bitsOf(dequantizePacked(packed)));
  });
});

describe('packLayer: layout', () => {
  it('order is width-descending, stable; groups and position match', () => {
    const widths = Uint8Array.from([2, 8, 4, 2, 8, 3]);
    expect(Array.from(packingOrder(widths))).toEqual([1, 4, 2, 5, 0, 3]);
    const w = new Float32Array(6 * 5).map((_, i) => Math.sin(i));
    const packed = packLayer(w, 6, 5, widths);
    expect(metaColumn(packed, META_CHANNEL)).toEqual([1, 4, 2, 5, 0, 3]);
    expect(metaColumn(packed, META_BITS)).toEqual([8, 8, 4, 3, 2, 2]);
    expect(metaColumn(packed, META_VALUES_PER_WORD)).toEqual([4, 4, 8, 10, 16, 16]);
    // Row of 5: 8 bits -> 2 words, 4/3/2 bits -> 1 word.
    expect(metaColumn(packed, META_WORD_OFFSET)).toEqual([0, 2, 4, 5, 6, 7]);
    expect(packed.words.length).toBe(8);
    expect(groupsOf(packed)).toEqual([
      [8, 0, 2],
      [4, 2, 3],
      [3, 3, 4],
      [2, 4, 6],
    ]);
    expect(Array.from(packed.position)).toEqual([4, 0, 2, 5, 1, 3]);
    // Per-position tables follow the packed order.
    const q = quantizeChannels(w, [6, 5], widths);
    expect(Array.from(packed.scale)).toEqual([1, 4, 2, 5, 0, 3].map((c) => q.scale[c]));
    expect(Array.from(packed.zero)).toEqual([1, 4, 2, 5, 0, 3].map((c) => q.zero[c]));
    expect(Array.from(packed.max)).toEqual([1, 4, 2, 5, 0, 3].map((c) => q.max[c]));
  });

  it('off channels (0 bits) come last, in their own group, with no words', () => {
    const widths = Uint8Array.from([0, 8, 2, 0, 4]);
    expect(Array.from(packingOrder(widths))).toEqual([1, 4, 2, 0, 3]);
    const w = new Float32Array(5 * 5).map((_, i) => Math.sin(i));
    const packed = packLayer(w, 5, 5, widths);
    expect(metaColumn(packed, META_BITS)).toEqual([8, 4, 2, 0, 0]);
    expect(metaColumn(packed, META_VALUES_PER_WORD)).toEqual([4, 8, 16, 0, 0]);
    expect(metaColumn(packed, META_WORD_OFFSET)).toEqual([0, 2, 3, 4, 4]);
    expect(packed.words.length).toBe(4);
    expect(groupsOf(packed)).toEqual([
      [8, 0, 1],
      [4, 1, 2],
      [2, 2, 3],
      [0, 3, 5],
    ]);
    expect(bitsOf(packed.scale.subarray(3))).toEqual([0, 0]);
    expect(bitsOf(packed.zero.subarray(3))).toEqual([0, 0]);
    expect(bitsOf(packed.max.subarray(3))).toEqual([0, 0]);
  });

  it('random layers: offsets follow the word-count formula, groups partition positions', () => {
    const rand = mulberry32(77);
    for (const row of ROW_LENGTHS) {
      const out = 50;
      const widths = new Uint8Array(out).map(() => 1 + Math.floor(rand() * 8));
      const packed = packLayer(randomWeights(rand, out * row), out, row, widths);
      let offset = 0;
      for (let p = 0; p < out; p++) {
        const ch = packed.meta[p * META_STRIDE + META_CHANNEL]!;
        expect(packed.meta[p * META_STRIDE + META_BITS]).toBe(widths[ch]);
        expect(packed.meta[p * META_STRIDE + META_WORD_OFFSET]).toBe(offset);
        expect(packed.position[ch]).toBe(p);
        offset += Math.ceil(row / Math.floor(32 / widths[ch]!));
        if (p > 0) {
          const prev = packed.meta[(p - 1) * META_STRIDE + META_CHANNEL]!;
          // Width descending, index ascending within a width.
          expect(widths[prev]! > widths[ch]! || (widths[prev] === widths[ch] && prev < ch)).toBe(true);
        }
      }
      expect(packed.words.length).toBe(offset);
      const present = [...new Set(widths)].sort((a, b) => b - a);
      const groups = groupsOf(packed);
      expect(groups.map((g) => g[0])).toEqual(present);
      for (const [bits, start, end] of groups) {
        expect(end - start).toBe(widths.filter((b) => b === bits).length);
      }
    }
  });

  it('LSB-first bit positions, unused bits and slots are zero (3 and 7 bits)', () => {
    // 3 bits, row of 11: codes 0..7 then 0..2; word 0 holds codes 0..9, word 1 holds code 10.
    const w = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2]);
    const packed = packLayer(w, 1, 11, Uint8Array.from([3]));
    let expected0 = 0;
    [0, 1, 2, 3, 4, 5, 6, 7, 0, 1].forEach((c, k) => (expected0 += c * 2 ** (3 * k)));
    expect(packed.words[0]).toBe(expected0);
    expect(packed.words[0]! >>> 30).toBe(0);
    expect(packed.words[1]).toBe(2);

    // 7 bits: 4 codes per word at bits 0, 7, 14, 21; bits 28..31 stay zero even for code 127.
    const w7 = Float32Array.from([0, 127, 127, 127, 127]);
    const p7 = packLayer(w7, 1, 5, Uint8Array.from([7]));
    expect(Array.from(p7.words)).toEqual([127 * (2 ** 7 + 2 ** 14 + 2 ** 21), 127]);
  });

  it('1-bit rows use all 32 bits, including bit 31', () => {
    const w = new Float32Array(32).fill(1);
    w[0] = 0;
    const packed = packLayer(w, 1, 32, Uint8Array.from([1]));
    expect(packed.words[0]).toBe(0xfffffffe);
    expect(Array.from(unpackCodes(packed, 0))).toEqual([0, ...new Array(31).fill(1)]);
  });
});

describe('packedByteLength', () => {
  it('matches the arrays packLayer produces', () => {
    const rand = mulberry32(3);
    for (const row of ROW_LENGTHS) {
      const widths = new Uint8Array(23).map(() => 1 + Math.floor(rand() * 8));
      const packed = packLayer(randomWeights(rand, 23 * row), 23, row, widths);
      const size = packedByteLength(row, widths);
      expect(size.words).toBe(packed.words.byteLength);
      const tables = [packed.meta, packed.scale, packed.zero, packed.max, packed.position, packed.groups];
      expect(size.tables).toBe(tables.reduce((s, a) => s + a.byteLength, 0));
      expect(size.total).toBe(size.words + size.tables);
    }
  });

  it('reports a 3-bit-average layer (beta = 0.125) against f32', () => {
    // 256 x 256: top 1/8 of channels at 8 bits, next 1/8 at 4 bits, the rest at 2 bits.
    const out = 256;
    const row = 256;
    const widths = new Uint8Array(out).map((_, j) => (j < 32 ? 8 : j < 64 ? 4 : 2));
    const avgBits = widths.reduce((s, b) => s + b, 0) / out;
    expect(avgBits).toBe(3);
    const size = packedByteLength(row, widths);
    const f32Bytes = out * row * 4;
    // 32 x 64 + 32 x 32 + 192 x 16 words.
    expect(size.words).toBe((32 * 64 + 32 * 32 + 192 * 16) * 4);
    expect(size.words / f32Bytes).toBe(3 / 32);
    // Tables: 8 u32/f32 per channel + 3 groups x 3 u32.
    expect(size.tables).toBe(out * 8 * 4 + 3 * 3 * 4);
    // Uniform 3 bits costs more than the mix (10 codes per word -> 3.2 bits per code).
    const uniform3 = packedByteLength(row, new Uint8Array(out).fill(3));
    expect(uniform3.words).toBe(out * 26 * 4);
    console.info(
      `256x256 layer: f32 ${f32Bytes} B; mixed 8/4/2 (avg 3 bits) words ${size.words} B ` +
        `(${((100 * size.words) / f32Bytes).toFixed(2)}%), +tables ${size.tables} B = ` +
        `${size.total} B (${((100 * size.total) / f32Bytes).toFixed(2)}%); ` +
        `uniform 3-bit words ${uniform3.words} B (${((100 * uniform3.words) / f32Bytes).toFixed(2)}%)`,
    );
  });
});

describe('errors', () => {
  const w = new Float32Array(12).map((_, i) => i / 7);
  const packed = packLayer(w, 3, 4, Uint8Array.from([2, 5, 8]));

  it('unpackCodes rejects channels out of range', () => {
    for (const bad of [-1, 3, 1.5, NaN]) {
      try {
        unpackCodes(packed, bad);
        throw new Error('expected a PackingError');
      } catch (e) {
        expect(e).toBeInstanceOf(PackingError);
        expect(e).toBeInstanceOf(ChordError);
        expect((e as PackingError).code).toBe('PACK_BAD_CHANNEL');
      }
    }
  });

  it('validatePackedLayer catches corrupted tables', () => {
    validatePackedLayer(packed);
    const corruptions: PackedLayer[] = [
      { ...packed, words: packed.words.subarray(1) },
      { ...packed, scale: packed.scale.subarray(1) },
      { ...packed, position: Uint32Array.from([0, 0, 0]) },
      { ...packed, groups: packed.groups.subarray(3) },
      { ...packed, meta: packed.meta.map((v, i) => (i === META_WORD_OFFSET + META_STRIDE ? v + 1 : v)) },
      { ...packed, meta: packed.meta.map((v, i) => (i === META_BITS ? 1 : v)) },
      { ...packed, rowLength: 5 },
    ];
    for (const broken of corruptions) {
      expect(() => validatePackedLayer(broken)).toThrow(PackingError);
      expect(() => dequantizePacked(broken)).toThrow(PackingError);
    }
  });

  it('validatePackedLayer keeps off channels strict: +0 scale, zero and max, no values per word', () => {
    const off = packLayer(w, 3, 4, Uint8Array.from([2, 0, 8]));
    validatePackedLayer(off);
    const p = 2; // the off channel's packed position
    const corruptions: PackedLayer[] = [
      { ...off, max: off.max.map((v, i) => (i === p ? 0.5 : v)) },
      { ...off, zero: off.zero.map((v, i) => (i === p ? -0 : v)) },
      { ...off, scale: off.scale.map((v, i) => (i === p ? 2 ** -20 : v)) },
      { ...off, meta: off.meta.map((v, i) => (i === p * META_STRIDE + META_VALUES_PER_WORD ? 32 : v)) },
      // An off channel claiming words: the total no longer matches.
      { ...off, words: Uint32Array.from([...off.words, 0]) },
      // The 2-bit channel relabelled as off: its scale is not 0 and its group and words disagree.
      { ...packed, meta: packed.meta.map((v, i) => (i === 2 * META_STRIDE + META_BITS || i === 2 * META_STRIDE + META_VALUES_PER_WORD ? 0 : v)) },
    ];
    for (const broken of corruptions) {
      expect(() => validatePackedLayer(broken)).toThrow(PackingError);
      expect(() => dequantizePacked(broken)).toThrow(PackingError);
    }
  });

  it('packLayer passes quantizer errors through', () => {
    expect(() => packLayer(w, 3, 4, Uint8Array.from([2, 9, 8]))).toThrow(QuantizeError);
    expect(() => packLayer(w, 4, 4, Uint8Array.from([2, 2, 2, 2]))).toThrow(QuantizeError);
  });
});
