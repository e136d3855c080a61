// The demo's pure parts (candidate selection, ranking change, catalogue file) and the committed
// model's files, checked in the Playwright process (no page): they feed demo-shop.spec.ts.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import { parseManifest } from '../../src/core/manifest.ts';
import { generateCatalogue } from '../../src/data/synthetic.ts';
import { CANDIDATES, categoryShare, recentCategoryWeights, selectCandidates } from '../../src/demo/candidates.ts';
import { catalogueForModel, DEMO_MODEL_ID, parseDemoCatalogue } from '../../src/demo/catalogue.ts';
import type { DemoCatalogue } from '../../src/demo/catalogue.ts';
import { rankingChange } from '../../src/demo/format.ts';
import { hasDemoModel } from '../../src/demo/start.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

function smallCatalogue(): DemoCatalogue {
  const raw = generateCatalogue({ seed: 3, numCategories: 4, numItems: 120 });
  return catalogueForModel(raw, ['[PAD]', ...raw.items.map((it) => it.id)]);
}

test('catalogueForModel keeps only the model items, grouped by category, most popular first', () => {
  const raw = generateCatalogue({ seed: 3, numCategories: 4, numItems: 40 });
  const known = raw.items.filter((_, i) => i % 2 === 0).map((it) => it.id);
  const c = catalogueForModel(raw, ['[PAD]', ...known]);
  expect(c.modelId).toBe(DEMO_MODEL_ID);
  expect(c.categories).toEqual(raw.categories.map((x) => x.name));
  expect(c.items.map((it) => it.id).sort()).toEqual([...known].sort());
  for (let i = 1; i < c.items.length; i++) {
    const [p, q] = [c.items[i - 1]!, c.items[i]!];
    expect(p.category < q.category || (p.category === q.category && p.popularity >= q.popularity)).toBe(true);
  }
  expect(parseDemoCatalogue(JSON.parse(JSON.stringify(c)))).toEqual(c);
  expect(() => parseDemoCatalogue({ ...c, items: [{ ...c.items[0]!, category: 9 }] })).toThrow(/bad item/);
});

test('selectCandidates: balanced best sellers without clicks; half from recent categories after; never a clicked item', () => {
  const c = smallCatalogue();
  const cold = selectCandidates(c, [], 40);
  expect(new Set(cold).size).toBe(40);
  for (let k = 0; k < 4; k++) expect(categoryShare(c, cold, k)).toBe(0.25);

  const shoes = c.items.filter((it) => it.category === 2).map((it) => it.id);
  const clicks = shoes.slice(0, 4);
  const warm = selectCandidates(c, clicks, 40);
  expect(warm).toHaveLength(40);
  expect(warm.some((id) => clicks.includes(id))).toBe(false);
  // 20 from category 2 (the recent half, its ranks 4..23); the best-seller half goes round-robin
  // by rank, where category 2's top ranks are clicked or taken, so it all goes to the others.
  expect(categoryShare(c, warm, 2)).toBe(20 / 40);
  for (const k of [0, 1, 3]) expect(categoryShare(c, warm, k)).toBeGreaterThanOrEqual(6 / 40);
  expect(selectCandidates(c, clicks, 40)).toEqual(warm); // deterministic

  const mixed = [...clicks, ...c.items.filter((it) => it.category === 0).slice(0, 2).map((it) => it.id)];
  const w = recentCategoryWeights(c, mixed);
  expect(w.get(2)).toBe(1 + 2 + 3 + 4);
  expect(w.get(0)).toBe(5 + 6);
  expect(selectCandidates(c, [], CANDIDATES)).toHaveLength(CANDIDATES);
});

test('rankingChange counts replaced and moved items of a top-k', () => {
  expect(rankingChange(['a', 'b', 'c', 'd'], ['a', 'b', 'c', 'd'])).toEqual({ moved: 0, replaced: 0 });
  expect(rankingChange(['a', 'b', 'c', 'd'], ['b', 'a', 'c', 'e'])).toEqual({ moved: 2, replaced: 1 });
});

test('the committed demo model: a full frozen-pretrained artifact, items.json matching the manifest and the catalogue, under 2 MB', () => {
  expect(hasDemoModel()).toBe(true);
  const dir = join(ROOT, 'public', 'models', DEMO_MODEL_ID);
  const manifest = parseManifest(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')));
  expect(manifest.modelId).toBe(DEMO_MODEL_ID);
  expect(manifest.backbone).toBe('sasrec');
  const items = JSON.parse(readFileSync(join(dir, 'items.json'), 'utf8')) as string[];
  expect(items).toHaveLength(manifest.numItems + 1);
  const catalogue = parseDemoCatalogue(JSON.parse(readFileSync(join(ROOT, 'public', 'catalogue.json'), 'utf8')));
  expect(catalogue.items.map((it) => it.id).sort()).toEqual(items.slice(1).sort());
  const training = JSON.parse(readFileSync(join(dir, 'training.json'), 'utf8')) as { method: string; modelId: string; options: { init: string } };
  expect(training).toMatchObject({ method: 'chord', modelId: DEMO_MODEL_ID, options: { init: 'pretrained' } });
  // Frozen-pretrained (train-cli's default): the Base's layer weights ship in backbone.bin, pinned by the manifest.
  expect(manifest.frozenWeights).toBe('shipped');
  expect(existsSync(join(ROOT, 'public', 'models', 'README.md'))).toBe(true);
  const bytes = readdirSync(dir).reduce((s, f) => s + statSync(join(dir, f)).size, 0) + statSync(join(ROOT, 'public', 'catalogue.json')).size;
  expect(bytes).toBeLessThan(2 * 1024 * 1024);
});
