import { describe, expect, it } from 'vitest';
import { fillNormal, fillUniform, mulHi32, philox4x32, streamId, uniformU32 } from '../../src/core/prng.ts';

const hex = (words: Uint32Array): string[] => Array.from(words, (w) => w.toString(16).padStart(8, '0'));

/** Straightforward BigInt Philox4x32-10, independent of the 16-bit limb trick. */
function philoxReference(ctr: readonly number[], key: readonly number[]): number[] {
  const mask = 0xffffffffn;
  let [c0, c1, c2, c3] = ctr.map(BigInt) as [bigint, bigint, bigint, bigint];
  let [k0, k1] = key.map(BigInt) as [bigint, bigint];
  for (let r = 0; r < 10; r++) {
    const p0 = 0xd2511f53n * c0;
    const p1 = 0xcd9e8d57n * c2;
    [c0, c1, c2, c3] = [(p1 >> 32n) ^ c1 ^ k0, p1 & mask, (p0 >> 32n) ^ c3 ^ k1, p0 & mask];
    k0 = (k0 + 0x9e3779b9n) & mask;
    k1 = (k1 + 0xbb67ae85n) & mask;
  }
  return [c0, c1, c2, c3].map(Number);
}

/** Small deterministic generator for test inputs (xorshift32). */
function testWords(count: number, seed = 0x12345678): number[] {
  let x = seed;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.push(x >>> 0);
  }
  return out;
}

/** Index of the first element whose float32 bits differ, or -1 (exact, and fast on big arrays). */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

function meanVar(values: Float32Array): { mean: number; variance: number } {
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / values.length;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  return { mean, variance: sq / (values.length - 1) };
}

describe('philox4x32', () => {
  it('matches the Random123 known-answer vectors for Philox4x32-10', () => {
    const out = new Uint32Array(4);
    philox4x32(0, 0, 0, 0, 0, 0, out);
    expect(hex(out)).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    const f = 0xffffffff;
    philox4x32(f, f, f, f, f, f, out);
    expect(hex(out)).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, out);
    expect(hex(out)).toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });

  it('agrees with a BigInt reference on arbitrary inputs', () => {
    const words = testWords(6 * 50);
    const out = new Uint32Array(4);
    for (let t = 0; t < 50; t++) {
      const w = words.slice(6 * t, 6 * t + 6) as [number, number, number, number, number, number];
      philox4x32(...w, out);
      expect(Array.from(out)).toEqual(philoxReference(w.slice(0, 4), w.slice(4)));
    }
  });

  it('mulHi32 is the exact high word of the 64-bit product', () => {
    const words = testWords(400, 0x9e3779b9);
    const pairs: [number, number][] = [
      [0, 0],
      [0xffffffff, 0xffffffff],
      [0xffffffff, 1],
      [0x80000000, 2],
      [0xd2511f53, 0xcd9e8d57],
    ];
    for (let i = 0; i < words.length; i += 2) pairs.push([words[i]!, words[i + 1]!]);
    for (const [a, b] of pairs) {
      expect(mulHi32(a, b)).toBe(Number((BigInt(a) * BigInt(b)) >> 32n));
    }
  });
});

describe('streamId (FNV-1a 32 over UTF-8)', () => {
  it('matches published FNV-1a vectors', () => {
    expect(streamId('')).toBe(0x811c9dc5);
    expect(streamId('a')).toBe(0xe40c292c);
    expect(streamId('foobar')).toBe(0xbf9cf968);
  });

  it('hashes the UTF-8 bytes, not UTF-16 code units', () => {
    // 'é' is U+00E9 = UTF-8 C3 A9.
    let h = 0x811c9dc5;
    for (const byte of [0xc3, 0xa9]) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
    expect(streamId('é')).toBe(h);
    expect(streamId('block0.attn.q')).not.toBe(streamId('block0.attn.k'));
  });
});

