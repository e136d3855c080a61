/**
 * CRC-32 as used by zlib, gzip, PNG and Ethernet (IEEE 802.3): polynomial 0x04C11DB7 in its
 * reflected form 0xEDB88320, initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF.
 * Check value: crc32("123456789") === 0xCBF43926.
 */

const CRC32_TABLE: Uint32Array = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/**
 * CRC-32 of `data`. Pass a previous result as `previous` to continue over split input
 * (same contract as zlib's `crc32(crc, buf)`): crc32(b, crc32(a)) === crc32(a ++ b).
 * Returns an unsigned 32-bit integer.
 */
export function crc32(data: Uint8Array, previous = 0): number {
  let c = (previous ^ 0xffffffff) >>> 0;
  const table = CRC32_TABLE;
  for (let i = 0; i < data.length; i++) {
    c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}
