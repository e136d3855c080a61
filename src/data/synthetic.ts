/**
 * Seeded, deterministic synthetic shop (pure: no I/O). Same options -> identical output.
 *
 * Generative story
 * Catalogue.
 *   1. C categories take their names and word lists from CATEGORY_WORDS (cycled, with a numeric
 *      suffix, when C exceeds the list). Items are dealt to categories round-robin after a shuffle,
 *      so category sizes differ by at most one.
 *   2. Each item gets a title "<adjective> <noun>" from its category's lists (a number is appended
 *      when the pair is taken), a price drawn log-uniformly in the category's range ending in .99,
 *      and a popularity weight 1/(rank+1)^popularitySkew for a random rank inside its category
 *      (Zipf-like: a few hits, a long tail). Weights are normalised to sum to 1 per category.
 *   3. Each item has `relatedCount` related items drawn uniformly from its own category: the
 *      "customers also viewed" links that give clicks an item-to-item sequential pattern.
 * Shoppers.
 *   4. A shopper has a fixed affinity over categories, a_c proportional to E_c^affinitySharpness
 *      with E_c ~ Exp(1) (sharpness > 1 concentrates it on a few categories), and a current
 *      dominant category d, first drawn from a.
 *   5. The current category mixture is focus on d plus (1 - focus) * a. Each click: with
 *      probability relatedProb (and a previous click) the shopper follows an unclicked related
 *      item of the previous click; otherwise a category is drawn from the mixture and an item from
 *      that category by popularity. A shopper clicks an item at most once (as in a rating log), so
 *      a leave-one-out target is never a trivial repeat; an exhausted category falls back to the
 *      most popular unclicked items elsewhere.
 *   6. After each click, with probability switchProb, d jumps to another category drawn from a
 *      (excluding the current d): interest drift. The click index at which a new d takes effect
 *      is recorded as a shift.
 *   7. The click count is uniform in [clicksPerShopper * (1 - clickSpread), ... * (1 + clickSpread)]
 *      (at least 3). Times are integer seconds: a start uniform in a `horizonDays` window after
 *      startTime, then gaps of 1 + Exp(mean 60 s), replaced with probability sessionBreakProb by a
 *      break of 1 + Exp(mean 1 day). The interaction log is ordered by time (stable), like a
 *      server log, not by shopper.
 */
import { DatasetError } from './errors.ts';
import { Rng, sampleCumulative } from '../core/rng.ts';
import { CATEGORY_WORDS } from './synthetic-words.ts';
import type { Interaction } from './types.ts';

export interface Category {
  readonly id: number;
  readonly name: string;
}

export interface CatalogueItem {
  readonly id: string;
  readonly title: string;
  /** Index into Catalogue.categories. */
  readonly category: number;
  readonly price: number;
  /** Share of its category's clicks under popularity sampling (sums to 1 per category). */
  readonly popularity: number;
  /** Ids of related items in the same category. */
  readonly related: string[];
}

export interface Catalogue {
  readonly seed: number;
  readonly categories: Category[];
  readonly items: CatalogueItem[];
}

export interface CatalogueOptions {
  readonly seed?: number;
  readonly numCategories?: number;
  readonly numItems?: number;
  /** Zipf exponent of popularity inside a category. */
  readonly popularitySkew?: number;
  readonly relatedCount?: number;
}

export interface ShopOptions extends CatalogueOptions {
  readonly numShoppers?: number;
  readonly clicksPerShopper?: number;
  /** Relative half-width of the uniform click-count range. */
  readonly clickSpread?: number;
  /** Weight of the dominant category in the current mixture. */
  readonly focus?: number;
  /** Per-click probability of switching the dominant category. */
  readonly switchProb?: number;
  readonly relatedProb?: number;
  readonly affinitySharpness?: number;
  readonly sessionBreakProb?: number;
  /** Unix seconds of the start of the simulated window. */
  readonly startTime?: number;
  readonly horizonDays?: number;
}

export interface ShopperTruth {
  readonly id: string;
  /** Click indices (0-based, in the shopper's own sequence) where a new dominant category starts. */
  readonly shifts: number[];
  /** Dominant category at the first click. */
  readonly initialCategory: number;
}

