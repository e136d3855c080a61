/** Errors of the public Reranker (src/device/reranker.ts). */
import { ChordError } from '../core/errors.ts';

/** The reranker was disposed; create a new one. */
export class RerankerDisposedError extends ChordError<'RerankerDisposedError'> {
  override readonly name = 'RerankerDisposedError';
  constructor() {
    super('RERANKER_DISPOSED', 'this reranker was disposed');
  }
}

/**
 * Candidates the model does not know (not in items.json), with `unknownItems: 'error'` (the
 * default). `ids` lists every unknown id of the call, so the page can log them all at once.
 */
export class UnknownItemError extends ChordError<'UnknownItemError'> {
  override readonly name = 'UnknownItemError';
  readonly ids: readonly string[];
  constructor(ids: readonly string[]) {
    const shown = ids.slice(0, 5).map((id) => JSON.stringify(id)).join(', ');
    super(
      'RERANK_UNKNOWN_ITEM',
      `${ids.length} candidate id(s) are not in the model's items.json: ${shown}${ids.length > 5 ? ', ...' : ''}; ` +
        "pass { unknownItems: 'skip' } to leave them out",
    );
    this.ids = ids;
  }
}

/** An argument of a Reranker method or of createReranker is malformed. */
export class RerankInputError extends ChordError<'RerankInputError'> {
  override readonly name = 'RerankInputError';
  constructor(message: string) {
    super('RERANK_BAD_INPUT', message);
  }
}
