import { ChordError, type ErrorCodeOf } from '../../core/errors.ts';

export type ChordTrainErrorCode = ErrorCodeOf<'ChordTrainError'>;

/** Bad options, inconsistent training data or an artifact that does not match the run. */
export class ChordTrainError extends ChordError<'ChordTrainError'> {
  override readonly name = 'ChordTrainError';
  constructor(code: ChordTrainErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
