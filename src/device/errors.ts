import { ChordError, type ErrorCodeOf } from '../core/errors.ts';

/** Why a stored entry was thrown away. */
export type IntegrityReason =
  /** Bytes do not hash to the stored SHA-256, or the record does not have the expected structure. */
  | 'corrupt'
  /** Fewer (or more) bytes than the record says. */
  | 'truncated'
  /** Written by another record format, or not the artifact/layout the caller now expects. */
  | 'stale';

const INTEGRITY_CODES = {
  corrupt: 'STORE_CORRUPT',
  truncated: 'STORE_TRUNCATED',
  stale: 'STORE_STALE',
} as const satisfies Record<IntegrityReason, ErrorCodeOf<'StoreIntegrityError'>>;

/** A stored entry failed its check on load; it has been deleted and the caller should re-fetch. */
export class StoreIntegrityError extends ChordError<'StoreIntegrityError'> {
  override readonly name = 'StoreIntegrityError';
  readonly reason: IntegrityReason;
  readonly key: string;
  constructor(reason: IntegrityReason, key: string, message: string) {
    super(INTEGRITY_CODES[reason], `${key}: ${message}`);
    this.reason = reason;
    this.key = key;
  }
}

/** The browser refused a write for lack of quota; the store keeps this session's data in memory. */
export class StorageQuotaError extends ChordError<'StorageQuotaError'> {
  override readonly name = 'StorageQuotaError';
  readonly key: string;
  readonly bytes: number;
  constructor(key: string, bytes: number, options?: { cause?: unknown }) {
    super('STORE_QUOTA', `no storage quota left to store ${key} (${bytes} bytes); kept in memory for this session`, options);
    this.key = key;
    this.bytes = bytes;
  }
}

/** IndexedDB cannot be opened or written (private mode, disabled, blocked, disk error). */
export class StoreUnavailableError extends ChordError<'StoreUnavailableError'> {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_UNAVAILABLE', message, options);
  }
}

/** A downloaded artifact is malformed or does not match its pinned hash. */
export type ArtifactErrorCode = ErrorCodeOf<'ArtifactError'>;

export class ArtifactError extends ChordError<'ArtifactError'> {
  override readonly name = 'ArtifactError';
  readonly url: string;
  constructor(code: ArtifactErrorCode, url: string, message: string, options?: { cause?: unknown }) {
    super(code, `${url}: ${message}`, options);
    this.url = url;
  }
}
