import { DatasetError } from './errors.ts';
import { nonBlankLines } from './lines.ts';
import type { Interaction } from './types.ts';

/**
 * Parses a plain sequence file: `user item item ...` per line, whitespace separated, oldest first.
 * time = position in the user's sequence (0, 1, 2, ...). A user may appear on several lines; later
 * lines continue the sequence, so the SASRec-style `user item` one-pair-per-line files load too.
 */
export function parseSequenceFile(text: string, file: string): Interaction[] {
  const out: Interaction[] = [];
  const nextTime = new Map<string, number>();
  for (const { text: lineText, line } of nonBlankLines(text)) {
    const [user, ...items] = lineText.trim().split(/\s+/);
    if (user === undefined || items.length === 0) {
      throw new DatasetError('DATASET_FIELD_COUNT', 'expected a user followed by at least one item', {
        file,
        line,
      });
    }
    let t = nextTime.get(user) ?? 0;
    for (const item of items) out.push({ user, item, time: t++ });
    nextTime.set(user, t);
  }
  return out;
}
