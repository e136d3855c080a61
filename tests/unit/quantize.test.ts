import { describe, expect, it } from 'vitest';
import { ChordError } from '../../src/core/errors.ts';
import {
  QuantizeError,
  channelRanges,
  channelScale,
  checkQuantized,
  dequantizeChannels,
  dequantizeCode,
  fakeQuantize,
  quantizeChannels,
  roundHalfEven,
} from '../../src/core/quantize.ts';
import { mulberry32 } from '../fixtures/mulberry32.ts';

function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Distance from |x| to the next larger f32 (x an f32). */
function ulp32(x: number): number {
  const a = Math.abs(Math.fround(x));
  const buf = new Float32Array([a]);
  const bitsView = new Uint32Array(buf.buffer);
  bitsView[0] = bitsView[0]! + 1;
  return buf[0]! - a;
}

function uniformBits(out: number, bits: number): Uint8Array {
  return new Uint8Array(out).fill(bits);
}

/**
 * Asserts every quantizer invariant for one layer; returns the largest error / half-step seen on
 * channels whose step is far above f32 resolution.
 */
function checkInvariants(weights: Float32Array, out: number, row: number, bits: Uint8Array): number {
  const q = quantizeChannels(weights, { outChannels: out, rowLength: row }, bits);
  const deq = dequantizeChannels(q);
  const { min, max } = channelRanges(weights, out, row);
  let worst = 0;
  for (let j = 0; j < out; j++) {
    const b = bits[j]!;
    const n = 2 ** b - 1;
    const m = min[j]!;
    const hi = max[j]!;
    const s = q.scale[j]!;
    expect(q.zero[j]).toBe(m);
    expect(q.max[j]).toBe(hi);
    expect(Math.fround(s)).toBe(s);
    if (hi > m) {
      // Never finer than the ideal step, at most 2^-(23-b) coarser.
      expect(s).toBeGreaterThanOrEqual((hi - m) / n);
      expect(s).toBeLessThanOrEqual(((hi - m) / n) * (1 + 2 ** -(23 - b)) + 2 ** -149);
      // The product the kernel computes is exact, so FMA contraction cannot change the result.
      for (let c = 0; c <= n; c++) expect(Math.fround(c * s)).toBe(c * s);
    } else {
      expect(s).toBe(0);
    }
    let rowMin = Infinity;
    let rowMax = -Infinity;
    const ulp = ulp32(Math.max(Math.abs(m), Math.abs(hi)));
    const tol = s / 2 + ulp;
    for (let k = 0; k < row; k++) {
      const i = j * row + k;
      const code = q.codes[i]!;
      expect(code).toBeLessThanOrEqual(n);
      const err = Math.abs(weights[i]! - deq[i]!);
      if (err > tol) {
        throw new Error(`channel ${j} bits ${b}: |${weights[i]} - ${deq[i]}| = ${err} > ${tol}`);
      }
      // Where f32 rounding is negligible next to the step, the error is half a step at most.
      if (s / 2 > 1e3 * ulp) worst = Math.max(worst, err / (s / 2));
      rowMin = Math.min(rowMin, deq[i]!);
      rowMax = Math.max(rowMax, deq[i]!);
    }
    // Both ends of the range come back exactly.
    expect(rowMin).toBe(m);
    expect(rowMax).toBe(hi);
  }
  return worst;
}

