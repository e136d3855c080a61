/**
 * Named-tensor container used for every model artifact (trained backbone tensors, GRU, hypernets, checkpoints).
 *
 * Two parts, so the index stays human-readable and the payload can be fetched/streamed as one binary:
 *   <name>.json  { "format": "chord-tensors", "version": 1, "byteLength": B,
 *                  "tensors": [{ "name", "shape": [..], "dtype": "float32", "offset", "length" }, ...] }
 *   <name>.bin   the tensors' little-endian float32 values, concatenated in index order, each 4-byte aligned.
 * `offset` is in bytes, `length` in elements (= product of shape).
 */
import { ChordError } from './errors.ts';

export class TensorFileError extends ChordError<'TensorFileError'> {
  override readonly name = 'TensorFileError';
  constructor(message: string) {
    super('TENSOR_FILE_INVALID', message);
  }
}

export interface TensorEntry {
  name: string;
  shape: number[];
  dtype: 'float32';
  offset: number;
  length: number;
}

export interface TensorIndex {
  format: 'chord-tensors';
  version: 1;
  byteLength: number;
  tensors: TensorEntry[];
}

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export type TensorMap = Map<string, NamedTensor>;

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function encodeTensorFile(tensors: TensorMap): { index: TensorIndex; bin: Uint8Array } {
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const length = elementCount(t.shape);
    if (length !== t.data.length) {
      throw new TensorFileError(`tensor "${name}": shape [${t.shape}] has ${length} elements, data has ${t.data.length}`);
    }
    entries.push({ name, shape: [...t.shape], dtype: 'float32', offset, length });
    offset += length * 4;
  }
  const bin = new Uint8Array(offset);
  const view = new DataView(bin.buffer);
  for (const e of entries) {
    const data = tensors.get(e.name)!.data;
    if (littleEndian) bin.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), e.offset);
    else for (let i = 0; i < data.length; i++) view.setFloat32(e.offset + i * 4, data[i]!, true);
  }
  return { index: { format: 'chord-tensors', version: 1, byteLength: offset, tensors: entries }, bin };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates an index parsed from JSON. Every offset/length is checked against byteLength before use. */
export function parseTensorIndex(json: unknown): TensorIndex {
  if (!isObject(json)) throw new TensorFileError('index is not an object');
  if (json.format !== 'chord-tensors') throw new TensorFileError(`index.format is ${String(json.format)}, expected "chord-tensors"`);
  if (json.version !== 1) throw new TensorFileError(`index.version ${String(json.version)} is not supported`);
  const byteLength = json.byteLength;
  if (!Number.isSafeInteger(byteLength) || (byteLength as number) < 0) throw new TensorFileError('index.byteLength is invalid');
  if (!Array.isArray(json.tensors)) throw new TensorFileError('index.tensors is not an array');
  const seen = new Set<string>();
  const tensors: TensorEntry[] = json.tensors.map((t: unknown, i: number) => {
    if (!isObject(t)) throw new TensorFileError(`tensors[${i}] is not an object`);
    const { name, shape, dtype, offset, length } = t;
    if (typeof name !== 'string' || name.length === 0) throw new TensorFileError(`tensors[${i}].name is invalid`);
    if (seen.has(name)) throw new TensorFileError(`tensor "${name}" appears twice`);
    seen.add(name);
    if (dtype !== 'float32') throw new TensorFileError(`tensor "${name}": dtype ${String(dtype)} is not supported`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new TensorFileError(`tensor "${name}": shape is invalid`);
    }
    if (!Number.isSafeInteger(offset) || (offset as number) < 0 || (offset as number) % 4 !== 0) {
      throw new TensorFileError(`tensor "${name}": offset is invalid`);
    }
    if (!Number.isSafeInteger(length) || length !== elementCount(shape as number[])) {
      throw new TensorFileError(`tensor "${name}": length does not match its shape`);
    }
    if ((offset as number) + (length as number) * 4 > (byteLength as number)) {
      throw new TensorFileError(`tensor "${name}" extends past byteLength`);
    }
    return { name, shape: shape as number[], dtype, offset: offset as number, length: length as number };
  });
  return { format: 'chord-tensors', version: 1, byteLength: byteLength as number, tensors };
}

export function decodeTensorFile(indexJson: unknown, bin: Uint8Array): TensorMap {
  const index = parseTensorIndex(indexJson);
  if (bin.byteLength !== index.byteLength) {
    throw new TensorFileError(`binary has ${bin.byteLength} bytes, index says ${index.byteLength}`);
  }
  const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const out: TensorMap = new Map();
  for (const e of index.tensors) {
    const data = new Float32Array(e.length);
    for (let i = 0; i < e.length; i++) data[i] = view.getFloat32(e.offset + i * 4, true);
    out.set(e.name, { shape: e.shape, data });
  }
  return out;
}