export interface Shop {
  readonly catalogue: Catalogue;
  readonly interactions: Interaction[];
  readonly shoppers: ShopperTruth[];
}

export const SHOP_DEFAULTS = {
  seed: 1,
  numCategories: 8,
  numItems: 400,
  popularitySkew: 1,
  relatedCount: 3,
  numShoppers: 1500,
  clicksPerShopper: 30,
  clickSpread: 0.5,
  focus: 0.75,
  switchProb: 0.08,
  relatedProb: 0.25,
  affinitySharpness: 2,
  sessionBreakProb: 0.1,
  startTime: 1_700_000_000,
  horizonDays: 30,
} as const;

const GAP_MEAN_S = 60;
const BREAK_MEAN_S = 86_400;

/** A catalogue plus the per-category sampling tables the click simulators need. */
interface CatalogueIndex {
  readonly catalogue: Catalogue;
  /** Item indices per category, and cumulative popularity over them. */
  readonly byCategory: number[][];
  readonly cumulative: Float64Array[];
  /** Related item indices per item. */
  readonly related: number[][];
  /** All item indices, most popular (by within-category weight) first. */
  readonly byPopularity: number[];
}

export function generateCatalogue(options: CatalogueOptions = {}): Catalogue {
  return buildCatalogue(resolveCatalogueOptions(options));
}

export function generateShop(options: ShopOptions = {}): Shop {
  const o = { ...SHOP_DEFAULTS, ...dropUndefined(options) };
  const cat = resolveCatalogueOptions(o);
  checkInt('numShoppers', o.numShoppers, 0);
  checkNumber('clicksPerShopper', o.clicksPerShopper, 3);
  checkNumber('clickSpread', o.clickSpread, 0, 1);
  checkNumber('focus', o.focus, 0, 1);
  checkNumber('switchProb', o.switchProb, 0, 1);
  checkNumber('relatedProb', o.relatedProb, 0, 1);
  checkNumber('affinitySharpness', o.affinitySharpness, 0);
  checkNumber('sessionBreakProb', o.sessionBreakProb, 0, 1);
  checkNumber('startTime', o.startTime);
  checkNumber('horizonDays', o.horizonDays, 0);
  const minClicks = Math.max(3, Math.round(o.clicksPerShopper * (1 - o.clickSpread)));
  const maxClicks = Math.max(minClicks, Math.round(o.clicksPerShopper * (1 + o.clickSpread)));
  if (maxClicks > cat.numItems) {
    throw new DatasetError(
      'DATASET_BAD_OPTION',
      `shoppers may click up to ${maxClicks} distinct items but the catalogue has only ${cat.numItems}`,
    );
  }

  const index = indexCatalogue(buildCatalogue(cat));
  const { catalogue } = index;
  // Shoppers draw from their own stream so the catalogue does not depend on shopper options.
  const rng = new Rng(cat.seed ^ 0x5eed5a1e);
  const width = Math.max(4, String(o.numShoppers).length);
  const timed: Interaction[] = [];
  const shoppers: ShopperTruth[] = [];
  const C = catalogue.categories.length;

  for (let s = 0; s < o.numShoppers; s++) {
    const id = `s${String(s + 1).padStart(width, '0')}`;
    const affinity = Float64Array.from({ length: C }, () => rng.exponential(1) ** o.affinitySharpness);
    let dominant = rng.weighted(affinity);
    const initialCategory = dominant;
    const clicks = rng.intBetween(minClicks, maxClicks);
    const clicked = new Set<number>();
    const shifts: number[] = [];
    let previous = -1;
    let time = o.startTime + Math.floor(rng.next() * o.horizonDays * 86_400);
    const mixture = new Float64Array(C);
    const affinitySum = affinity.reduce((a, b) => a + b, 0);
    for (let t = 0; t < clicks; t++) {
      for (let c = 0; c < C; c++) {
        mixture[c] = (1 - o.focus) * (affinity[c]! / affinitySum) + (c === dominant ? o.focus : 0);
      }
      const item = nextShopClick(rng, index, mixture, previous, clicked, o.relatedProb);
      clicked.add(item);
      previous = item;
      timed.push({ user: id, item: catalogue.items[item]!.id, time });
      time += rng.chance(o.sessionBreakProb)
        ? 1 + Math.floor(rng.exponential(BREAK_MEAN_S))
        : 1 + Math.floor(rng.exponential(GAP_MEAN_S));
      if (t + 1 < clicks && C > 1 && rng.chance(o.switchProb)) {
        dominant = drawOther(rng, affinity, dominant);
        shifts.push(t + 1);
      }
    }
    shoppers.push({ id, shifts, initialCategory });
  }
  // Stable: a shopper's own clicks have strictly increasing times, so their order is preserved.
  timed.sort((a, b) => a.time - b.time);
  return { catalogue, interactions: timed, shoppers };
}

