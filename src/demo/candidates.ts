/**
 * The candidates the shop hands the reranker, as a shop's cheap retrieval stage would: half from
 * the categories the shopper clicked recently (weighted by recency), half the shop's best sellers
 * spread evenly over all categories, never an item already clicked. The reranker then orders them;
 * whatever it lifts above the candidates' own category mix is the model's doing.
 */
import type { DemoCatalogue, DemoItem } from './catalogue.ts';

export const CANDIDATES = 100;
/** Clicks that count as "recent" for the category half. */
const RECENT_CLICKS = 8;

/** Items of each category, most popular first. */
export function byCategory(catalogue: DemoCatalogue): DemoItem[][] {
  const lists: DemoItem[][] = catalogue.categories.map(() => []);
  for (const it of catalogue.items) lists[it.category]!.push(it);
  for (const l of lists) l.sort((a, b) => b.popularity - a.popularity || a.id.localeCompare(b.id));
  return lists;
}

/** Category weights of the last clicks: the newest click counts most (weights 1, 2, ..., n). */
export function recentCategoryWeights(catalogue: DemoCatalogue, clicks: readonly string[]): Map<number, number> {
  const categoryOf = new Map(catalogue.items.map((it) => [it.id, it.category]));
  const weights = new Map<number, number>();
  const recent = clicks.slice(-RECENT_CLICKS);
  recent.forEach((id, i) => {
    const c = categoryOf.get(id);
    if (c !== undefined) weights.set(c, (weights.get(c) ?? 0) + i + 1);
  });
  return weights;
}

export function selectCandidates(catalogue: DemoCatalogue, clicks: readonly string[], count = CANDIDATES): string[] {
  const lists = byCategory(catalogue);
  const clicked = new Set(clicks);
  const chosen: string[] = [];
  const taken = new Set<string>();
  const take = (it: DemoItem): void => {
    if (chosen.length < count && !clicked.has(it.id) && !taken.has(it.id)) {
      taken.add(it.id);
      chosen.push(it.id);
    }
  };

  // Half from the recent categories, in proportion to their weight, most popular first.
  const weights = [...recentCategoryWeights(catalogue, clicks)].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const total = weights.reduce((s, [, w]) => s + w, 0);
  const half = Math.floor(count / 2);
  for (const [c, w] of weights) {
    const quota = Math.round((half * w) / total);
    const before = chosen.length;
    for (const it of lists[c]!) {
      if (chosen.length - before >= quota) break;
      take(it);
    }
  }
  // The rest: best sellers round-robin over the categories.
  for (let rank = 0; chosen.length < count; rank++) {
    let any = false;
    for (const list of lists) {
      const it = list[rank];
      if (it) {
        any = true;
        take(it);
      }
    }
    if (!any) break;
  }
  return chosen;
}

/** Share of `ids` that belong to `category`. */
export function categoryShare(catalogue: DemoCatalogue, ids: readonly string[], category: number): number {
  if (ids.length === 0) return 0;
  const categoryOf = new Map(catalogue.items.map((it) => [it.id, it.category]));
  return ids.filter((id) => categoryOf.get(id) === category).length / ids.length;
}
