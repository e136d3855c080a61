/**
 * Errors the strategy server answers with. Every client-visible failure is an ApiError: an HTTP
 * status plus a stable `code` that goes into the JSON body `{ error: { code, message } }`.
 */
import { ChordError } from '../core/errors.ts';

export type ApiErrorCode =
  | 'bad-z-length'
  | 'non-finite-z'
  | 'z-out-of-range'
  | 'bad-budget'
  | 'unknown-model'
  | 'not-found'
  | 'empty-body'
  | 'body-too-large'
  | 'bad-json'
  | 'unsupported-media-type'
  | 'invalid-request'
  | 'unauthorized'
  | 'rate-limited'
  | 'unprocessable-z'
  | 'shutting-down'
  | 'internal';

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
    super('model-load', `${modelDir}: ${message}`, options);
    this.modelDir = modelDir;
  }
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}
