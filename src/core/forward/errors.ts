/** Errors of the inference forward (src/core/forward). */
import { ChordError } from '../errors.ts';

export type ForwardErrorCode =
  /** A trained tensor or a layer's weights are absent. */
  | 'FORWARD_MISSING_TENSOR'
  /** A tensor or weight array does not have the shape the backbone's dims imply. */
  | 'FORWARD_BAD_SHAPE'
  /** An item id in a history or a candidate list is not an integer in range. */
  | 'FORWARD_BAD_ITEM'
  /** A candidate embedding has the wrong length or a non-finite value. */
  | 'FORWARD_BAD_CANDIDATE'
  /** An option (k, activation bits, user embedding, epsilon) is invalid. */
  | 'FORWARD_BAD_OPTION'
  /** An activation is NaN or infinite where it must be quantized. */
  | 'FORWARD_NON_FINITE';

export class ForwardError extends ChordError {
  declare readonly code: ForwardErrorCode;
  constructor(code: ForwardErrorCode, message: string) {
    super(code, message);
  }
}
