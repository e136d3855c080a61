import { ChordError, type ErrorCodeOf } from '../core/errors.ts';

/** Where in an input file a problem was found. `line` is 1-based; absent for whole-file problems. */
export interface SourceLocation {
  readonly file: string;
  readonly line?: number;
}

/**
 * A dataset could not be read or prepared. The message always starts with `file:line:` when the
 * problem is tied to a line, so a user can jump straight to it.
 */
export class DatasetError extends ChordError<'DatasetError'> {
  override readonly name = 'DatasetError';
  readonly file: string | undefined;
  readonly line: number | undefined;
  constructor(code: DatasetErrorCode, message: string, where?: SourceLocation, options?: { cause?: unknown }) {
    super(code, where ? `${formatLocation(where)}: ${message}` : message, options);
    this.file = where?.file;
    this.line = where?.line;
  }
}

export type DatasetErrorCode = ErrorCodeOf<'DatasetError'>;

function formatLocation(where: SourceLocation): string {
  return where.line === undefined ? where.file : `${where.file}:${where.line}`;
}
