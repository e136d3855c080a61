/**
 * Base class for every error chord-rerank throws on purpose. Callers can branch on `code`
 * (stable, machine-readable) or on the subclass; `message` is for humans.
 */
export class ChordError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
