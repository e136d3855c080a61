/**
 * The page's 8-bit item table: the backbone's `item_emb` [rows, dim] (row 0 = padding) with every
 * row quantized symmetrically to int8 codes and one float16 scale per row:
 *
 *   value[r][j] = code[r][j] * scale[r]        code in -127..127, scale a non-negative f16
 *
 * The scale is maxabs(row) / 127 rounded UP to a normal f16 (so no code leaves -127..127 and no
 * scale is a subnormal, which some GPUs flush), 0 for an all-zero row. code * scale has at most
 * 7 + 11 significant bits, so it is exact in float32: the CPU path and the GPU kernels
 * (shaders/item_table_lib.wgsl) dequantize to the very same float32 values.
 *
 * Why symmetric with an f16 scale, not scale + offset: at hidden 64 a row is 64 code bytes, and
 * per-row overhead is what decides whether the table stays at 1/4 of float32 (scale + offset in
 * f32: 8 B/row, table at 1/3.6; one f16 scale: 2 B/row, 1/3.88).
 *
 * One byte layout, for IndexedDB and for the GPU buffer alike (little-endian):
 *   [0, rows * rowStride)            int8 codes, row-major; rowStride = dim rounded up to 4 (whole
 *                                    u32 words, zero padding)
 *   [rows * rowStride, byteLength)   u16 f16 scales, one per row, padded to an even count
 */
import { QuantizeError } from './quantize.ts';
import type { TensorMap } from './tensor-file.ts';

export const ITEM_TABLE_SCHEME = 'int8-symmetric-rowscale-f16';

export interface ItemTableQ8 {
  readonly rows: number;
  readonly dim: number;
  /** Bytes of codes per row: dim rounded up to a multiple of 4. */
  readonly rowStride: number;
  /** The whole table in the layout above. */
  readonly bytes: Uint8Array<ArrayBuffer>;
}

/** Smallest normal f16 (2^-14) and largest finite f16. */
const F16_MIN_NORMAL = 2 ** -14;
const F16_MAX = 65504;

/** Byte length of a table of `rows` x `dim` in the layout above. */
export function itemTableByteLength(rows: number, dim: number): number {
  return rows * Math.ceil(dim / 4) * 4 + Math.ceil(rows / 2) * 4;
}

/** Offset of the scales in the table's bytes. */
export function itemTableScalesOffset(table: Pick<ItemTableQ8, 'rows' | 'rowStride'>): number {
  return table.rows * table.rowStride;
}

/** The f16 (bits) nearest above `x` among normal f16 values; x must be in (0, F16_MAX]. */
function f16Ceil(x: number): number {
  const target = Math.max(x, F16_MIN_NORMAL);
  let e = Math.floor(Math.log2(target));
  // log2 can be off by one near powers of two: settle e so that 2^e <= target < 2^(e+1).
  if (2 ** e > target) e--;
  if (2 ** (e + 1) <= target) e++;
  let m = Math.ceil((target / 2 ** e - 1) * 1024);
  if (m >= 1024) {
    m = 0;
    e++;
  }
  return ((e + 15) << 10) | m;
}

/** The value of f16 bits (normal numbers and zero; what f16Ceil produces). */
export function f16Value(bits: number): number {
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * Quantizes a float32 table [rows, dim] row by row. Throws QuantizeError for a wrong length
 * (QUANT_LENGTH_MISMATCH), a non-finite value (QUANT_NON_FINITE) or a row whose scale would
 * overflow f16 (QUANT_RANGE_OVERFLOW: |value| above about 8.3e6).
 */
export function quantizeItemTable(data: Float32Array, rows: number, dim: number): ItemTableQ8 {
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(dim) || dim < 1) {
    throw new QuantizeError('QUANT_BAD_SHAPE', `item table of ${rows} x ${dim}`);
  }
  if (data.length !== rows * dim) {
    throw new QuantizeError('QUANT_LENGTH_MISMATCH', `item table has ${data.length} values, expected ${rows} x ${dim}`);
  }
  const rowStride = Math.ceil(dim / 4) * 4;
  const bytes = new Uint8Array(itemTableByteLength(rows, dim));
  const codes = new Int8Array(bytes.buffer, 0, rows * rowStride);
  const scales = new Uint16Array(bytes.buffer, rows * rowStride, Math.ceil(rows / 2) * 2);
  for (let r = 0; r < rows; r++) {
    let maxAbs = 0;
    for (let j = 0; j < dim; j++) {
      const v = data[r * dim + j]!;
      if (!Number.isFinite(v)) throw new QuantizeError('QUANT_NON_FINITE', `item table row ${r} has a non-finite value`);
      maxAbs = Math.max(maxAbs, Math.abs(v));
    }
    if (maxAbs === 0) continue; // codes and scale stay 0
    if (maxAbs / 127 > F16_MAX) throw new QuantizeError('QUANT_RANGE_OVERFLOW', `item table row ${r} holds ${maxAbs}: too large for an f16 scale`);
    const bits = f16Ceil(maxAbs / 127);
    const scale = f16Value(bits);
    scales[r] = bits;
    for (let j = 0; j < dim; j++) {
      const q = Math.round(data[r * dim + j]! / scale);
      codes[r * rowStride + j] = Math.max(-127, Math.min(127, q));
    }
  }
  return { rows, dim, rowStride, bytes };
}

