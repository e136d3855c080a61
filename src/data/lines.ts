import { DatasetError } from './errors.ts';

/** A non-blank input line with its 1-based line number. */
export interface NumberedLine {
  readonly text: string;
  readonly line: number;
}

/**
 * Splits file text into lines, accepting LF and CRLF, and skips blank lines (a trailing newline or
 * an empty line between records is not an error; pandas, which RecBole uses, skips them too).
 */
export function nonBlankLines(text: string): NumberedLine[] {
  const raw = text.split(/\r?\n/);
  const out: NumberedLine[] = [];
  for (let i = 0; i < raw.length; i++) {
    const t = raw[i]!;
    if (t.trim() !== '') out.push({ text: t, line: i + 1 });
  }
  return out;
}

/** Parses a numeric field; rejects empty strings, NaN and infinities (Number('') would be 0). */
export function parseNumber(field: string, what: string, file: string, line: number): number {
  const trimmed = field.trim();
  const value = trimmed === '' ? Number.NaN : Number(trimmed);
  if (!Number.isFinite(value)) {
    throw new DatasetError('DATASET_BAD_NUMBER', `${what} is not a finite number: ${JSON.stringify(field)}`, {
      file,
      line,
    });
  }
  return value;
}

export function requireToken(field: string, what: string, file: string, line: number): string {
  const trimmed = field.trim();
  if (trimmed === '') throw new DatasetError('DATASET_EMPTY_FIELD', `${what} is empty`, { file, line });
  return trimmed;
}
