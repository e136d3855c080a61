/**
 * Errors the strategy server answers with. Every client-visible failure is an ApiError: an HTTP
 * status plus a stable `code` that goes into the JSON body `{ error: { code, message } }`.
 */
import { ChordError } from '../core/errors.ts';

export type ApiErrorCode =
  | 'BAD_Z_LENGTH'
  | 'NON_FINITE_Z'
  | 'Z_OUT_OF_RANGE'
  | 'BAD_BUDGET'
  | 'UNKNOWN_MODEL'
  | 'NOT_FOUND'
  | 'EMPTY_BODY'
  | 'BODY_TOO_LARGE'
  | 'BAD_JSON'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INVALID_REQUEST'
  | 'UNAUTHORIZED'
  | 'RATE_LIMITED'
  | 'UNPROCESSABLE_Z'
  | 'SHUTTING_DOWN'
  | 'COMPUTE_UNAVAILABLE'
  | 'INTERNAL';

export class ApiError extends ChordError {
  readonly statusCode: number;
  declare readonly code: ApiErrorCode;
  constructor(statusCode: number, code: ApiErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.statusCode = statusCode;
  }
}

/** A model directory that cannot be served (bad manifest, missing file, inconsistent hypernet). */
export class ModelLoadError extends ChordError {
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
