import { DatasetError } from './errors.ts';
import { nonBlankLines, parseNumber, requireToken } from './lines.ts';
import type { Interaction } from './types.ts';

/**
 * Parses MovieLens 100K `u.data`: `user \t item \t rating \t timestamp`, no header. Any run of
 * whitespace separates fields (ids never contain spaces), which also accepts space-separated copies.
 */
export function parseMovieLensUData(text: string, file: string): Interaction[] {
  const out: Interaction[] = [];
  for (const { text: lineText, line } of nonBlankLines(text)) {
    const parts = lineText.trim().split(/\s+/);
    if (parts.length !== 4) {
      throw new DatasetError(
        'DATASET_FIELD_COUNT',
        `expected 4 fields (user item rating timestamp), found ${parts.length}`,
        { file, line },
      );
    }
    const user = requireToken(parts[0]!, 'user', file, line);
    const item = requireToken(parts[1]!, 'item', file, line);
    const rating = parseNumber(parts[2]!, 'rating', file, line);
    const time = parseNumber(parts[3]!, 'timestamp', file, line);
    out.push({ user, item, time, rating });
  }
  return out;
}