function nextShopClick(
  rng: Rng,
  index: CatalogueIndex,
  mixture: Float64Array,
  previous: number,
  clicked: ReadonlySet<number>,
  relatedProb: number,
): number {
  if (previous >= 0 && rng.chance(relatedProb)) {
    const options = index.related[previous]!.filter((r) => !clicked.has(r));
    if (options.length > 0) return rng.pick(options);
  }
  const c = rng.weighted(mixture);
  const members = index.byCategory[c]!;
  // Rejection keeps popularity proportions among the unclicked items; the cap bounds the cost
  // once a shopper has clicked most of a category's popular items.
  for (let tries = 0; tries < 32; tries++) {
    const item = members[sampleCumulative(rng, index.cumulative[c]!)]!;
    if (!clicked.has(item)) return item;
  }
  const inCategory = members.filter((i) => !clicked.has(i));
  if (inCategory.length > 0) return mostPopular(index, inCategory);
  return index.byPopularity.find((i) => !clicked.has(i))!;
}

function mostPopular(index: CatalogueIndex, items: number[]): number {
  let best = items[0]!;
  for (const i of items) {
    if (index.catalogue.items[i]!.popularity > index.catalogue.items[best]!.popularity) best = i;
  }
  return best;
}

/** A category from `weights`, excluding `current` (falls back to uniform if the rest weigh 0). */
function drawOther(rng: Rng, weights: ArrayLike<number>, current: number): number {
  const w = Float64Array.from(weights);
  w[current] = 0;
  if (w.every((v) => v <= 0)) {
    w.fill(1);
    w[current] = 0;
  }
  return rng.weighted(w);
}

export interface DriftStreamOptions {
  readonly seed?: number;
  /** Catalogue to click in; by default one is generated from `seed` with catalogue defaults. */
  readonly catalogue?: Catalogue;
  readonly length?: number;
  /** Explicit shift positions (strictly increasing, in 1..length-1); overrides numShifts. */
  readonly shifts?: readonly number[];
  readonly numShifts?: number;
  /** Shortest segment between random shifts (and before the first / after the last). */
  readonly minSegment?: number;
  /** Probability a click falls in the segment's category (otherwise uniform over the others). */
  readonly focus?: number;
  readonly user?: string;
  readonly startTime?: number;
}

export interface DriftStream {
  readonly clicks: Interaction[];
  /** Ground truth: click index where each new interest segment starts. */
  readonly shifts: number[];
  /** Dominant (segment) category per click. */
  readonly dominant: number[];
  /** Category of each clicked item. */
  readonly categories: number[];
  readonly catalogue: Catalogue;
}

export const DRIFT_DEFAULTS = {
  seed: 1,
  length: 200,
  numShifts: 3,
  minSegment: 25,
  focus: 0.9,
  user: 'drift-0001',
  startTime: 1_700_000_000,
} as const;

/**
 * One shopper's click stream with interest shifts at known positions. Between shifts the shopper
 * has one dominant category (clicks land in it with probability `focus`, else in a uniformly drawn
 * other category); at each shift the dominant category changes to a different one, drawn
 * uniformly. Items are drawn by popularity with replacement: a long stream inside one category
 * would exhaust it, and repeat clicks are ordinary in a click stream.
 */
