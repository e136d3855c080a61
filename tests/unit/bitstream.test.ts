import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  BitstreamError,
  decodeStrategy,
  encodeStrategy,
  MAX_TOTAL_CHANNELS,
  MIN_BITSTREAM_BYTES,
  strategyBitstreamSize,
  type BitstreamErrorCode,
  type StrategyExpectation,
} from '../../src/core/bitstream.ts';
import { crc32 } from '../../src/core/crc32.ts';
import { ChordError } from '../../src/core/errors.ts';
import { FuzzRng } from '../../tools/fuzz/fuzz-bitstream.ts';
import type { LevelTable, Strategy } from '../../src/core/strategy.ts';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const HASH = '0123456789abcdef'.repeat(4);
const META = { modelId: 'm', frozenWeightsHash: HASH };

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function fromHex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** Rewrites the trailer with zlib's CRC-32, so a crafted edit reaches the checks after it. */
function withCrc(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(out.length - 4, zlibCrc32(out.subarray(0, out.length - 4)), true);
  return out;
}

function strategyOf(levels: number[][], levelTable: LevelTable = [2, 4, 6, 8], beta = 0.125): Strategy {
  return { levelTable, beta, layers: levels.map((l, i) => ({ name: `l${i}`, levels: Uint8Array.from(l) })) };
}

/** Layers [0,1,2,3,3] and [2]: 6 channels, 2 payload bytes, 4 padding bits. */
const SMALL = strategyOf([[0, 1, 2, 3, 3], [2]]);
const SMALL_BYTES = encodeStrategy(SMALL, META);
/** Offsets in SMALL_BYTES (modelId length 1). */
const OFF = { idLen: 8, id: 9, hash: 10, levels: 42, beta: 46, layerCount: 48, counts: 50, payload: 58, crc: 60 };

function codeOf(fn: () => unknown): BitstreamErrorCode | 'no error' {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BitstreamError);
    expect(e).toBeInstanceOf(ChordError);
    return (e as BitstreamError).code;
  }
  return 'no error';
}

function edit(bytes: Uint8Array, f: (b: Uint8Array, v: DataView) => void): Uint8Array {
  const b = bytes.slice();
  f(b, new DataView(b.buffer));
  return b;
}

