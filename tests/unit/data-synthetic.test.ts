import { describe, expect, it } from 'vitest';
import { DatasetError } from '../../src/data/errors.ts';
import { parseAtomicInter, formatAtomicInter } from '../../src/data/recbole.ts';
import { prepareDataset } from '../../src/data/split.ts';
import { generateCatalogue, generateDriftStream, generateShop, type Shop } from '../../src/data/synthetic.ts';
import { CATEGORY_WORDS } from '../../src/data/synthetic-words.ts';

const small = { numItems: 120, numShoppers: 60, clicksPerShopper: 12 } as const;

function clicksByShopper(shop: Shop): Map<string, { item: string; time: number }[]> {
  const out = new Map<string, { item: string; time: number }[]>();
  for (const x of shop.interactions) {
    const list = out.get(x.user) ?? [];
    list.push(x);
    out.set(x.user, list);
  }
  return out;
}

describe('generateCatalogue', () => {
  const cat = generateCatalogue({ seed: 7 });

  it('has the default 8 named categories and 400 items dealt evenly', () => {
    expect(cat.categories.map((c) => c.name)).toEqual(CATEGORY_WORDS.slice(0, 8).map((w) => w.name));
    expect(cat.items).toHaveLength(400);
    const sizes = cat.categories.map((c) => cat.items.filter((it) => it.category === c.id).length);
    expect(sizes).toEqual(Array(8).fill(50));
  });

  it('composes unique titles from the category word lists and prices inside its range', () => {
    expect(new Set(cat.items.map((it) => it.title)).size).toBe(cat.items.length);
    for (const it of cat.items) {
      const words = CATEGORY_WORDS[it.category]!;
      expect(words.adjectives.some((a) => it.title.startsWith(`${a} `))).toBe(true);
      expect(words.nouns.some((n) => it.title.includes(n))).toBe(true);
      expect(it.price).toBeGreaterThanOrEqual(words.priceRange[0]);
      expect(it.price).toBeLessThan(words.priceRange[1] + 1);
      expect(Math.round(it.price * 100) % 100).toBe(99);
      expect(it.related).toHaveLength(3);
      for (const r of it.related) expect(cat.items.find((x) => x.id === r)?.category).toBe(it.category);
    }
  });

  it('has Zipf-like popularity summing to 1 per category and survives a JSON round trip', () => {
    for (const c of cat.categories) {
      const pops = cat.items.filter((it) => it.category === c.id).map((it) => it.popularity).sort((a, b) => b - a);
      expect(pops.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      // 1/(r+1): the top item is twice the second and 50x the last of 50.
      expect(pops[0]! / pops[1]!).toBeCloseTo(2, 9);
      expect(pops[0]! / pops[49]!).toBeCloseTo(50, 9);
    }
    expect(JSON.parse(JSON.stringify(cat))).toEqual(cat);
  });

  it('names extra categories with a suffix when more are asked than word lists exist', () => {
    const big = generateCatalogue({ numCategories: CATEGORY_WORDS.length + 1, numItems: 130 });
    expect(big.categories.at(-1)!.name).toBe(`${CATEGORY_WORDS[0]!.name} 2`);
  });
});

describe('generateShop', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = generateShop({ ...small, seed: 3 });
    const b = generateShop({ ...small, seed: 3 });
    const c = generateShop({ ...small, seed: 4 });
    expect(b).toEqual(a);
    expect(c.interactions).not.toEqual(a.interactions);
    expect(c.catalogue.items.map((it) => it.title)).not.toEqual(a.catalogue.items.map((it) => it.title));
  });

  it('has the configured size, unique clicks per shopper and increasing times', () => {
    const shop = generateShop({ ...small, seed: 5 });
    const byShopper = clicksByShopper(shop);
    expect(byShopper.size).toBe(60);
    for (const clicks of byShopper.values()) {
      expect(clicks.length).toBeGreaterThanOrEqual(6);
      expect(clicks.length).toBeLessThanOrEqual(18);
      expect(new Set(clicks.map((x) => x.item)).size).toBe(clicks.length);
      for (let t = 1; t < clicks.length; t++) expect(clicks[t]!.time).toBeGreaterThan(clicks[t - 1]!.time);
    }
    // The log is globally time ordered.
    for (let n = 1; n < shop.interactions.length; n++) {
      expect(shop.interactions[n]!.time).toBeGreaterThanOrEqual(shop.interactions[n - 1]!.time);
    }
    const itemIds = new Set(shop.catalogue.items.map((it) => it.id));
    expect(shop.interactions.every((x) => itemIds.has(x.item))).toBe(true);
  });

  it('with full focus and no related clicks, categories change exactly at the recorded shifts', () => {
    const shop = generateShop({ ...small, numItems: 240, seed: 9, focus: 1, relatedProb: 0, switchProb: 0.2 });
    const category = new Map(shop.catalogue.items.map((it) => [it.id, it.category]));
    const byShopper = clicksByShopper(shop);
    let totalShifts = 0;
    for (const truth of shop.shoppers) {
      const cats = byShopper.get(truth.id)!.map((x) => category.get(x.item)!);
      const changes = cats.flatMap((c, t) => (t > 0 && c !== cats[t - 1] ? [t] : []));
      expect(changes).toEqual(truth.shifts);
      expect(cats[0]).toBe(truth.initialCategory);
      totalShifts += truth.shifts.length;
    }
    expect(totalShifts).toBeGreaterThan(50);
  });

  it('keeps consecutive clicks mostly in one category under the default story', () => {
    const shop = generateShop({ seed: 2, numShoppers: 200 });
    const category = new Map(shop.catalogue.items.map((it) => [it.id, it.category]));
    let same = 0;
    let pairs = 0;
    for (const clicks of clicksByShopper(shop).values()) {
      for (let t = 1; t < clicks.length; t++) {
        pairs++;
        if (category.get(clicks[t]!.item) === category.get(clicks[t - 1]!.item)) same++;
      }
    }
    // Uniform clicking would give 1/8; the dominant-category story gives far more.
    expect(same / pairs).toBeGreaterThan(0.6);
  });

  it('writes RecBole text that loads back and splits', () => {
    const shop = generateShop({ ...small, seed: 11 });
    const parsed = parseAtomicInter(formatAtomicInter(shop.interactions), 'shop.inter');
    expect(parsed).toEqual(shop.interactions);
    const { split } = prepareDataset(parsed, { k: 1 });
    expect(split.numUsers).toBe(60);
  });

  it('rejects impossible options', () => {
    expect(() => generateShop({ numItems: 20, numCategories: 4, clicksPerShopper: 30 })).toThrow(DatasetError);
    expect(() => generateShop({ focus: 1.5 })).toThrow(DatasetError);
    expect(() => generateShop({ seed: 1.5 })).toThrow(DatasetError);
  });
});