describe('uniformU32', () => {
  it('is lane counter%4 of Philox block counter/4, keyed by (seed, stream)', () => {
    const out = new Uint32Array(4);
    philox4x32(2, 0, 0, 0, 7, 99, out);
    for (let lane = 0; lane < 4; lane++) expect(uniformU32(7, 99, 8 + lane)).toBe(out[lane]);
    // Counters beyond 2^34 carry the block index into the second counter word.
    philox4x32(1, 1, 0, 0, 7, 99, out);
    expect(uniformU32(7, 99, 4 * (2 ** 32 + 1) + 3)).toBe(out[3]);
  });

  it('rejects seeds and counters outside their ranges', () => {
    expect(() => uniformU32(-1, 0, 0)).toThrow(RangeError);
    expect(() => uniformU32(2 ** 32, 0, 0)).toThrow(RangeError);
    expect(() => uniformU32(0, 1.5, 0)).toThrow(RangeError);
    expect(() => uniformU32(0, 0, -1)).toThrow(RangeError);
  });
});

describe('fillUniform', () => {
  const n = 200_000;
  const values = fillUniform(new Float32Array(n), 1234, streamId('uniform'), 0, 1);

  it('is deterministic and each element depends only on (seed, stream, index)', () => {
    const again = fillUniform(new Float32Array(n), 1234, streamId('uniform'), 0, 1);
    expect(firstBitDifference(again, values)).toBe(-1);
    for (const [offset, length] of [[0, 5], [1, 7], [3, 1], [4093, 13], [n - 9, 9]] as const) {
      const slice = fillUniform(new Float32Array(length), 1234, streamId('uniform'), 0, 1, offset);
      expect(firstBitDifference(slice, values.subarray(offset, offset + length))).toBe(-1);
    }
  });

  it('maps u32 x to lo + (hi - lo) * x / 2^32 rounded to float32', () => {
    const out = fillUniform(new Float32Array(6), 5, 6, -0.5, 2);
    for (let i = 0; i < 6; i++) {
      expect(out[i]).toBe(Math.fround(-0.5 + 2.5 * (uniformU32(5, 6, i) / 2 ** 32)));
    }
  });

  it('stays in range with the mean and variance of U(0,1)', () => {
    let min = Infinity;
    let max = -Infinity;
    for (const v of values) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThanOrEqual(1);
    expect(min).toBeLessThan(1e-4);
    expect(max).toBeGreaterThan(1 - 1e-4);
    const { mean, variance } = meanVar(values);
    // 5 standard errors: se(mean) = sqrt(1/12/n), se(var) = sqrt(1/180/n).
    expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(5 * Math.sqrt(1 / 180 / n));
  });

  it('fills 64 equal bins evenly (chi-square)', () => {
    const bins = new Array<number>(64).fill(0);
    for (const v of values) bins[Math.min(63, Math.floor(v * 64))]! += 1;
    const expected = n / 64;
    const chi2 = bins.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    // 63 degrees of freedom: mean 63, sd ~11.2; 120 is beyond p = 1e-5.
    expect(chi2).toBeLessThan(120);
  });

  it('gives uncorrelated sequences for different streams and seeds', () => {
    const m = 50_000;
    const a = fillUniform(new Float32Array(m), 1, streamId('block0.attn.q'), -1, 1);
    const b = fillUniform(new Float32Array(m), 1, streamId('block0.attn.k'), -1, 1);
    const c = fillUniform(new Float32Array(m), 2, streamId('block0.attn.q'), -1, 1);
    const corr = (x: Float32Array, y: Float32Array): number => {
      let sxy = 0;
      let sxx = 0;
      let syy = 0;
      for (let i = 0; i < x.length; i++) {
        sxy += x[i]! * y[i]!;
        sxx += x[i]! ** 2;
        syy += y[i]! ** 2;
      }
      return sxy / Math.sqrt(sxx * syy);
    };
    expect(Math.abs(corr(a, b))).toBeLessThan(5 / Math.sqrt(m));
    expect(Math.abs(corr(a, c))).toBeLessThan(5 / Math.sqrt(m));
    // Shifted by one element: no lag correlation within a stream either.
    expect(Math.abs(corr(a.subarray(1), a.subarray(0, m - 1)))).toBeLessThan(5 / Math.sqrt(m));
    let equal = 0;
    for (let i = 0; i < m; i++) if (a[i] === b[i]) equal++;
    expect(equal).toBeLessThan(10);
  });

  it('rejects bad bounds and offsets', () => {
    expect(() => fillUniform(new Float32Array(1), 0, 0, 1, 0)).toThrow(RangeError);
    expect(() => fillUniform(new Float32Array(1), 0, 0, 0, Infinity)).toThrow(RangeError);
    expect(() => fillUniform(new Float32Array(1), 0, 0, 0, 1, -1)).toThrow(RangeError);
  });
});

