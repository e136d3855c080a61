import { ChordError } from '../core/errors.ts';

export type StrategyFetchErrorCode =
  /** The request did not reach the server (offline, DNS, CORS, connection refused). */
  | 'STRATEGY_OFFLINE'
  /** No complete answer within the timeout. */
  | 'STRATEGY_TIMEOUT'
  /** HTTP 5xx or 429. */
  | 'STRATEGY_SERVER_ERROR'
  /** HTTP 4xx other than 429: the request itself is wrong (unknown model, bad z). */
  | 'STRATEGY_REJECTED'
  /** 2xx but not a bitstream (e.g. an HTML captive-portal or error page). */
  | 'STRATEGY_BAD_CONTENT'
  /** A bitstream that fails decodeStrategy (corrupt, or for another model / frozen weights). */
  | 'STRATEGY_INVALID'
  /** The network was not tried: still backing off after earlier failures. */
  | 'STRATEGY_BACKOFF'
  /** The request content itself is malformed (z not finite, bad budget, ...). */
  | 'STRATEGY_BAD_REQUEST'
  /** The service worker did not answer in time (page side). */
  | 'STRATEGY_SW_TIMEOUT';

/** Fetching a strategy failed and there was no last good strategy to fall back on. */
export class StrategyFetchError extends ChordError {
  declare readonly code: StrategyFetchErrorCode;
  /** HTTP status when there was one. */
  readonly status: number | undefined;
  constructor(code: StrategyFetchErrorCode, message: string, options?: { status?: number; cause?: unknown }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = options?.status;
  }
}
