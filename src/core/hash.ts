/**
 * SHA-256 through WebCrypto (`globalThis.crypto.subtle`), present in Node >= 20 and in pages
 * served from a secure context (https or localhost).
 */
import { ChordError } from './errors.ts';

/** WebCrypto is missing, e.g. a page served over plain http from a non-localhost host. */
export class CryptoUnavailableError extends ChordError<'CryptoUnavailableError'> {
  override readonly name = 'CryptoUnavailableError';
  constructor() {
    super(
      'CRYPTO_UNAVAILABLE',
      'crypto.subtle is not available (WebCrypto needs a secure context: https or localhost)',
    );
  }
}

/** Lower-case hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new CryptoUnavailableError();
  // digest() wants memory backed by a plain ArrayBuffer; copy views of a SharedArrayBuffer.
  const input: Uint8Array<ArrayBuffer> =
    bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
  const digest = new Uint8Array(await subtle.digest('SHA-256', input));
  let hex = '';
  for (const byte of digest) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/**
 * The concatenation of `arrays` as little-endian float32 bytes. DataView fixes the byte order,
 * so the bytes (and any hash of them) are the same on big-endian hosts.
 */
export function float32LeBytes(arrays: readonly Float32Array[]): Uint8Array<ArrayBuffer> {
  const total = arrays.reduce((sum, a) => sum + a.length, 0);
  const bytes = new Uint8Array(total * 4);
  const view = new DataView(bytes.buffer);
  let pos = 0;
  for (const array of arrays) {
    for (let i = 0; i < array.length; i++) {
      view.setFloat32(pos, array[i]!, true);
      pos += 4;
    }
  }
  return bytes;
}