describe('fillNormal', () => {
  const n = 200_000;
  const values = fillNormal(new Float32Array(n), 77, streamId('normal'), 0, 1);

  it('is deterministic and sliceable at any (odd or even) offset', () => {
    const again = fillNormal(new Float32Array(n), 77, streamId('normal'), 0, 1);
    expect(firstBitDifference(again, values)).toBe(-1);
    for (const [offset, length] of [[1, 1], [1, 6], [2, 5], [999, 10], [n - 3, 3]] as const) {
      const slice = fillNormal(new Float32Array(length), 77, streamId('normal'), 0, 1, offset);
      expect(firstBitDifference(slice, values.subarray(offset, offset + length))).toBe(-1);
    }
  });

  it('has mean 0, std 1 and the normal one-sigma and tail mass', () => {
    const { mean, variance } = meanVar(values);
    expect(Math.abs(mean)).toBeLessThan(5 / Math.sqrt(n));
    // se(var) = sqrt(2/n) for a normal.
    expect(Math.abs(variance - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    let within1 = 0;
    let beyond3 = 0;
    for (const v of values) {
      if (Math.abs(v) < 1) within1++;
      if (Math.abs(v) > 3) beyond3++;
    }
    expect(Math.abs(within1 / n - 0.682689)).toBeLessThan(0.005);
    expect(Math.abs(beyond3 / n - 0.0026998)).toBeLessThan(0.0007);
    expect(values.every((v) => Number.isFinite(v))).toBe(true);
  });

  it('scales by std and shifts by mean exactly in float32', () => {
    const scaled = fillNormal(new Float32Array(16), 77, streamId('normal'), 0.5, 0.02);
    // z recovered from the std-1 draw; mean + std*z computed in double then rounded once.
    const unit = fillNormal(new Float32Array(16), 77, streamId('normal'), 0, 1);
    for (let i = 0; i < 16; i++) expect(scaled[i]).toBeCloseTo(0.5 + 0.02 * unit[i]!, 6);
  });

  it('draws pair p by Box-Muller from Philox block (p, 0, 1, 0): a domain apart from uniforms', () => {
    const boxMuller = (w: Uint32Array): [number, number] => {
      const u1 = ((w[0]! >>> 5) * 2 ** 26 + (w[1]! >>> 6) + 0.5) / 2 ** 53;
      const u2 = ((w[2]! >>> 5) * 2 ** 26 + (w[3]! >>> 6) + 0.5) / 2 ** 53;
      const r = Math.sqrt(-2 * Math.log(u1));
      return [r * Math.cos(2 * Math.PI * u2), r * Math.sin(2 * Math.PI * u2)];
    };
    const words = new Uint32Array(4);
    philox4x32(5, 0, 1, 0, 3, 4, words);
    const [z10, z11] = boxMuller(words);
    expect(Array.from(fillNormal(new Float32Array(2), 3, 4, 0, 1, 10))).toEqual([
      Math.fround(z10),
      Math.fround(z11),
    ]);
    philox4x32(5, 0, 0, 0, 3, 4, words);
    expect(Math.fround(boxMuller(words)[0])).not.toBe(Math.fround(z10));
  });

  it('rejects a negative std', () => {
    expect(() => fillNormal(new Float32Array(1), 0, 0, 0, -1)).toThrow(RangeError);
  });
});