export function generateDriftStream(options: DriftStreamOptions = {}): DriftStream {
  const o = { ...DRIFT_DEFAULTS, ...dropUndefined(options) };
  checkInt('seed', o.seed);
  checkInt('length', o.length, 2);
  checkNumber('focus', o.focus, 0, 1);
  checkNumber('startTime', o.startTime);
  const catalogue = options.catalogue ?? generateCatalogue({ seed: o.seed });
  const index = indexCatalogue(catalogue);
  const C = catalogue.categories.length;
  if (C < 2) throw new DatasetError('DATASET_BAD_OPTION', 'a drift stream needs at least 2 categories');
  const rng = new Rng(o.seed ^ 0x0d21f7);
  const shifts = options.shifts ? checkShifts(options.shifts, o.length) : randomShifts(rng, o);

  const clicks: Interaction[] = [];
  const dominant: number[] = [];
  const categories: number[] = [];
  let current = rng.int(C);
  let nextShift = 0;
  let time = o.startTime;
  for (let t = 0; t < o.length; t++) {
    if (shifts[nextShift] === t) {
      current = (current + 1 + rng.int(C - 1)) % C;
      nextShift++;
    }
    const c = rng.chance(o.focus) ? current : (current + 1 + rng.int(C - 1)) % C;
    const members = index.byCategory[c]!;
    const item = members[sampleCumulative(rng, index.cumulative[c]!)]!;
    clicks.push({ user: o.user, item: catalogue.items[item]!.id, time });
    dominant.push(current);
    categories.push(c);
    time += 1 + Math.floor(rng.exponential(GAP_MEAN_S));
  }
  return { clicks, shifts, dominant, categories, catalogue };
}

function checkShifts(shifts: readonly number[], length: number): number[] {
  let last = 0;
  for (const s of shifts) {
    if (!Number.isInteger(s) || s <= last || s >= length) {
      throw new DatasetError(
        'DATASET_BAD_OPTION',
        `shift positions must be strictly increasing integers in 1..${length - 1}, got [${shifts.join(', ')}]`,
      );
    }
    last = s;
  }
  return [...shifts];
}

/** numShifts positions with every segment at least minSegment long, uniform over such layouts' slack. */
function randomShifts(rng: Rng, o: { length: number; numShifts: number; minSegment: number }): number[] {
  checkInt('numShifts', o.numShifts, 0);
  checkInt('minSegment', o.minSegment, 1);
  const slack = o.length - (o.numShifts + 1) * o.minSegment;
  if (slack < 0) {
    throw new DatasetError(
      'DATASET_BAD_OPTION',
      `${o.numShifts} shifts with segments of at least ${o.minSegment} need length >= ${(o.numShifts + 1) * o.minSegment}, got ${o.length}`,
    );
  }
  const offsets = Array.from({ length: o.numShifts }, () => rng.int(slack + 1)).sort((a, b) => a - b);
  return offsets.map((off, i) => (i + 1) * o.minSegment + off);
}

interface ResolvedCatalogueOptions {
  readonly seed: number;
  readonly numCategories: number;
  readonly numItems: number;
  readonly popularitySkew: number;
  readonly relatedCount: number;
}

function resolveCatalogueOptions(options: CatalogueOptions): ResolvedCatalogueOptions {
  const o = {
    seed: options.seed ?? SHOP_DEFAULTS.seed,
    numCategories: options.numCategories ?? SHOP_DEFAULTS.numCategories,
    numItems: options.numItems ?? SHOP_DEFAULTS.numItems,
    popularitySkew: options.popularitySkew ?? SHOP_DEFAULTS.popularitySkew,
    relatedCount: options.relatedCount ?? SHOP_DEFAULTS.relatedCount,
  };
  checkInt('seed', o.seed);
  checkInt('numCategories', o.numCategories, 1);
  checkInt('numItems', o.numItems, o.numCategories);
  checkNumber('popularitySkew', o.popularitySkew, 0);
  checkInt('relatedCount', o.relatedCount, 0);
  return o;
}

