import { ChordError } from '../../core/errors.ts';

export type ChordTrainErrorCode = 'CHORD_BAD_OPTION' | 'CHORD_BAD_DATA' | 'CHORD_BAD_ARTIFACT';

/** Bad options, inconsistent training data or an artifact that does not match the run. */
export class ChordTrainError extends ChordError {
  declare readonly code: ChordTrainErrorCode;
  constructor(code: ChordTrainErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
