/**
 * The web-platform globals core uses, present alike in Node >= 20, pages and workers. Core compiles
 * with neither DOM nor Node types (src/core/tsconfig.json), so it declares here exactly the part
 * of each it relies on rather than pulling in either environment.
 */
declare class TextEncoder {
  encode(input?: string): Uint8Array<ArrayBuffer>;
}

interface SubtleCrypto {
  digest(algorithm: 'SHA-256', data: Uint8Array<ArrayBuffer>): Promise<ArrayBuffer>;
}

// `crypto.subtle` is missing from pages outside a secure context (hash.ts throws then).
declare var crypto: { readonly subtle?: SubtleCrypto } | undefined;
