import { DatasetError } from './errors.ts';
import { nonBlankLines, parseNumber, requireToken } from './lines.ts';
import type { Interaction } from './types.ts';

/** Column names to look for in a RecBole atomic header (the part before `:type`). */
export interface AtomicColumns {
  readonly user: string;
  readonly item: string;
  readonly time: string;
  /** Optional: read when present, ignored when absent. */
  readonly rating: string;
}

/** RecBole's default field names (USER_ID_FIELD, ITEM_ID_FIELD, TIME_FIELD, RATING_FIELD). */
export const RECBOLE_COLUMNS: AtomicColumns = {
  user: 'user_id',
  item: 'item_id',
  time: 'timestamp',
  rating: 'rating',
};

const FIELD_TYPES = new Set(['token', 'token_seq', 'float', 'float_seq']);

interface HeaderField {
  readonly name: string;
  readonly type: string;
}

/**
 * Parses a RecBole atomic `.inter` file: a tab-separated header of `name:type` fields, then one
 * tab-separated record per line. Columns are found by name, so extra columns and any order work.
 * The timestamp column is required because the split protocol is chronological.
 */
export function parseAtomicInter(
  text: string,
  file: string,
  columns: AtomicColumns = RECBOLE_COLUMNS,
): Interaction[] {
  const lines = nonBlankLines(text);
  const head = lines[0];
  if (!head) throw new DatasetError('DATASET_EMPTY', 'file is empty (no header line)', { file });
  const fields = parseHeader(head.text, file, head.line);
  const col = (name: string, required: boolean): number => {
    const idx = fields.findIndex((f) => f.name === name);
    if (idx < 0 && required) {
      const have = fields.map((f) => `${f.name}:${f.type}`).join(', ');
      throw new DatasetError('DATASET_MISSING_COLUMN', `header has no "${name}" column (have: ${have})`, {
        file,
        line: head.line,
      });
    }
    return idx;
  };
  const userCol = col(columns.user, true);
  const itemCol = col(columns.item, true);
  const timeCol = col(columns.time, true);
  const ratingCol = col(columns.rating, false);

  const out: Interaction[] = [];
  for (let i = 1; i < lines.length; i++) {
    const { text: lineText, line } = lines[i]!;
    const parts = lineText.split('\t');
    if (parts.length !== fields.length) {
      throw new DatasetError(
        'DATASET_FIELD_COUNT',
        `expected ${fields.length} tab-separated fields, found ${parts.length}`,
        { file, line },
      );
    }
    const user = requireToken(parts[userCol]!, columns.user, file, line);
    const item = requireToken(parts[itemCol]!, columns.item, file, line);
    const time = parseNumber(parts[timeCol]!, columns.time, file, line);
    if (ratingCol >= 0) {
      const rating = parseNumber(parts[ratingCol]!, columns.rating, file, line);
      out.push({ user, item, time, rating });
    } else {
      out.push({ user, item, time });
    }
  }
  return out;
}

function parseHeader(text: string, file: string, line: number): HeaderField[] {
  const fields = text.split('\t').map((raw): HeaderField => {
    const field = raw.trim();
    const colon = field.lastIndexOf(':');
    const name = colon > 0 ? field.slice(0, colon) : '';
    const type = colon > 0 ? field.slice(colon + 1) : '';
    if (name === '' || !FIELD_TYPES.has(type)) {
      throw new DatasetError(
        'DATASET_BAD_HEADER',
        `header field ${JSON.stringify(raw)} is not "name:type" with type one of ${[...FIELD_TYPES].join('/')}`,
        { file, line },
      );
    }
    return { name, type };
  });
  const seen = new Set<string>();
  for (const f of fields) {
    if (seen.has(f.name)) {
      throw new DatasetError('DATASET_BAD_HEADER', `header repeats column "${f.name}"`, { file, line });
    }
    seen.add(f.name);
  }
  return fields;
}

/**
 * Writes interactions as a RecBole atomic `.inter` file (with a rating column only when every
 * interaction has one). Tokens must not contain tabs or newlines, since the format cannot quote them.
 */
export function formatAtomicInter(interactions: readonly Interaction[]): string {
  const withRating = interactions.length > 0 && interactions.every((x) => x.rating !== undefined);
  const header = withRating
    ? 'user_id:token\titem_id:token\trating:float\ttimestamp:float'
    : 'user_id:token\titem_id:token\ttimestamp:float';
  const rows = [header];
  for (const x of interactions) {
    if (/[\t\r\n]/.test(x.user) || /[\t\r\n]/.test(x.item)) {
      throw new DatasetError('DATASET_BAD_OPTION', `token contains a tab or newline: ${JSON.stringify(x)}`);
    }
    rows.push(withRating ? `${x.user}\t${x.item}\t${x.rating}\t${x.time}` : `${x.user}\t${x.item}\t${x.time}`);
  }
  return rows.join('\n') + '\n';
}
