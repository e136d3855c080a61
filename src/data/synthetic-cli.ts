/**
 * Usage: tsx src/data/synthetic-cli.ts --out <dir> [--seed 1] [--items 400] [--shoppers 1500]
 *        [--clicks 30] [--categories 8] [--switch-prob 0.08]
 * Writes <dir>/shop.inter (RecBole atomic format, loadable with loadDataset(<dir>)),
 * <dir>/catalogue.json and <dir>/shoppers.json (ground-truth interest shifts per shopper).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ChordError } from '../core/errors.ts';
import { formatAtomicInter } from './recbole.ts';
import { datasetStats } from './stats.ts';
import { generateShop, SHOP_DEFAULTS } from './synthetic.ts';

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      seed: { type: 'string', default: String(SHOP_DEFAULTS.seed) },
      items: { type: 'string', default: String(SHOP_DEFAULTS.numItems) },
      shoppers: { type: 'string', default: String(SHOP_DEFAULTS.numShoppers) },
      clicks: { type: 'string', default: String(SHOP_DEFAULTS.clicksPerShopper) },
      categories: { type: 'string', default: String(SHOP_DEFAULTS.numCategories) },
      'switch-prob': { type: 'string', default: String(SHOP_DEFAULTS.switchProb) },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help || values.out === undefined) {
    console.log(
      'usage: synthetic-cli --out <dir> [--seed N] [--items N] [--shoppers N] [--clicks N] [--categories N] [--switch-prob P]',
    );
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const shop = generateShop({
    seed: num('seed', values.seed),
    numItems: num('items', values.items),
    numShoppers: num('shoppers', values.shoppers),
    clicksPerShopper: num('clicks', values.clicks),
    numCategories: num('categories', values.categories),
    switchProb: num('switch-prob', values['switch-prob']),
  });
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, 'shop.inter'), formatAtomicInter(shop.interactions));
  writeFileSync(join(values.out, 'catalogue.json'), JSON.stringify(shop.catalogue, null, 1) + '\n');
  writeFileSync(join(values.out, 'shoppers.json'), JSON.stringify(shop.shoppers) + '\n');
  const s = datasetStats(shop.interactions);
  console.log(
    `wrote ${values.out}: ${s.users} shoppers, ${s.items} items in ${shop.catalogue.categories.length} categories, ${s.interactions} clicks`,
  );
}

function num(name: string, value: string): number {
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v)) throw new Error(`--${name} must be a number, got ${value}`);
  return v;
}

try {
  main(process.argv.slice(2));
} catch (err) {
  console.error(err instanceof ChordError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