describe('crc32', () => {
  it('matches the standard check values', () => {
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(ascii('123456789'))).toBe(0xcbf43926);
    expect(crc32(ascii('a'))).toBe(0xe8b7be43);
    expect(crc32(ascii('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
    expect(crc32(new Uint8Array(32))).toBe(0x190a55ad);
    expect(crc32(new Uint8Array(32).fill(0xff))).toBe(0xff6cab0b);
  });

  it('agrees with zlib on random data and continues across splits', () => {
    const rng = new FuzzRng(42);
    for (let t = 0; t < 50; t++) {
      const data = rng.fill(new Uint8Array(rng.int(3000)));
      const expected = zlibCrc32(data);
      expect(crc32(data)).toBe(expected);
      const cut = rng.int(data.length + 1);
      expect(crc32(data.subarray(cut), crc32(data.subarray(0, cut)))).toBe(expected);
    }
  });
});

describe('strategy bitstream layout', () => {
  it('encodes the documented byte table exactly', () => {
    const body =
      '43485244' + // magic "CHRD"
      '01' + // version
      '00' + // flags
      '0000' + // reserved
      '01' + // modelId length
      '6d' + // "m"
      HASH +
      '02040608' + // level table
      '0020' + // beta round(0.125 * 65535) = 8192
      '0200' + // 2 layers
      '05000000' + // 5 channels
      '01000000' + // 1 channel
      'e4' + // channels 0..3 = levels 0,1,2,3 -> 0b11_10_01_00
      '0b'; // channels 4,5 = levels 3,2 -> 0b0000_10_11 (upper 4 bits padding)
    const crc = zlibCrc32(fromHex(body));
    const trailer = hex(Uint8Array.of(crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24));
    expect(hex(SMALL_BYTES)).toBe(body + trailer);
    expect(SMALL_BYTES.length).toBe(64);
    expect(strategyBitstreamSize([5, 1], 1)).toBe(64);
    expect(MIN_BITSTREAM_BYTES).toBe(59);
    expect(strategyBitstreamSize([1], 1)).toBe(MIN_BITSTREAM_BYTES);
    expect(strategyBitstreamSize([4, 4, 4], 10)).toBe(53 + 10 + 12 + 3);
    expect(codeOf(() => strategyBitstreamSize([], 1))).toBe('BITSTREAM_BAD_COUNT');
    expect(codeOf(() => strategyBitstreamSize([1], 65))).toBe('BITSTREAM_BAD_MODEL_ID');
  });

  it('decodes the small stream with default and manifest names', () => {
    const d = decodeStrategy(SMALL_BYTES);
    expect(d.modelId).toBe('m');
    expect(d.frozenWeightsHash).toBe(HASH);
    expect(d.strategy.levelTable).toEqual([2, 4, 6, 8]);
    expect(d.strategy.beta).toBe(8192 / 65535);
    expect(d.strategy.layers.map((l) => l.name)).toEqual(['layer0', 'layer1']);
    expect(Array.from(d.strategy.layers[0]!.levels)).toEqual([0, 1, 2, 3, 3]);
    expect(Array.from(d.strategy.layers[1]!.levels)).toEqual([2]);

    const manifest = [
      { name: 'attn.q', outChannels: 5 },
      { name: 'ffn.w1', outChannels: 1 },
    ];
    const named = decodeStrategy(SMALL_BYTES, { modelId: 'm', frozenWeightsHash: HASH.toUpperCase(), layers: manifest });
    expect(named.strategy.layers.map((l) => l.name)).toEqual(['attn.q', 'ffn.w1']);
  });

  it('round-trips random strategies bit-exactly', () => {
    const rng = new FuzzRng(7);
    const tables: LevelTable[] = [[2, 4, 6, 8], [1, 2, 3, 4], [5, 6, 7, 8], [1, 3, 4, 8]];
    for (let t = 0; t < 200; t++) {
      const levels: number[][] = [];
      const layerCount = rng.range(1, 12);
      for (let i = 0; i < layerCount; i++) levels.push(Array.from({ length: rng.range(1, 300) }, () => rng.int(4)));
      const beta = rng.u32() / 4294967295;
      const s = strategyOf(levels, tables[t % 4]!, beta);
      const meta = { modelId: `sasrec-ml.${t}_v-${rng.int(100)}`, frozenWeightsHash: HASH };
      const bytes = encodeStrategy(s, meta);
      expect(bytes.length).toBe(strategyBitstreamSize(levels.map((l) => l.length), meta.modelId.length));
      const d = decodeStrategy(bytes, { modelId: meta.modelId, layers: s.layers.map((l) => ({ name: l.name, outChannels: l.levels.length })) });
      expect(d.modelId).toBe(meta.modelId);
      expect(d.strategy.levelTable).toEqual(s.levelTable);
      expect(Math.abs(d.strategy.beta - beta)).toBeLessThanOrEqual(0.5 / 65535);
      d.strategy.layers.forEach((l, i) => {
        expect(l.name).toBe(`l${i}`);
        expect(Array.from(l.levels)).toEqual(levels[i]);
      });
      expect(hex(encodeStrategy(d.strategy, d))).toBe(hex(bytes));
    }
  });

  it('keeps beta 0 and 1 exact', () => {
    for (const beta of [0, 1]) {
      expect(decodeStrategy(encodeStrategy(strategyOf([[1]], [2, 4, 6, 8], beta), META)).strategy.beta).toBe(beta);
    }
  });

  it('handles the size limits: 1024 layers, 65536 channels, 2^22 channels in total', () => {
    const many = strategyOf(Array.from({ length: 1024 }, (_, i) => [i & 3]));
    expect(decodeStrategy(encodeStrategy(many, META)).strategy.layers).toHaveLength(1024);
    expect(codeOf(() => encodeStrategy(strategyOf(Array.from({ length: 1025 }, () => [0])), META))).toBe('BITSTREAM_BAD_COUNT');

    const wide = { levelTable: [2, 4, 6, 8] as LevelTable, beta: 0, layers: [{ name: 'w', levels: new Uint8Array(65536).fill(3) }] };
    const wideBytes = encodeStrategy(wide, META);
    expect(decodeStrategy(wideBytes).strategy.layers[0]!.levels.every((v) => v === 3)).toBe(true);
    const tooWide = { ...wide, layers: [{ name: 'w', levels: new Uint8Array(65537) }] };
    expect(codeOf(() => encodeStrategy(tooWide, META))).toBe('BITSTREAM_BAD_COUNT');

    const full = { ...wide, layers: Array.from({ length: 64 }, () => ({ name: 'x', levels: new Uint8Array(65536).fill(2) })) };
    const fullBytes = encodeStrategy(full, META);
    expect(fullBytes.length).toBe(strategyBitstreamSize(Array(64).fill(65536), 1));
    expect(decodeStrategy(fullBytes).strategy.layers).toHaveLength(64);
    const over = { ...full, layers: [...full.layers, { name: 'y', levels: new Uint8Array(1) }] };
    expect(MAX_TOTAL_CHANNELS).toBe(64 * 65536);
    expect(codeOf(() => encodeStrategy(over, META))).toBe('BITSTREAM_BAD_COUNT');
  });

  it('decodes a view at a non-zero byte offset', () => {
    const buf = new Uint8Array(SMALL_BYTES.length + 10).fill(0xaa);
    buf.set(SMALL_BYTES, 3);
    const view = buf.subarray(3, 3 + SMALL_BYTES.length);
    expect(hex(encodeStrategy(decodeStrategy(view).strategy, META))).toBe(hex(SMALL_BYTES));
  });
});

describe('strategy bitstream: the off level (a table starting at 0 bits)', () => {
  it('encodes [0, 3, 4, 5] in version 1 and decodes it back bit-exactly', () => {
    const off = strategyOf([[0, 1, 2, 3, 3], [2]], [0, 3, 4, 5], 0.375);
    const bytes = encodeStrategy(off, META);
    expect(bytes[4]).toBe(1); // no version bump
    expect(Array.from(bytes.subarray(OFF.levels, OFF.levels + 4))).toEqual([0, 3, 4, 5]);
    // Only the table and beta differ from the same levels under [2, 4, 6, 8] (and the CRC).
    const plain = encodeStrategy(strategyOf([[0, 1, 2, 3, 3], [2]], [2, 4, 6, 8], 0.375), META);
    expect(bytes.subarray(OFF.layerCount, OFF.crc)).toEqual(plain.subarray(OFF.layerCount, OFF.crc));
    const d = decodeStrategy(bytes, { modelId: 'm', frozenWeightsHash: HASH, layers: [{ name: 'a', outChannels: 5 }, { name: 'b', outChannels: 1 }] });
    expect(d.strategy.levelTable).toEqual([0, 3, 4, 5]);
    expect(d.strategy.beta).toBe(Math.round(0.375 * 65535) / 65535);
    expect(d.strategy.layers.map((l) => Array.from(l.levels))).toEqual([[0, 1, 2, 3, 3], [2]]);
    expect(encodeStrategy(d.strategy, d)).toEqual(bytes);
  });

  it('round-trips random off-level strategies, every channel off included', () => {
    const rng = new FuzzRng(17);
    for (let i = 0; i < 40; i++) {
      const widths = [1, 2, 3, 4, 5, 6, 7, 8];
      const table = [0, ...Array.from({ length: 3 }, () => widths.splice(rng.int(widths.length), 1)[0]!).sort((a, b) => a - b)];
      const layers = Array.from({ length: 1 + rng.int(4) }, () => Array.from({ length: 1 + rng.int(40) }, () => (i % 5 === 0 ? 0 : rng.int(4))));
      const s = strategyOf(layers, table as unknown as LevelTable);
      const d = decodeStrategy(encodeStrategy(s, META));
      expect(d.strategy.levelTable).toEqual(table);
      expect(d.strategy.layers.map((l) => Array.from(l.levels))).toEqual(layers);
    }
  });
});

describe('strategy bitstream errors', () => {
  const decodeCode = (b: Uint8Array, e?: StrategyExpectation) => codeOf(() => decodeStrategy(b, e));

  it('is a named ChordError subclass', () => {
    try {
      decodeStrategy(new Uint8Array(0));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ChordError);
      expect((e as Error).name).toBe('BitstreamError');
      expect((e as BitstreamError).code).toBe('BITSTREAM_TRUNCATED');
    }
  });

  it('BITSTREAM_TRUNCATED', () => {
    expect(decodeCode(new Uint8Array(0))).toBe('BITSTREAM_TRUNCATED');
    expect(decodeCode(SMALL_BYTES.subarray(0, MIN_BITSTREAM_BYTES - 1))).toBe('BITSTREAM_TRUNCATED');
    expect(decodeCode(SMALL_BYTES.subarray(0, SMALL_BYTES.length - 1))).toBe('BITSTREAM_TRUNCATED');
    // A long modelId: the header itself runs past the end.
    const longId = encodeStrategy(SMALL, { ...META, modelId: 'x'.repeat(64) });
    expect(decodeCode(longId.subarray(0, 100))).toBe('BITSTREAM_TRUNCATED');
    // The declared channel counts run past the end.
    const manyLayers = encodeStrategy(strategyOf(Array.from({ length: 40 }, () => [1])), META);
    expect(decodeCode(manyLayers.subarray(0, 100))).toBe('BITSTREAM_TRUNCATED');
  });

  it('BITSTREAM_BAD_MAGIC, _UNSUPPORTED_VERSION, _BAD_FLAGS (checked before the CRC)', () => {
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[0] = 0x58)))).toBe('BITSTREAM_BAD_MAGIC');
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[3] = 0x45)))).toBe('BITSTREAM_BAD_MAGIC');
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[4] = 2)))).toBe('BITSTREAM_UNSUPPORTED_VERSION');
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[4] = 0)))).toBe('BITSTREAM_UNSUPPORTED_VERSION');
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[5] = 1)))).toBe('BITSTREAM_BAD_FLAGS');
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[7] = 0x80)))).toBe('BITSTREAM_BAD_FLAGS');
  });

  it('BITSTREAM_BAD_CHECKSUM, and the CRC is checked before semantic fields', () => {
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[OFF.payload]! ^= 1)))).toBe('BITSTREAM_BAD_CHECKSUM');
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[OFF.crc]! ^= 0x80)))).toBe('BITSTREAM_BAD_CHECKSUM');
    // Invalid modelId byte, level table and padding, each without a CRC repair: the CRC wins.
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[OFF.id] = 0x41)))).toBe('BITSTREAM_BAD_CHECKSUM');
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[OFF.levels] = 9)))).toBe('BITSTREAM_BAD_CHECKSUM');
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[OFF.payload + 1]! |= 0x10)))).toBe('BITSTREAM_BAD_CHECKSUM');
  });

  it('BITSTREAM_TRAILING_BYTES', () => {
    const longer = new Uint8Array(SMALL_BYTES.length + 1);
    longer.set(SMALL_BYTES);
    expect(decodeCode(longer)).toBe('BITSTREAM_TRAILING_BYTES');
  });

  it('BITSTREAM_BAD_COUNT, judged from the counts alone before any length-sized allocation', () => {
    expect(decodeCode(edit(SMALL_BYTES, (b, v) => v.setUint16(OFF.layerCount, 0, true)))).toBe('BITSTREAM_BAD_COUNT');
    expect(decodeCode(edit(SMALL_BYTES, (b, v) => v.setUint16(OFF.layerCount, 1025, true)))).toBe('BITSTREAM_BAD_COUNT');
    expect(decodeCode(edit(SMALL_BYTES, (b, v) => v.setUint32(OFF.counts, 0, true)))).toBe('BITSTREAM_BAD_COUNT');
    expect(decodeCode(edit(SMALL_BYTES, (b, v) => v.setUint32(OFF.counts, 65537, true)))).toBe('BITSTREAM_BAD_COUNT');
    expect(decodeCode(edit(SMALL_BYTES, (b, v) => v.setUint32(OFF.counts + 4, 0xffffffff, true)))).toBe('BITSTREAM_BAD_COUNT');
    // 65 layers of 65536 channels declared in a 400-byte buffer: over the total, rejected as such.
    const header = encodeStrategy(strategyOf(Array.from({ length: 65 }, () => [0])), META);
    const huge = edit(header, (b, v) => {
      for (let i = 0; i < 65; i++) v.setUint32(OFF.counts + 4 * i, 65536, true);
    });
    expect(decodeCode(huge)).toBe('BITSTREAM_BAD_COUNT');
    // 64 layers of 65536 is within bounds, so the same short buffer is merely truncated.
    const big = edit(encodeStrategy(strategyOf(Array.from({ length: 64 }, () => [0])), META), (b, v) => {
      for (let i = 0; i < 64; i++) v.setUint32(OFF.counts + 4 * i, 65536, true);
    });
    expect(decodeCode(big)).toBe('BITSTREAM_TRUNCATED');
    expect(codeOf(() => encodeStrategy({ ...SMALL, layers: [] }, META))).toBe('BITSTREAM_BAD_COUNT');
    expect(codeOf(() => encodeStrategy(strategyOf([[1], []]), META))).toBe('BITSTREAM_BAD_COUNT');
  });

  it('BITSTREAM_BAD_LEVEL_TABLE', () => {
    // 0 (off) is a width only as the first entry.
    for (const table of [[2, 2, 6, 8], [0, 0, 6, 8], [2, 0, 6, 8], [1, 2, 3, 0], [2, 4, 6, 9], [8, 6, 4, 2]]) {
      expect(decodeCode(withCrc(edit(SMALL_BYTES, (b) => b.set(table, OFF.levels))))).toBe('BITSTREAM_BAD_LEVEL_TABLE');
      expect(codeOf(() => encodeStrategy({ ...SMALL, levelTable: table as unknown as LevelTable }, META))).toBe(
        'BITSTREAM_BAD_LEVEL_TABLE',
      );
    }
    expect(codeOf(() => encodeStrategy({ ...SMALL, levelTable: [2, 4, 6] as unknown as LevelTable }, META))).toBe(
      'BITSTREAM_BAD_LEVEL_TABLE',
    );
    expect(codeOf(() => encodeStrategy({ ...SMALL, levelTable: [2, 4, 6, 7.5] as unknown as LevelTable }, META))).toBe(
      'BITSTREAM_BAD_LEVEL_TABLE',
    );
    // A level index outside the 4-entry table.
    expect(codeOf(() => encodeStrategy(strategyOf([[0, 4]]), META))).toBe('BITSTREAM_BAD_LEVEL_TABLE');
    expect(decodeCode(withCrc(edit(SMALL_BYTES, (b) => b.set([1, 2, 3, 4], OFF.levels))))).toBe('no error');
    expect(decodeCode(withCrc(edit(SMALL_BYTES, (b) => b.set([0, 2, 4, 8], OFF.levels))))).toBe('no error');
  });

  it('BITSTREAM_BAD_MODEL_ID', () => {
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[OFF.idLen] = 0)))).toBe('BITSTREAM_BAD_MODEL_ID');
    expect(decodeCode(edit(SMALL_BYTES, (b) => (b[OFF.idLen] = 65)))).toBe('BITSTREAM_BAD_MODEL_ID');
    for (const byte of [0x41, 0x2f, 0x3a, 0x60, 0x7b, 0x20, 0xc3]) {
      expect(decodeCode(withCrc(edit(SMALL_BYTES, (b) => (b[OFF.id] = byte))))).toBe('BITSTREAM_BAD_MODEL_ID');
    }
    for (const byte of [0x61, 0x7a, 0x30, 0x39, 0x2e, 0x5f, 0x2d]) {
      expect(decodeCode(withCrc(edit(SMALL_BYTES, (b) => (b[OFF.id] = byte))))).toBe('no error');
    }
    for (const modelId of ['', 'Model', 'a b', 'modèle', 'x'.repeat(65), 'a/b']) {
      expect(codeOf(() => encodeStrategy(SMALL, { ...META, modelId }))).toBe('BITSTREAM_BAD_MODEL_ID');
    }
    expect(decodeStrategy(encodeStrategy(SMALL, { ...META, modelId: 'x'.repeat(64) })).modelId).toBe('x'.repeat(64));
  });

  it('BITSTREAM_BAD_HASH (encode) and BITSTREAM_HASH_MISMATCH (decode)', () => {
    for (const frozenWeightsHash of ['', HASH.slice(1), HASH + '0', 'g' + HASH.slice(1)]) {
      expect(codeOf(() => encodeStrategy(SMALL, { ...META, frozenWeightsHash }))).toBe('BITSTREAM_BAD_HASH');
    }
    const other = 'f' + HASH.slice(1);
    expect(decodeCode(SMALL_BYTES, { frozenWeightsHash: other })).toBe('BITSTREAM_HASH_MISMATCH');
    expect(decodeCode(SMALL_BYTES, { frozenWeightsHash: HASH.toUpperCase() })).toBe('no error');
  });

  it('BITSTREAM_MODEL_MISMATCH', () => {
    expect(decodeCode(SMALL_BYTES, { modelId: 'n' })).toBe('BITSTREAM_MODEL_MISMATCH');
    expect(decodeCode(SMALL_BYTES, { modelId: 'M' })).toBe('BITSTREAM_MODEL_MISMATCH');
    expect(decodeCode(SMALL_BYTES, { modelId: 'm' })).toBe('no error');
  });

  it('BITSTREAM_LAYER_MISMATCH', () => {
    const ok = [
      { name: 'a', outChannels: 5 },
      { name: 'b', outChannels: 1 },
    ];
    expect(decodeCode(SMALL_BYTES, { layers: ok })).toBe('no error');
    expect(decodeCode(SMALL_BYTES, { layers: ok.slice(0, 1) })).toBe('BITSTREAM_LAYER_MISMATCH');
    expect(decodeCode(SMALL_BYTES, { layers: [...ok, { name: 'c', outChannels: 1 }] })).toBe('BITSTREAM_LAYER_MISMATCH');
    expect(decodeCode(SMALL_BYTES, { layers: [ok[0]!, { name: 'b', outChannels: 2 }] })).toBe('BITSTREAM_LAYER_MISMATCH');
  });

  it('BITSTREAM_BAD_PADDING', () => {
    for (const bit of [0x10, 0x20, 0x40, 0x80]) {
      expect(decodeCode(withCrc(edit(SMALL_BYTES, (b) => (b[OFF.payload + 1]! |= bit))))).toBe('BITSTREAM_BAD_PADDING');
    }
    // The bits below the padding are data: changing them (with a CRC repair) still decodes.
    const d = decodeStrategy(withCrc(edit(SMALL_BYTES, (b) => (b[OFF.payload + 1] = 0x0f))));
    expect(Array.from(d.strategy.layers[1]!.levels)).toEqual([3]);
  });

  it('BITSTREAM_BAD_BETA (encode)', () => {
    for (const beta of [-0.01, 1.01, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(codeOf(() => encodeStrategy({ ...SMALL, beta }, META))).toBe('BITSTREAM_BAD_BETA');
    }
  });
});
