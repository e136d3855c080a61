import { ChordError, type ErrorCodeOf } from '../core/errors.ts';

export type StrategyFetchErrorCode = ErrorCodeOf<'StrategyFetchError'>;

/** Fetching a strategy failed and there was no last good strategy to fall back on. */
export class StrategyFetchError extends ChordError<'StrategyFetchError'> {
  override readonly name = 'StrategyFetchError';
  /** HTTP status when there was one. */
  readonly status: number | undefined;
  constructor(code: StrategyFetchErrorCode, message: string, options?: { status?: number; cause?: unknown }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = options?.status;
  }
}
