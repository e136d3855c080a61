import type { Interaction } from './types.ts';

export interface DatasetStats {
  readonly users: number;
  readonly items: number;
  readonly interactions: number;
  /** Distinct (user, item) pairs; below `interactions` when pairs repeat. */
  readonly uniquePairs: number;
  /** interactions / (users * items); 0 for an empty set. */
  readonly density: number;
}

export function datasetStats(interactions: readonly Interaction[]): DatasetStats {
  const users = new Set<string>();
  const items = new Set<string>();
  const pairs = new Set<string>();
  for (const x of interactions) {
    users.add(x.user);
    items.add(x.item);
    // JSON keeps the pair key unambiguous for any token content.
    pairs.add(JSON.stringify([x.user, x.item]));
  }
  const cells = users.size * items.size;
  return {
    users: users.size,
    items: items.size,
    interactions: interactions.length,
    uniquePairs: pairs.size,
    density: cells === 0 ? 0 : interactions.length / cells,
  };
}

/** min / mean / median / max of per-user sequence lengths (all 0 when there are none). */
export function lengthSummary(lengths: readonly number[]): { min: number; mean: number; median: number; max: number } {
  if (lengths.length === 0) return { min: 0, mean: 0, median: 0, max: 0 };
  const sorted = [...lengths].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const mean = sorted.reduce((s, v) => s + v, 0) / sorted.length;
  return { min: sorted[0]!, mean, median, max: sorted[sorted.length - 1]! };
}
