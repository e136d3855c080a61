/**
 * Usage: tsx src/data/synthetic-cli.ts --out <dir> [--seed 1] [--items 400] [--shoppers 1500]
 *        [--clicks 30] [--categories 8] [--switch-prob 0.08]
 * Writes <dir>/shop.inter (RecBole atomic format, loadable with loadDataset(<dir>)),
 * <dir>/catalogue.json and <dir>/shoppers.json (ground-truth interest shifts per shopper).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runCli, UsageError } from '../cli/run-cli.ts';
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
    },
    strict: true,
  });
  if (values.out === undefined) throw new UsageError('--out <dir> is required');
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
  if (value.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${name} must be a number, got ${value}`);
  return v;
}

const USAGE = `usage: npm run synth -- --out <dir> [--seed N (${SHOP_DEFAULTS.seed})] [--items N (${SHOP_DEFAULTS.numItems})]
       [--shoppers N (${SHOP_DEFAULTS.numShoppers})] [--clicks N (${SHOP_DEFAULTS.clicksPerShopper})] [--categories N (${SHOP_DEFAULTS.numCategories})] [--switch-prob P (${SHOP_DEFAULTS.switchProb})]
  Writes <dir>/shop.inter (RecBole atomic), catalogue.json and shoppers.json (each shopper's interest shifts).`;

await runCli({ program: 'synth', usage: USAGE, main });
