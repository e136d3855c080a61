/** Errors of the inference forward (src/core/forward). */
import { ChordError, type ErrorCodeOf } from '../errors.ts';

export type ForwardErrorCode = ErrorCodeOf<'ForwardError'>;

export class ForwardError extends ChordError<'ForwardError'> {
  override readonly name = 'ForwardError';
  constructor(code: ForwardErrorCode, message: string) {
    super(code, message);
  }
}