describe('quantizeChannels: error bound and range', () => {
  for (let bits = 1; bits <= 8; bits++) {
    it(`${bits}-bit random gaussian and uniform layers stay within half a step`, () => {
      const rand = mulberry32(1000 + bits);
      const out = 16;
      const row = 97;
      const w = new Float32Array(out * row);
      for (let j = 0; j < out; j++) {
        // Vary location and spread per channel, including all-negative and all-positive rows.
        const centre = (rand() - 0.5) * 10 ** (rand() * 6 - 3);
        const spread = 10 ** (rand() * 8 - 6);
        for (let k = 0; k < row; k++) {
          w[j * row + k] = j % 2 === 0 ? centre + spread * gaussian(rand) : centre + spread * rand();
        }
      }
      const worst = checkInvariants(w, out, row, uniformBits(out, bits));
      // The bound is tight: some weight lands close to the middle of a step.
      expect(worst).toBeGreaterThan(0.5);
      expect(worst).toBeLessThanOrEqual(1 + 2e-3);
    });
  }

  it('mixed widths per channel', () => {
    const rand = mulberry32(7);
    const out = 40;
    const row = 33;
    const w = new Float32Array(out * row).map(() => gaussian(rand) * 0.05);
    const bits = new Uint8Array(out).map(() => 1 + Math.floor(rand() * 8));
    checkInvariants(w, out, row, bits);
  });

  it('constant channels: scale 0, codes 0, values reproduced exactly', () => {
    const values = [0, -0, 1.5, -3.25, 1e-40, -1e30, Math.fround(0.1)];
    const row = 9;
    const w = new Float32Array(values.length * row);
    values.forEach((v, j) => w.fill(v, j * row, (j + 1) * row));
    for (let bits = 1; bits <= 8; bits++) {
      const q = quantizeChannels(w, [values.length, row], uniformBits(values.length, bits));
      expect(Array.from(q.scale)).toEqual(new Array(values.length).fill(0));
      expect(q.codes.every((c) => c === 0)).toBe(true);
      const deq = dequantizeChannels(q);
      values.forEach((v, j) => {
        for (let k = 0; k < row; k++) {
          const d = deq[j * row + k]!;
          expect(Number.isNaN(d)).toBe(false);
          // -0 is normalised to +0 (the kernel's zero + 0 * 0 does the same).
          expect(d).toBe(Math.fround(v) + 0);
        }
      });
    }
  });

  it('tiny ranges: 1e-30 spread around 1e-30', () => {
    const rand = mulberry32(3);
    const out = 8;
    const row = 50;
    const w = new Float32Array(out * row).map(() => 1e-30 + rand() * 1e-30);
    for (let bits = 1; bits <= 8; bits++) checkInvariants(w, out, row, uniformBits(out, bits));
  });

  it('subnormal weights: bounded error, and lossless when the range has fewer than 2^b ulps', () => {
    const tiny = 2 ** -149;
    const rand = mulberry32(11);
    const out = 4;
    const row = 64;
    const wide = new Float32Array(out * row).map(() => Math.floor(rand() * 1e6) * tiny);
    for (let bits = 1; bits <= 8; bits++) checkInvariants(wide, out, row, uniformBits(out, bits));

    // 0..40 times the smallest subnormal: 8 bits can hold every one of them.
    const narrow = new Float32Array(41).map((_, i) => (i - 20) * tiny);
    const q = quantizeChannels(narrow, [1, 41], uniformBits(1, 8));
    expect(q.scale[0]).toBe(tiny);
    expect(Array.from(dequantizeChannels(q))).toEqual(Array.from(narrow, (v) => v + 0));
  });

  it('a range f32 cannot span with m + n*s still reproduces the maximum exactly', () => {
    // m = -1e10 (ulp 1024) and M = 1: no f32 scale lands m + n*s on 1; the top code does.
    const w = new Float32Array([-1e10, 1, -5e9, 0.5]);
    const q = quantizeChannels(w, [1, 4], uniformBits(1, 2));
    const deq = dequantizeChannels(q);
    expect(deq[0]).toBe(-1e10);
    expect(deq[1]).toBe(1);
    expect(Array.from(q.codes)).toEqual([0, 3, 1, 3]);
  });

  it('known 2-bit grid, half-to-even ties', () => {
    // [0, 3] at 2 bits: step exactly 1. Ties 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 (half to even).
    const w = new Float32Array([0, 0.5, 1, 1.5, 2, 2.5, 3, 2.75]);
    const q = quantizeChannels(w, { outChannels: 1, rowLength: w.length }, uniformBits(1, 2));
    expect(q.scale[0]).toBe(1);
    expect(Array.from(q.codes)).toEqual([0, 0, 1, 2, 2, 2, 3, 3]);
    expect(Array.from(dequantizeChannels(q))).toEqual([0, 0, 1, 2, 2, 2, 3, 3]);
  });

  it('1-bit channels map to exactly {min, max}', () => {
    const w = new Float32Array([-0.3, 0.1, 0.7, 0.2, 0.25]);
    const deq = fakeQuantize(w, [1, 5], 1);
    expect(Array.from(deq)).toEqual(
      [-0.3, -0.3, 0.7, 0.7, 0.7].map((v) => Math.fround(v)),
    );
  });

  it('deq formula: fround(zero + code * scale) except the top code', () => {
    const s = channelScale(Math.fround(-0.7), Math.fround(1.3), 4);
    expect(dequantizeCode(0, 4, s, Math.fround(-0.7), Math.fround(1.3))).toBe(Math.fround(-0.7));
    expect(dequantizeCode(15, 4, s, Math.fround(-0.7), Math.fround(1.3))).toBe(Math.fround(1.3));
    expect(dequantizeCode(6, 4, s, Math.fround(-0.7), Math.fround(1.3))).toBe(
      Math.fround(Math.fround(-0.7) + 6 * s),
    );
    // A 4-bit scale has at most 20 significant bits.
    const mant = s / 2 ** Math.floor(Math.log2(s));
    expect(Number.isInteger(mant * 2 ** 19)).toBe(true);
  });

  it('roundHalfEven', () => {
    expect([0.5, 1.5, 2.5, 3.5, 2.4999, 2.5001, 7, 0].map(roundHalfEven)).toEqual([
      0, 2, 2, 4, 2, 3, 7, 0,
    ]);
  });
});

