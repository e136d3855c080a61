import { describe, expect, it } from 'vitest';
import { decodeTensorFile, encodeTensorFile, TensorFileError, type TensorMap } from '../../src/core/tensor-file.ts';

function sample(): TensorMap {
  return new Map([
    ['a', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) }],
    ['b.bias', { shape: [3], data: Float32Array.from([0.1, Number.MIN_VALUE, -0]) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
  ]);
}

describe('tensor file', () => {
  it('round-trips names, shapes and exact bits through JSON', () => {
    const { index, bin } = encodeTensorFile(sample());
    expect(index.byteLength).toBe(36);
    const back = decodeTensorFile(JSON.parse(JSON.stringify(index)), bin);
    expect([...back.keys()]).toEqual(['a', 'b.bias', 'empty']);
    expect(back.get('a')!.shape).toEqual([2, 3]);
    expect(Array.from(back.get('a')!.data)).toEqual([1, 2, 3, 4, 5, -6.5]);
    expect(back.get('b.bias')!.data[1]).toBe(Math.fround(Number.MIN_VALUE));
    expect(Object.is(back.get('b.bias')!.data[2], -0)).toBe(true);
  });

  it('rejects a shape/data mismatch when encoding', () => {
    expect(() => encodeTensorFile(new Map([['x', { shape: [2, 2], data: new Float32Array(3) }]]))).toThrow(TensorFileError);
  });

  it('rejects truncated binaries and out-of-range or inconsistent indexes', () => {
    const { index, bin } = encodeTensorFile(sample());
    expect(() => decodeTensorFile(index, bin.subarray(0, 35))).toThrow(/binary has 35 bytes/);
    const past = structuredClone(index);
    past.tensors[0]!.offset = 32;
    expect(() => decodeTensorFile(past, bin)).toThrow(/extends past/);
    const badLen = structuredClone(index);
    badLen.tensors[0]!.length = 5;
    expect(() => decodeTensorFile(badLen, bin)).toThrow(/length does not match/);
    expect(() => decodeTensorFile({ ...index, format: 'x' }, bin)).toThrow(TensorFileError);
    expect(() => decodeTensorFile({ ...index, tensors: [index.tensors[0], index.tensors[0]] }, bin)).toThrow(/twice/);
    expect(() => decodeTensorFile(null, bin)).toThrow(TensorFileError);
    expect(() => decodeTensorFile(null, bin)).toThrow(expect.objectContaining({ code: 'TENSOR_FILE_INVALID' }));
  });
});
