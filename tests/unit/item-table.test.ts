import { describe, expect, it } from 'vitest';
import {
  dequantizeItemTable,
  f16Value,
  itemTableByteLength,
  itemTableFromBytes,
  itemTableScalesOffset,
  joinItemTable,
  quantizeItemTable,
  splitItemTable,
} from '../../src/core/item-table.ts';
import { QuantizeError } from '../../src/core/quantize.ts';
import { mulberry32 } from '../fixtures/mulberry32.ts';

function randomTable(rows: number, dim: number, seed: number, scale = 0.1): Float32Array {
  const next = mulberry32(seed);
  const out = new Float32Array(rows * dim);
  for (let i = 0; i < out.length; i++) out[i] = (next() * 2 - 1) * scale * (1 + (i % 7));
  out.fill(0, 0, dim); // padding row
  return out;
}

describe('8-bit item table', () => {
  it('layout: codes in whole words per row, then one f16 scale per row (even count)', () => {
    expect(itemTableByteLength(5, 64)).toBe(5 * 64 + 12);
    expect(itemTableByteLength(4, 6)).toBe(4 * 8 + 8);
    const t = quantizeItemTable(randomTable(5, 6, 1), 5, 6);
    expect(t.rowStride).toBe(8);
    expect(t.bytes.byteLength).toBe(itemTableByteLength(5, 6));
    expect(itemTableScalesOffset(t)).toBe(40);
  });

  it('error per value is at most half a step of its row, and the padding row stays zero', () => {
    const rows = 300;
    const dim = 64;
    const data = randomTable(rows, dim, 2);
    const t = quantizeItemTable(data, rows, dim);
    const back = dequantizeItemTable(t);
    const scales = new Uint16Array(t.bytes.buffer, itemTableScalesOffset(t), rows);
    expect(back.subarray(0, dim).every((v) => v === 0)).toBe(true);
    expect(scales[0]).toBe(0);
    for (let r = 1; r < rows; r++) {
      let maxAbs = 0;
      for (let j = 0; j < dim; j++) maxAbs = Math.max(maxAbs, Math.abs(data[r * dim + j]!));
      const step = f16Value(scales[r]!);
      // The scale is maxabs/127 rounded up to f16: within one f16 ulp (2^-10 relative).
      expect(step).toBeGreaterThanOrEqual(maxAbs / 127);
      expect(step).toBeLessThanOrEqual((maxAbs / 127) * (1 + 2 ** -10));
      for (let j = 0; j < dim; j++) expect(Math.abs(back[r * dim + j]! - data[r * dim + j]!)).toBeLessThanOrEqual(step / 2 + 1e-12);
    }
  });

  it('dequantized values are exact float32 products of code and scale', () => {
    const t = quantizeItemTable(randomTable(50, 16, 3, 3), 50, 16);
    const back = dequantizeItemTable(t);
    const codes = new Int8Array(t.bytes.buffer, 0, 50 * 16);
    const scales = new Uint16Array(t.bytes.buffer, itemTableScalesOffset(t), 50);
    for (let r = 0; r < 50; r++) {
      for (let j = 0; j < 16; j++) expect(back[r * 16 + j]).toBe(codes[r * 16 + j]! * f16Value(scales[r]!));
    }
  });

  it('tiny rows get the smallest normal f16 scale, never a subnormal', () => {
    const data = new Float32Array(8).fill(1e-7);
    const t = quantizeItemTable(data, 2, 4);
    const scales = new Uint16Array(t.bytes.buffer, itemTableScalesOffset(t), 2);
    expect(f16Value(scales[0]!)).toBe(2 ** -14);
    expect((scales[0]! >> 10) & 0x1f).toBe(1);
  });

  it('round trip through bytes; damaged bytes are refused with QuantizeError', () => {
    const t = quantizeItemTable(randomTable(20, 12, 4), 20, 12);
    const again = itemTableFromBytes(t.bytes.slice(), 20, 12);
    expect(dequantizeItemTable(again)).toEqual(dequantizeItemTable(t));
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(QuantizeError);
        return (e as QuantizeError).code;
      }
      return 'no error';
    };
    expect(code(() => itemTableFromBytes(t.bytes.slice(0, t.bytes.length - 4), 20, 12))).toBe('QUANT_LENGTH_MISMATCH');
    const bad = t.bytes.slice();
    bad[5] = 0x80;
    expect(code(() => itemTableFromBytes(bad, 20, 12))).toBe('QUANT_BAD_CODE');
    expect(code(() => quantizeItemTable(new Float32Array([1, Number.NaN]), 1, 2))).toBe('QUANT_NON_FINITE');
    expect(code(() => quantizeItemTable(new Float32Array([1e7, 0]), 1, 2))).toBe('QUANT_RANGE_OVERFLOW');
    expect(code(() => quantizeItemTable(new Float32Array(3), 1, 2))).toBe('QUANT_LENGTH_MISMATCH');
  });

  it('splitItemTable takes item_emb out of a backbone into the table; joinItemTable puts its values back first', () => {
    const emb = randomTable(6, 8, 3);
    const backbone = new Map([
      ['pos_emb', { shape: [2, 8], data: new Float32Array(16).fill(0.5) }],
      ['item_emb', { shape: [6, 8], data: emb }],
    ]);
    const split = splitItemTable(backbone, 6, 8)!;
    expect(split.table.bytes).toEqual(quantizeItemTable(emb, 6, 8).bytes);
    expect([...split.rest.keys()]).toEqual(['pos_emb']);
    expect(backbone.has('item_emb')).toBe(true); // the input is left as it was
    const joined = joinItemTable(split.rest, split.table);
    expect([...joined.keys()]).toEqual(['item_emb', 'pos_emb']);
    expect(joined.get('item_emb')).toEqual({ shape: [6, 8], data: dequantizeItemTable(split.table) });
    expect(splitItemTable(split.rest, 6, 8)).toBeUndefined();
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as QuantizeError).code;
      }
      return undefined;
    };
    expect(code(() => splitItemTable(backbone, 7, 8))).toBe('QUANT_BAD_SHAPE');
    expect(code(() => joinItemTable(backbone, split.table))).toBe('QUANT_BAD_SHAPE');
  });
});
