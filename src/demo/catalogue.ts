/**
 * The demo shop's catalogue file (public/catalogue.json) and the model it goes with. Shared by the
 * build script (Node) and the page (browser): no I/O here.
 */
import type { Catalogue } from '../data/synthetic.ts';

export const DEMO_MODEL_ID = 'sasrec-demo-shop';

export interface DemoItem {
  readonly id: string;
  readonly title: string;
  /** Index into DemoCatalogue.categories. */
  readonly category: number;
  readonly price: number;
  /** Share of its category's clicks in the synthetic shop (popularity inside the category). */
  readonly popularity: number;
}

export interface DemoCatalogue {
  readonly modelId: string;
  readonly categories: readonly string[];
  /** Every item the model knows, by category, most popular first. */
  readonly items: readonly DemoItem[];
}

/** The catalogue restricted to the items the model was trained on (items.json order is irrelevant). */
export function catalogueForModel(catalogue: Catalogue, modelItemIds: readonly string[]): DemoCatalogue {
  const known = new Set(modelItemIds.slice(1));
  const items = catalogue.items
    .filter((it) => known.has(it.id))
    .map((it) => ({
      id: it.id,
      title: it.title,
      category: it.category,
      price: it.price,
      popularity: Math.round(it.popularity * 1e4) / 1e4,
    }))
    .sort((a, b) => a.category - b.category || b.popularity - a.popularity || a.id.localeCompare(b.id));
  return { modelId: DEMO_MODEL_ID, categories: catalogue.categories.map((c) => c.name), items };
}

/** Validates a parsed catalogue.json (the page's input). */
export function parseDemoCatalogue(json: unknown): DemoCatalogue {
  const c = json as Partial<DemoCatalogue> | null;
  if (!c || typeof c.modelId !== 'string' || !Array.isArray(c.categories) || !Array.isArray(c.items)) {
    throw new Error('catalogue.json: expected { modelId, categories, items }');
  }
  for (const it of c.items) {
    const ok =
      typeof it?.id === 'string' &&
      typeof it.title === 'string' &&
      Number.isInteger(it.category) &&
      it.category >= 0 &&
      it.category < c.categories.length &&
      typeof it.price === 'number';
    if (!ok) throw new Error(`catalogue.json: bad item ${JSON.stringify(it)}`);
  }
  return c as DemoCatalogue;
}
