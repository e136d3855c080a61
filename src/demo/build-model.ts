/**
 * `npm run build:demo-model`: rebuilds the demo shop's committed model from scratch.
 *
 *   1. generates the seeded synthetic shop (src/data/synthetic.ts) and writes it as a RecBole
 *      `.inter` file under .cache/demo-model/;
 *   2. trains a small CHORD SASRec on it with the project's own training command
 *      (src/model/train-cli.ts, the `npm run train` CLI), as a child process, in its default
 *      frozen-pretrained mode: the command first trains the Base fp32 SASRec into <run>/base/,
 *      then CHORD on that Base's frozen weights, which the artifact ships in backbone.bin
 *      (manifest `frozenWeights: 'shipped'`; the page checks them against the manifest's hash);
 *   3. copies the artifact to public/models/<modelId>/, adds items.json (the trainer does not
 *      write one: the shop's ids by dense index, rebuilt from the same dataset preparation the
 *      trainer ran), and writes public/catalogue.json (the shop's categories, titles, prices) and
 *      public/models/README.md (what was run, sizes, CHORD's and the Base's metrics).
 *
 * Options: --out <dir> (default public) --work <dir> (default .cache/demo-model) --epochs N
 * --seed N. Sizes are chosen so that it runs in minutes on two busy cores (see DEMO_SHOP and
 * DEMO_TRAINING; two trainings, Base then CHORD) and the committed files stay well under 2 MB.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ITEM_TABLE_FILE, parseManifest } from '../core/manifest.ts';
import { loadDataset } from '../data/load.ts';
import { formatAtomicInter } from '../data/recbole.ts';
import { prepareDataset } from '../data/split.ts';
import { generateShop } from '../data/synthetic.ts';
import type { ShopOptions } from '../data/synthetic.ts';
import { catalogueForModel, DEMO_MODEL_ID } from './catalogue.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The shop: 8 categories of 40 items; shoppers stay in a category for ~12 clicks on average. */
export const DEMO_SHOP = {
  seed: 7,
  numCategories: 8,
  numItems: 320,
  popularitySkew: 0.7,
  numShoppers: 1200,
  clicksPerShopper: 24,
  focus: 0.85,
  switchProb: 0.08,
} as const satisfies ShopOptions;

/**
 * Training: hidden 64 (the trainer's SASRec default), sequences of 20 clicks (= the GRU window,
 * which SASRec needs <= maxLen), z of 32, a 16-wide hypernet trunk (its output heads scale with
 * hidden x channels: 16 keeps hyper.bin ~0.4 MB), 5-core (the Zipf tail of a 40-item category
 * gets few clicks).
 */
export const DEMO_TRAINING = {
  epochs: 10,
  patience: 4,
  maxLen: 20,
  gruWindow: 20,
  zDim: 32,
  hyperHidden: 16,
  kCore: 5,
  lr: 2e-3,
  seed: 1,
} as const;

/**
 * Files of the artifact copied into public/models/<modelId>/ (training.json: provenance). The
 * frozen-pretrained layer weights travel inside backbone.bin, so no file is added for them.
 * item_emb.q8 (the 8-bit item table) is copied when the manifest pins it (version 2); training
 * writes version 1 (item_emb in float32 in backbone.bin), so the demo model is version 1 and the
 * page quantizes its 320-row table on load, to the bytes a version-2 export would ship.
 */
const ARTIFACT_FILES = ['manifest.json', 'backbone.json', 'backbone.bin', 'gru.json', 'gru.bin', 'hypernet.json', 'hyper.json', 'hyper.bin', 'training.json'];