describe('quantizeChannels: API', () => {
  it('shape [out, in, kh, kw] is the same as {outChannels, rowLength}', () => {
    const rand = mulberry32(5);
    const w = new Float32Array(4 * 3 * 3 * 2).map(() => rand() - 0.5);
    const bits = new Uint8Array([2, 8, 5, 3]);
    const a = quantizeChannels(w, [4, 3, 3, 2], bits);
    const b = quantizeChannels(w, { outChannels: 4, rowLength: 18 }, bits);
    expect(a.rowLength).toBe(18);
    expect(Array.from(a.codes)).toEqual(Array.from(b.codes));
    expect(Array.from(a.scale)).toEqual(Array.from(b.scale));
  });

  it('does not modify its inputs and copies bits', () => {
    const w = new Float32Array([0.1, -0.2, 0.3, 0.4]);
    const copy = w.slice();
    const bits = new Uint8Array([3, 6]);
    const q = quantizeChannels(w, [2, 2], bits);
    bits[0] = 8;
    expect(Array.from(w)).toEqual(Array.from(copy));
    expect(q.bits[0]).toBe(3);
  });

  it('fakeQuantize with one width equals per-channel widths of that value', () => {
    const rand = mulberry32(9);
    const w = new Float32Array(6 * 10).map(() => gaussian(rand));
    const a = fakeQuantize(w, [6, 10], 3);
    const b = fakeQuantize(w, [6, 10], uniformBits(6, 3));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(w));
  });

  it('channelRanges', () => {
    const w = new Float32Array([3, -1, 2, 5, 5, 5]);
    const { min, max } = channelRanges(w, 2, 3);
    expect(Array.from(min)).toEqual([-1, 5]);
    expect(Array.from(max)).toEqual([3, 5]);
  });
});