describe('generateDriftStream', () => {
  it('puts the dominant category changes exactly at the returned shifts', () => {
    const d = generateDriftStream({ seed: 21 });
    expect(d.clicks).toHaveLength(200);
    expect(d.shifts).toHaveLength(3);
    const changes = d.dominant.flatMap((c, t) => (t > 0 && c !== d.dominant[t - 1] ? [t] : []));
    expect(changes).toEqual(d.shifts);
    const bounds = [0, ...d.shifts, 200];
    for (let s = 0; s + 1 < bounds.length; s++) {
      expect(bounds[s + 1]! - bounds[s]!).toBeGreaterThanOrEqual(25);
      // Within each segment, most clicks land in the segment's dominant category.
      const seg = d.categories.slice(bounds[s], bounds[s + 1]);
      const inDominant = seg.filter((c) => c === d.dominant[bounds[s]!]).length;
      expect(inDominant / seg.length).toBeGreaterThan(0.7);
    }
  });

  it('honours explicit shift positions; with full focus every click is in the dominant category', () => {
    const d = generateDriftStream({ seed: 4, length: 60, shifts: [10, 35, 36], focus: 1 });
    expect(d.shifts).toEqual([10, 35, 36]);
    expect(d.categories).toEqual(d.dominant);
    const changes = d.categories.flatMap((c, t) => (t > 0 && c !== d.categories[t - 1] ? [t] : []));
    expect(changes).toEqual([10, 35, 36]);
    const category = new Map(d.catalogue.items.map((it) => [it.id, it.category]));
    expect(d.clicks.map((x) => category.get(x.item))).toEqual(d.categories);
    for (let t = 1; t < d.clicks.length; t++) expect(d.clicks[t]!.time).toBeGreaterThan(d.clicks[t - 1]!.time);
  });

  it('is deterministic per seed and can use a given catalogue', () => {
    const catalogue = generateCatalogue({ seed: 99, numItems: 40, numCategories: 4 });
    const a = generateDriftStream({ seed: 8, catalogue, length: 80, numShifts: 2, minSegment: 10 });
    expect(generateDriftStream({ seed: 8, catalogue, length: 80, numShifts: 2, minSegment: 10 })).toEqual(a);
    expect(generateDriftStream({ seed: 9, catalogue, length: 80, numShifts: 2, minSegment: 10 }).clicks).not.toEqual(
      a.clicks,
    );
    expect(a.catalogue).toBe(catalogue);
    expect(new Set(a.categories).size).toBeLessThanOrEqual(4);
  });

  it('rejects shift layouts that cannot be met', () => {
    expect(() => generateDriftStream({ length: 50, shifts: [10, 10] })).toThrow(DatasetError);
    expect(() => generateDriftStream({ length: 50, shifts: [0] })).toThrow(DatasetError);
    expect(() => generateDriftStream({ length: 50, shifts: [50] })).toThrow(DatasetError);
    expect(() => generateDriftStream({ length: 50, numShifts: 3, minSegment: 20 })).toThrow(DatasetError);
  });
});
