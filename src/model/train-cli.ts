/**
 * Trains one model (Base fp32, uniform-quant, or a CHORD variant) on a frozen backbone and
 * exports the artifact directory the page and the strategy server load.
 *
 *   npm run train -- --data ../shared/datasets/ml-100k --backbone sasrec --method chord \
 *     [--beta 0.125] [--levels 2,4,6,8] [--epochs 200] [--patience 10] [--seed 1] [--out <dir>] \
 *     [--w3a3] [--init random|pretrained --pretrained <base run dir>] [--budgets 2.5,2] [--resume]
 *
 * More options (defaults in brackets): --batch [128 sasrec / 512 caser] --lr [1e-3] --hyper-lr [= lr]
 * --weight-decay [0] --dropout [0.2 sasrec / 0.5 caser] --eval-every [1] --metric [ndcg10]
 * --k-core [10] --max-len [50] --temperature [0.5] --z-dim [32] --hyper-hidden [64] --rank [2]
 * --gru-window [20] --lambda-up [1] --lambda-down [1] --uniform-bits [3] --model-id [derived]
 * --max-steps N (cap steps per epoch) --no-progress.
 * Output: <out>/checkpoint/ (best/last/optimizer/state.json: --resume continues there) and the
 * artifact <out>/<modelId>/ (manifest.json, backbone.*, gru.*, hypernet.json, hyper.*,
 * training.json). Early stopping uses validation NDCG@10 only; test metrics are computed once, at
 * the end, through the deployment path (core GRU -> Hypernet -> fakeQuantize -> CPU forward).
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { validateLevelTable } from '../core/allocation.ts';
import { loadDataset } from '../data/load.ts';
import { prepareDataset } from '../data/split.ts';
import { initBackend, type BackendName } from './backend.ts';
import { ChordTrainError } from './chord/errors.ts';
import { RUN_DEFAULTS, runTraining, type RunMethod } from './chord/run.ts';
import type { SelectionMetric } from './train.ts';

const METHODS: readonly RunMethod[] = ['base', 'quant', 'custom', 'weighted', 'chord'];

function num(v: string | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ChordTrainError('CHORD_BAD_OPTION', `--${name} must be a number, got '${v}'`);
  return n;
}

function numList(v: string | undefined, name: string): number[] {
  if (v === undefined || v === '') return [];
  return v.split(',').map((s) => num(s.trim(), NaN, name));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      backbone: { type: 'string', default: 'sasrec' },
      method: { type: 'string', default: 'chord' },
      beta: { type: 'string' },
      levels: { type: 'string' },
      epochs: { type: 'string' },
      patience: { type: 'string' },
      seed: { type: 'string', default: '1' },
      out: { type: 'string' },
      w3a3: { type: 'boolean', default: false },
      init: { type: 'string', default: 'random' },
      pretrained: { type: 'string' },
      budgets: { type: 'string' },
      resume: { type: 'boolean', default: false },
      batch: { type: 'string' },
      lr: { type: 'string' },
      'hyper-lr': { type: 'string' },
      'weight-decay': { type: 'string' },
      dropout: { type: 'string' },
      'eval-every': { type: 'string' },
      metric: { type: 'string', default: 'ndcg10' },
      'k-core': { type: 'string' },
      'max-len': { type: 'string' },
      temperature: { type: 'string' },
      'z-dim': { type: 'string' },
      'hyper-hidden': { type: 'string' },
      rank: { type: 'string' },
      'gru-window': { type: 'string' },
      'lambda-up': { type: 'string' },
      'lambda-down': { type: 'string' },
      'uniform-bits': { type: 'string' },
      'model-id': { type: 'string' },
      'max-steps': { type: 'string' },
      backend: { type: 'string', default: 'wasm' },
      'no-progress': { type: 'boolean', default: false },
    },
  });
  const bad = (msg: string) => new ChordTrainError('CHORD_BAD_OPTION', msg);
  if (!values.data) throw bad('--data <path> is required');
  const kind = values.backbone;
  if (kind !== 'sasrec' && kind !== 'caser') throw bad(`--backbone must be sasrec or caser, got '${kind}'`);
  const method = values.method as RunMethod;
  if (!METHODS.includes(method)) throw bad(`--method must be one of ${METHODS.join('|')}, got '${method}'`);
  const init = values.init;
  if (init !== 'random' && init !== 'pretrained') throw bad(`--init must be random or pretrained`);
  const metric = values.metric as SelectionMetric;
  if (!['ndcg10', 'hr10', 'ndcg10_masked', 'hr10_masked'].includes(metric)) throw bad(`bad --metric ${metric}`);
  const backend = values.backend as BackendName;
  if (backend !== 'wasm' && backend !== 'cpu') throw bad('--backend must be wasm or cpu');
  const levelTable = validateLevelTable(values.levels ? numList(values.levels, 'levels') : RUN_DEFAULTS.levelTable);
  const seed = num(values.seed, 1, 'seed');
  const out = values.out ?? join('.cache', 'runs', `${kind}-${method}-s${seed}`);
  mkdirSync(out, { recursive: true });
  const logFile = join(out, 'train.log');
  const progress = !values['no-progress'] && process.stdout.isTTY === true;
  const log = (line: string) => {
    appendFileSync(logFile, `${new Date().toISOString()} ${line}\n`);
    if (!progress) console.log(line);
  };

  await initBackend(backend);
  const loaded = loadDataset(values.data);
  const kCore = num(values['k-core'], 10, 'k-core');
  const ds = prepareDataset(loaded.interactions, { k: kCore }).split;
  const dataName = basename(values.data.replace(/[\\/]+$/, '')).replace(/\.(inter|data|txt|seq)$/, '');
  console.log(`data ${loaded.file}: ${ds.numUsers} users, ${ds.numItems} items (${kCore}-core); output ${out}`);

  const result = await runTraining(
    {
      backbone: kind,
      method,
      dataName,
      seed,
      epochs: num(values.epochs, RUN_DEFAULTS.epochs, 'epochs'),
      patience: num(values.patience, RUN_DEFAULTS.patience, 'patience'),
      batchSize: num(values.batch, kind === 'sasrec' ? 128 : 512, 'batch'),
      lr: num(values.lr, RUN_DEFAULTS.lr, 'lr'),
      ...(values['hyper-lr'] ? { hyperLr: num(values['hyper-lr'], 0, 'hyper-lr') } : {}),
      weightDecay: num(values['weight-decay'], RUN_DEFAULTS.weightDecay, 'weight-decay'),
      dropout: num(values.dropout, kind === 'sasrec' ? 0.2 : 0.5, 'dropout'),
      evalEvery: num(values['eval-every'], RUN_DEFAULTS.evalEvery, 'eval-every'),
      metric,
      maxLen: num(values['max-len'], RUN_DEFAULTS.maxLen, 'max-len'),
      levelTable,
      beta: num(values.beta, RUN_DEFAULTS.beta, 'beta'),
      lambda: {
        up: num(values['lambda-up'], RUN_DEFAULTS.lambda.up, 'lambda-up'),
        down: num(values['lambda-down'], RUN_DEFAULTS.lambda.down, 'lambda-down'),
      },
      temperature: num(values.temperature, RUN_DEFAULTS.temperature, 'temperature'),
      uniformBits: num(values['uniform-bits'], RUN_DEFAULTS.uniformBits, 'uniform-bits'),
      zDim: num(values['z-dim'], RUN_DEFAULTS.zDim, 'z-dim'),
      hyperHidden: num(values['hyper-hidden'], RUN_DEFAULTS.hyperHidden, 'hyper-hidden'),
      rank: num(values.rank, RUN_DEFAULTS.rank, 'rank'),
      gruWindow: num(values['gru-window'], RUN_DEFAULTS.gruWindow, 'gru-window'),
      ...(values.w3a3 ? { activationBits: 3 } : {}),
      init,
      ...(values.pretrained ? { pretrainedDir: values.pretrained } : {}),
      budgets: numList(values.budgets, 'budgets'),
      out,
      ...(values['model-id'] ? { modelId: values['model-id'] } : {}),
      resume: values.resume,
      ...(values['max-steps'] ? { maxStepsPerEpoch: num(values['max-steps'], 0, 'max-steps') } : {}),
      progress,
      command: process.argv.slice(1).join(' '),
      log,
    },
    ds,
  );
  if (progress) {
    const t = result.test;
    console.log(`test NDCG@10 ${t.unmasked.ndcg10.toFixed(4)} HR@10 ${t.unmasked.hr10.toFixed(4)} (masked ${t.masked.ndcg10.toFixed(4)} / ${t.masked.hr10.toFixed(4)})`);
  }
  console.log(`artifact: ${result.artifactDir}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