describe('quantizeChannels: errors', () => {
  function codeOf(fn: () => unknown): string {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(QuantizeError);
      expect(e).toBeInstanceOf(ChordError);
      expect((e as QuantizeError).name).toBe('QuantizeError');
      return (e as QuantizeError).code;
    }
    throw new Error('expected a QuantizeError');
  }
  const w = new Float32Array([0, 1, 2, 3]);

  it('bits outside 1..8 (0, a switched-off channel, only per channel)', () => {
    expect(codeOf(() => channelScale(0, 1, 0))).toBe('QUANT_BAD_BITS');
    expect(codeOf(() => quantizeChannels(w, [2, 2], new Uint8Array([4, 9])))).toBe('QUANT_BAD_BITS');
    expect(codeOf(() => fakeQuantize(w, [2, 2], 2.5))).toBe('QUANT_BAD_BITS');
    expect(codeOf(() => channelScale(0, 1, 16))).toBe('QUANT_BAD_BITS');
  });

  it('NaN and Infinity in weights', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const v = new Float32Array([0, 1, bad, 3]);
      expect(codeOf(() => quantizeChannels(v, [2, 2], new Uint8Array([4, 4])))).toBe(
        'QUANT_NON_FINITE',
      );
    }
  });

  it('length mismatches and bad shapes', () => {
    expect(codeOf(() => quantizeChannels(w, [3, 2], uniformBits(3, 4)))).toBe('QUANT_LENGTH_MISMATCH');
    expect(codeOf(() => quantizeChannels(w, [2, 2], uniformBits(3, 4)))).toBe('QUANT_LENGTH_MISMATCH');
    expect(codeOf(() => channelRanges(w, 1, 3))).toBe('QUANT_LENGTH_MISMATCH');
    expect(codeOf(() => quantizeChannels(w, [], uniformBits(1, 4)))).toBe('QUANT_BAD_SHAPE');
    expect(codeOf(() => quantizeChannels(w, [2, 0], uniformBits(2, 4)))).toBe('QUANT_BAD_SHAPE');
    expect(codeOf(() => quantizeChannels(w, { outChannels: 2, rowLength: 1.5 }, uniformBits(2, 4)))).toBe(
      'QUANT_BAD_SHAPE',
    );
  });

  it('a range too wide for f32 dequantization', () => {
    const v = new Float32Array([-3e38, 3e38]);
    expect(codeOf(() => quantizeChannels(v, [1, 2], uniformBits(1, 4)))).toBe('QUANT_RANGE_OVERFLOW');
    expect(codeOf(() => channelScale(1, 0, 4))).toBe('QUANT_BAD_RANGE');
  });

  it('codes above 2^bits - 1 are rejected on dequantization', () => {
    const q = quantizeChannels(w, [2, 2], new Uint8Array([2, 2]));
    const broken = { ...q, codes: Uint8Array.from([0, 3, 4, 0]) };
    expect(codeOf(() => checkQuantized(broken))).toBe('QUANT_BAD_CODE');
    expect(codeOf(() => dequantizeChannels(broken))).toBe('QUANT_BAD_CODE');
  });

  it('switches a channel at OFF_BITS (0) off: its weights dequantize to 0, the other channels are untouched', () => {
    const w = Float32Array.from([0.5, -1.25, 3, 2, -4, 7, 1, 1, 1]);
    const q = quantizeChannels(w, [3, 3], Uint8Array.from([4, 0, 1]));
    expect(Array.from(q.codes.subarray(3, 6))).toEqual([0, 0, 0]);
    expect([q.scale[1], q.zero[1], q.max[1]]).toEqual([0, 0, 0]);
    const deq = dequantizeChannels(q);
    expect(Array.from(deq.subarray(3, 6))).toEqual([0, 0, 0]);
    expect(Array.from(deq.subarray(0, 3))).toEqual(Array.from(fakeQuantize(w.subarray(0, 3), [1, 3], 4)));
    expect(Array.from(deq.subarray(6, 9))).toEqual([1, 1, 1]);
    expect(Array.from(fakeQuantize(w, [3, 3], 0))).toEqual(new Array(9).fill(0));
    expect(codeOf(() => fakeQuantize(w, [3, 3], 9))).toBe('QUANT_BAD_BITS');
  });
});
