/**
 * Errors the strategy server answers with. Every client-visible failure is an ApiError: an HTTP
 * status plus a stable `code` that goes into the JSON body `{ error: { code, message } }`.
 */
import { ChordError, type ErrorCodeOf } from '../core/errors.ts';

export type ApiErrorCode = ErrorCodeOf<'ApiError'>;

export class ApiError extends ChordError<'ApiError'> {
  override readonly name = 'ApiError';
  readonly statusCode: number;
  constructor(statusCode: number, code: ApiErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.statusCode = statusCode;
  }
}

/** A model directory that cannot be served (bad manifest, missing file, inconsistent hypernet). */
export class ModelLoadError extends ChordError<'ModelLoadError'> {
  override readonly name = 'ModelLoadError';
  readonly modelDir: string;
  constructor(modelDir: string, message: string, options?: { cause?: unknown }) {
    super('MODEL_LOAD_FAILED', `${modelDir}: ${message}`, options);
    this.modelDir = modelDir;
  }
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}