function buildCatalogue(o: ResolvedCatalogueOptions): Catalogue {
  const rng = new Rng(o.seed);
  const categories: Category[] = Array.from({ length: o.numCategories }, (_, id) => {
    const words = CATEGORY_WORDS[id % CATEGORY_WORDS.length]!;
    const round = Math.floor(id / CATEGORY_WORDS.length);
    return { id, name: round === 0 ? words.name : `${words.name} ${round + 1}` };
  });
  const slots = rng.shuffle(Array.from({ length: o.numItems }, (_, i) => i));
  const categoryOf = new Int32Array(o.numItems);
  slots.forEach((item, k) => (categoryOf[item] = k % o.numCategories));

  const width = Math.max(4, String(o.numItems).length);
  const ids = Array.from({ length: o.numItems }, (_, i) => `p${String(i + 1).padStart(width, '0')}`);
  const members: number[][] = categories.map(() => []);
  for (let i = 0; i < o.numItems; i++) members[categoryOf[i]!]!.push(i);

  const popularity = new Float64Array(o.numItems);
  for (const list of members) {
    const ranks = rng.shuffle(list.map((_, r) => r));
    const raw = ranks.map((r) => 1 / (r + 1) ** o.popularitySkew);
    const total = raw.reduce((a, b) => a + b, 0);
    list.forEach((item, k) => (popularity[item] = raw[k]! / total));
  }

  const titles = new Map<string, number>();
  const items: CatalogueItem[] = [];
  for (let i = 0; i < o.numItems; i++) {
    const c = categoryOf[i]!;
    const words = CATEGORY_WORDS[c % CATEGORY_WORDS.length]!;
    const base = `${rng.pick(words.adjectives)} ${rng.pick(words.nouns)}`;
    const seen = titles.get(base) ?? 0;
    titles.set(base, seen + 1);
    const title = seen === 0 ? base : `${base} ${seen + 1}`;
    const [lo, hi] = words.priceRange;
    // Integer cents divided once gives the double nearest to "N.99" (N + 0.99 could be 1 ulp off).
    const price = (Math.floor(lo * (hi / lo) ** rng.next()) * 100 + 99) / 100;
    const peers = members[c]!.filter((j) => j !== i);
    const related = rng
      .shuffle(peers)
      .slice(0, o.relatedCount)
      .map((j) => ids[j]!);
    items.push({ id: ids[i]!, title, category: c, price, popularity: popularity[i]!, related });
  }
  return { seed: o.seed, categories, items };
}

function indexCatalogue(catalogue: Catalogue): CatalogueIndex {
  const C = catalogue.categories.length;
  const byCategory: number[][] = Array.from({ length: C }, () => []);
  const position = new Map<string, number>();
  catalogue.items.forEach((item, i) => {
    const list = byCategory[item.category];
    if (!list) throw new DatasetError('DATASET_BAD_OPTION', `item ${item.id} has unknown category ${item.category}`);
    list.push(i);
    position.set(item.id, i);
  });
  byCategory.forEach((list, c) => {
    if (list.length === 0) throw new DatasetError('DATASET_BAD_OPTION', `category ${c} has no items`);
  });
  const cumulative = byCategory.map((list) => {
    const cum = new Float64Array(list.length);
    let sum = 0;
    list.forEach((i, k) => (cum[k] = sum += catalogue.items[i]!.popularity));
    return cum;
  });
  const related = catalogue.items.map((item) =>
    item.related.map((id) => {
      const j = position.get(id);
      if (j === undefined) throw new DatasetError('DATASET_BAD_OPTION', `item ${item.id} relates to unknown ${id}`);
      return j;
    }),
  );
  const byPopularity = catalogue.items
    .map((_, i) => i)
    .sort((a, b) => catalogue.items[b]!.popularity - catalogue.items[a]!.popularity);
  return { catalogue, byCategory, cumulative, related, byPopularity };
}

function checkNumber(name: string, v: number, min = -Infinity, max = Infinity): void {
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new DatasetError('DATASET_BAD_OPTION', `${name} must be a number in [${min}, ${max}], got ${v}`);
  }
}

function checkInt(name: string, v: number, min = -Infinity): void {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new DatasetError('DATASET_BAD_OPTION', `${name} must be an integer >= ${min}, got ${v}`);
  }
}

/** Lets `{...defaults, ...options}` keep a default when an option is explicitly undefined. */
function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