function run(command: string, args: string[]): Promise<void> {
  console.log(`$ ${[command, ...args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolvePromise() : reject(new Error(`${command} exited with ${signal ?? code}`)),
    );
  });
}

/**
 * Arguments of src/model/train-cli.ts for the demo model (paths relative to the repository root).
 * No --init: the default, frozen-pretrained, with the Base trained into <runDir>/base/.
 */
export function trainArgsFor(dataDir: string, runDir: string, epochs: number = DEMO_TRAINING.epochs): string[] {
  const T = DEMO_TRAINING;
  return [
    '--data', dataDir,
    '--backbone', 'sasrec',
    '--method', 'chord',
    '--epochs', String(epochs),
    '--patience', String(T.patience),
    '--max-len', String(T.maxLen),
    '--gru-window', String(T.gruWindow),
    '--z-dim', String(T.zDim),
    '--hyper-hidden', String(T.hyperHidden),
    '--k-core', String(T.kCore),
    '--lr', String(T.lr),
    '--budgets', '2.5,2',
    '--seed', String(T.seed),
    '--model-id', DEMO_MODEL_ID,
    '--out', runDir,
    '--no-progress',
  ];
}

/** The Base run train-cli trained into `dir` (<runDir>/base): its artifact's training.json. */
function baseRun(dir: string): BaseRunSummary {
  const modelId = readdirSync(dir).find((d) => existsSync(join(dir, d, 'training.json')));
  if (!modelId) throw new Error(`no Base run artifact (training.json) under ${dir}`);
  return { modelId, training: JSON.parse(readFileSync(join(dir, modelId, 'training.json'), 'utf8')) as TrainingSummary };
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

interface Metrics {
  readonly ndcg10?: number;
  readonly hr10?: number;
}
interface EvalSummary {
  readonly unmasked?: Metrics;
  readonly masked?: Metrics;
  readonly averageBits?: number;
}
/** The parts of the trainer's training.json the README quotes. */
export interface TrainingSummary {
  readonly epochs?: { readonly run?: number; readonly best?: number };
  readonly metrics?: {
    readonly test?: EvalSummary;
    readonly testAtBudget?: Readonly<Record<string, EvalSummary>>;
    readonly testOthersStrategy?: EvalSummary;
  };
  readonly timing?: { readonly trainSeconds?: number; readonly finalEvalSeconds?: number };
}

/** The Base fp32 run train-cli trained first, as the README quotes it. */
export interface BaseRunSummary {
  readonly modelId: string;
  readonly training: TrainingSummary;
}

/**
 * A Base that ran to the epoch cap was stopped by the cap, not by early stopping, and CHORD then
 * trains on from it: part of CHORD's lead over that Base is extra training, not quantization.
 */
function capNote(base: TrainingSummary, trainArgs: readonly string[]): string {
  const i = trainArgs.indexOf('--epochs');
  const cap = i >= 0 ? Number(trainArgs[i + 1]) : DEMO_TRAINING.epochs;
  const e = base.epochs;
  if (e?.run === undefined || e.run < cap) return '';
  return `- the Base ran to the epoch cap (${cap}; best epoch ${e.best ?? '?'}), not to early stopping, and CHORD trains on from it: part of CHORD's lead over this Base is extra training\n`;
}

/** public/models/README.md: what was run, and what came out. */
export function modelReadme(r: {
  readonly shopOptions: ShopOptions;
  readonly clicks: number;
  readonly catalogueItems: number;
  readonly categories: number;
  readonly numItems: number;
  readonly trainArgs: readonly string[];
  readonly training: TrainingSummary;
  readonly base: BaseRunSummary;
  /** Bytes of the shipped frozen layer weights inside backbone.bin. */
  readonly frozenBytes: number;
  readonly modelBytes: number;
  readonly catalogueBytes: number;
  readonly buildSeconds: number;
}): string {
  const f = (x: number | undefined) => x?.toFixed(4) ?? '?';
  const line = (label: string, e: EvalSummary | undefined, bits = `${e?.averageBits?.toFixed(2) ?? '?'} bits`) =>
    `  - ${label} (${bits}): NDCG@10 ${f(e?.unmasked?.ndcg10)}, HR@10 ${f(e?.unmasked?.hr10)}; ` +
    `clicked items masked: NDCG@10 ${f(e?.masked?.ndcg10)}, HR@10 ${f(e?.masked?.hr10)}`;
  const m = r.training.metrics;
  const budgets = Object.entries(m?.testAtBudget ?? {}).sort((a, b) => Number(b[0]) - Number(a[0]));
  const tests = [
    line('Base SASRec, whose layer weights CHORD freezes', r.base.training.metrics?.test, 'fp32'),
    line('CHORD, strategy as sent', m?.test),
    ...budgets.map(([b, e]) => line(`T to ${b} bits`, e)),
    ...(m?.testOthersStrategy ? [line("another shopper's strategy", m.testOthersStrategy)] : []),
  ];
  const k = DEMO_TRAINING.kCore;
  const epochs = (t: TrainingSummary) => `${t.epochs?.run ?? '?'} (best ${t.epochs?.best ?? '?'})`;
  const seconds = (t: TrainingSummary) => t.timing?.trainSeconds?.toFixed(0) ?? '?';
  return `# Demo model

\`public/models/${DEMO_MODEL_ID}/\` and \`public/catalogue.json\` are what \`npm start\` serves. They were built by

    npm run build:demo-model

(src/demo/build-model.ts), which generated the seeded synthetic shop
(\`generateShop(${JSON.stringify(r.shopOptions)})\`, ${r.clicks} clicks), trained it with the project's
training command:

    node --import tsx src/model/train-cli.ts ${r.trainArgs.join(' ')}

and added \`items.json\` (the dataset's item ids by dense index) and the catalogue. That command runs
CHORD in its default mode, frozen-pretrained: it first trains the Base fp32 SASRec (\`${r.base.modelId}\`,
same data, seed and options) and freezes that model's layer weights. The frozen weights are therefore
shipped: \`backbone.bin\` carries them (${kib(r.frozenBytes)} of fp32) and \`manifest.json\` says
\`frozenWeights: "shipped"\` with their SHA-256, which the page checks before it quantizes them.

- items: ${r.numItems} (of ${r.catalogueItems}; the ${k}-core keeps items with >= ${k} clicks), categories: ${r.categories}
- epochs run: Base ${epochs(r.base.training)}, CHORD ${epochs(r.training)}; training Base ${seconds(r.base.training)} s + CHORD ${seconds(r.training)} s, whole build ${r.buildSeconds.toFixed(0)} s
- test, through the deployment path (leave-last-one-out, full ranking over all items):
${tests.join('\n')}
${capNote(r.base.training, r.trainArgs)}- size: model ${kib(r.modelBytes)} (hyper.* and hypernet.json are read by the strategy server only), catalogue ${kib(r.catalogueBytes)}
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: join(ROOT, 'public') },
      work: { type: 'string', default: join(ROOT, '.cache', 'demo-model') },
      epochs: { type: 'string', default: String(DEMO_TRAINING.epochs) },
      seed: { type: 'string', default: String(DEMO_SHOP.seed) },
    },
    strict: true,
  });
  const out = resolve(values.out);
  const work = resolve(values.work);
  const epochs = Number(values.epochs);
  const shopSeed = Number(values.seed);
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`--epochs must be a positive integer, got ${values.epochs}`);
  if (!Number.isInteger(shopSeed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  const t0 = performance.now();

  // 1. The shop.
  const shop = generateShop({ ...DEMO_SHOP, seed: shopSeed });
  const dataDir = join(work, 'demo-shop');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, 'demo-shop.inter'), formatAtomicInter(shop.interactions));
  console.log(`shop: ${shop.catalogue.items.length} items in ${shop.catalogue.categories.length} categories, ${shop.interactions.length} clicks of ${shop.shoppers.length} shoppers`);

  // 2. Train with the project's training command.
  const T = DEMO_TRAINING;
  const runDir = join(work, 'run');
  const trainArgs = trainArgsFor(relative(ROOT, dataDir), relative(ROOT, runDir), epochs);
  await run(process.execPath, ['--import', 'tsx', 'src/model/train-cli.ts', ...trainArgs]);
  const artifactDir = join(runDir, DEMO_MODEL_ID);
  const base = baseRun(join(runDir, 'base'));

  // 3. Publish: artifact + items.json + catalogue.json + README.
  const split = prepareDataset(loadDataset(dataDir).interactions, { k: T.kCore }).split;
  const manifest = parseManifest(JSON.parse(readFileSync(join(artifactDir, 'manifest.json'), 'utf8')));
  if (manifest.frozenWeights !== 'shipped') throw new Error(`${artifactDir}: expected a frozen-pretrained artifact (frozenWeights 'shipped')`);
  if (split.itemIds.length !== manifest.numItems + 1) {
    throw new Error(`dataset has ${split.itemIds.length - 1} items after the ${T.kCore}-core but the manifest ${manifest.numItems}`);
  }
  const modelsDir = join(out, 'models');
  const modelDir = join(modelsDir, DEMO_MODEL_ID);
  rmSync(modelDir, { recursive: true, force: true });
  mkdirSync(modelDir, { recursive: true });
  for (const f of [...ARTIFACT_FILES, ...(manifest.itemTable ? [ITEM_TABLE_FILE] : [])]) copyFileSync(join(artifactDir, f), join(modelDir, f));
  writeFileSync(join(modelDir, 'items.json'), JSON.stringify(split.itemIds));
  const catalogue = catalogueForModel(shop.catalogue, split.itemIds);
  writeFileSync(join(out, 'catalogue.json'), JSON.stringify(catalogue));

  const readme = modelReadme({
    shopOptions: { ...DEMO_SHOP, seed: shopSeed },
    clicks: shop.interactions.length,
    catalogueItems: shop.catalogue.items.length,
    categories: catalogue.categories.length,
    numItems: manifest.numItems,
    trainArgs,
    training: JSON.parse(readFileSync(join(modelDir, 'training.json'), 'utf8')) as TrainingSummary,
    base,
    frozenBytes: manifest.layers.reduce((sum, l) => sum + 4 * l.outChannels * l.rowLength, 0),
    modelBytes: dirBytes(modelDir),
    catalogueBytes: statSync(join(out, 'catalogue.json')).size,
    buildSeconds: (performance.now() - t0) / 1000,
  });
  writeFileSync(join(modelsDir, 'README.md'), readme);
  console.log(`wrote ${relative(ROOT, modelDir)} (${kib(dirBytes(modelDir))}) and ${relative(ROOT, join(out, 'catalogue.json'))} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