/**
 * A table from its bytes (e.g. read back from IndexedDB); throws QuantizeError QUANT_LENGTH_MISMATCH
 * when the length does not fit rows x dim, QUANT_BAD_CODE for a code of -128 or a scale that
 * quantizeItemTable cannot produce (negative, subnormal, infinite or NaN).
 */
export function itemTableFromBytes(bytes: Uint8Array<ArrayBuffer>, rows: number, dim: number): ItemTableQ8 {
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(dim) || dim < 1) {
    throw new QuantizeError('QUANT_BAD_SHAPE', `item table of ${rows} x ${dim}`);
  }
  const expected = itemTableByteLength(rows, dim);
  if (bytes.byteLength !== expected) {
    throw new QuantizeError('QUANT_LENGTH_MISMATCH', `item table has ${bytes.byteLength} bytes, ${rows} x ${dim} needs ${expected}`);
  }
  const own = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength ? bytes : bytes.slice();
  const table: ItemTableQ8 = { rows, dim, rowStride: Math.ceil(dim / 4) * 4, bytes: own };
  const codes = new Int8Array(own.buffer, 0, rows * table.rowStride);
  for (let i = 0; i < codes.length; i++) {
    if (codes[i] === -128) throw new QuantizeError('QUANT_BAD_CODE', `item table code ${i} is -128`);
  }
  const scales = new Uint16Array(own.buffer, itemTableScalesOffset(table), rows);
  for (let r = 0; r < rows; r++) {
    const s = scales[r]!;
    const e = (s >> 10) & 0x1f;
    if (s !== 0 && (s & 0x8000 || e === 0 || e === 31)) throw new QuantizeError('QUANT_BAD_CODE', `item table row ${r} has scale bits ${s}`);
  }
  return table;
}

/** The float32 table [rows, dim] the codes stand for (exactly what the GPU kernels compute). */
export function dequantizeItemTable(table: ItemTableQ8): Float32Array {
  const { rows, dim, rowStride, bytes } = table;
  const codes = new Int8Array(bytes.buffer, bytes.byteOffset, rows * rowStride);
  const scales = new Uint16Array(bytes.buffer, bytes.byteOffset + itemTableScalesOffset(table), rows);
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const scale = f16Value(scales[r]!);
    for (let j = 0; j < dim; j++) out[r * dim + j] = codes[r * rowStride + j]! * scale;
  }
  return out;
}

/** The backbone tensor the 8-bit table stands for. */
export const ITEM_TABLE_TENSOR = 'item_emb';

/**
 * A backbone's float32 `item_emb` [rows, dim] moved into the 8-bit table: the table and the other
 * tensors (a version-1 backbone becomes a version-2 one). Undefined when the backbone has no
 * item_emb. Throws QuantizeError QUANT_BAD_SHAPE when item_emb is not [rows, dim], and
 * quantizeItemTable's errors for its values.
 */
export function splitItemTable(backbone: TensorMap, rows: number, dim: number): { table: ItemTableQ8; rest: TensorMap } | undefined {
  const emb = backbone.get(ITEM_TABLE_TENSOR);
  if (!emb) return undefined;
  if (emb.shape.length !== 2 || emb.shape[0] !== rows || emb.shape[1] !== dim) {
    throw new QuantizeError('QUANT_BAD_SHAPE', `${ITEM_TABLE_TENSOR} is [${emb.shape.join(', ')}], expected [${rows}, ${dim}]`);
  }
  const table = quantizeItemTable(emb.data, rows, dim);
  const rest: TensorMap = new Map(backbone);
  rest.delete(ITEM_TABLE_TENSOR);
  return { table, rest };
}

/**
 * The backbone with `item_emb` put back as the 8-bit table's exact float32 values, first (where a
 * trained backbone has it): what the page scores with, in the version-1 layout. Throws QuantizeError
 * QUANT_BAD_SHAPE when the backbone already holds an item_emb.
 */
export function joinItemTable(backbone: TensorMap, table: ItemTableQ8): TensorMap {
  if (backbone.has(ITEM_TABLE_TENSOR)) throw new QuantizeError('QUANT_BAD_SHAPE', `the backbone already holds ${ITEM_TABLE_TENSOR}`);
  return new Map([[ITEM_TABLE_TENSOR, { shape: [table.rows, table.dim], data: dequantizeItemTable(table) }], ...backbone]);
}
