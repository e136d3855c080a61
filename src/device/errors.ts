import { ChordError } from '../core/errors.ts';

/** Why a stored entry was thrown away. */
export type IntegrityReason =
  /** Bytes do not hash to the stored SHA-256, or the record does not have the expected structure. */
  | 'corrupt'
  /** Fewer (or more) bytes than the record says. */
  | 'truncated'
  /** Written by another record format, or not the artifact/layout the caller now expects. */
  | 'stale';

/** A stored entry failed its check on load; it has been deleted and the caller should re-fetch. */
export class StoreIntegrityError extends ChordError {
  declare readonly code: `STORE_${Uppercase<IntegrityReason>}`;
  readonly reason: IntegrityReason;
  readonly key: string;
  constructor(reason: IntegrityReason, key: string, message: string) {
    super(`STORE_${reason.toUpperCase()}`, `${key}: ${message}`);
    this.reason = reason;
    this.key = key;
  }
}

/** The browser refused a write for lack of quota; the store keeps this session's data in memory. */
export class StorageQuotaError extends ChordError {
  declare readonly code: 'STORE_QUOTA';
  readonly key: string;
  readonly bytes: number;
  constructor(key: string, bytes: number, options?: { cause?: unknown }) {
    super('STORE_QUOTA', `no storage quota left to store ${key} (${bytes} bytes); kept in memory for this session`, options);
    this.key = key;
    this.bytes = bytes;
  }
}

/** IndexedDB cannot be opened or written (private mode, disabled, blocked, disk error). */
export class StoreUnavailableError extends ChordError {
  declare readonly code: 'STORE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_UNAVAILABLE', message, options);
  }
}

/** A downloaded artifact is malformed or does not match its pinned hash. */
export type ArtifactErrorCode = 'ARTIFACT_HTTP' | 'ARTIFACT_INVALID' | 'ARTIFACT_HASH_MISMATCH';

export class ArtifactError extends ChordError {
  declare readonly code: ArtifactErrorCode;
  readonly url: string;
  constructor(code: ArtifactErrorCode, url: string, message: string, options?: { cause?: unknown }) {
    super(code, `${url}: ${message}`, options);
    this.url = url;
  }
}
