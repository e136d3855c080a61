/**
 * Trains an fp32 Base backbone on a dataset with leave-last-one-out validation/test, early stopping
 * on validation, then reports full-ranking test metrics.
 *
 *   tsx src/model/train-base-cli.ts --data ../shared/datasets/ml-100k --backbone sasrec \
 *     --method base --epochs 200 --seed 1 --out .cache/runs/sasrec-base [--resume]
 *
 * Options (defaults in brackets): --k-core [10] --batch [128 sasrec / 512 caser] --lr [1e-3]
 * --weight-decay [0] --dropout [0.5 sasrec / 0.5 caser] --patience [10] --eval-every [1]
 * --metric ndcg10|hr10|ndcg10_masked|hr10_masked [ndcg10] --max-len [50] --backend wasm|cpu [wasm]
 * --max-steps N (cap steps per epoch; smoke tests).
 * Writes <out>/best.*, last.*, optimizer.*, state.json (see checkpoint.ts) and <out>/result.json.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadDataset } from '../data/load.ts';
import { prepareDataset } from '../data/split.ts';
import type { Backbone } from './backbone.ts';
import { initBackend, type BackendName } from './backend.ts';
import { createCaser } from './caser.ts';
import { writeFileAtomic } from './checkpoint.ts';
import { evaluateRanking, testSet } from './evaluate.ts';
import { createBaseModel } from './model.ts';
import { countParams } from './params.ts';
import { createSasrec } from './sasrec.ts';
import { trainModel, type SelectionMetric } from './train.ts';

function num(v: string | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got '${v}'`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      backbone: { type: 'string', default: 'sasrec' },
      method: { type: 'string', default: 'base' },
      epochs: { type: 'string', default: '200' },
      seed: { type: 'string', default: '1' },
      out: { type: 'string' },
      resume: { type: 'boolean', default: false },
      'k-core': { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      'weight-decay': { type: 'string' },
      dropout: { type: 'string' },
      patience: { type: 'string' },
      'eval-every': { type: 'string' },
      metric: { type: 'string', default: 'ndcg10' },
      'max-len': { type: 'string' },
      backend: { type: 'string', default: 'wasm' },
      'max-steps': { type: 'string' },
    },
  });
  if (!values.data) throw new Error('--data <path> is required');
  if (values.method !== 'base') throw new Error(`--method ${values.method}: only 'base' is implemented here`);
  const kind = values.backbone;
  if (kind !== 'sasrec' && kind !== 'caser') throw new Error(`--backbone must be sasrec or caser, got '${kind}'`);
  const metric = values.metric as SelectionMetric;
  if (!['ndcg10', 'hr10', 'ndcg10_masked', 'hr10_masked'].includes(metric)) throw new Error(`bad --metric ${metric}`);
  const backend = values.backend as BackendName;
  if (backend !== 'wasm' && backend !== 'cpu') throw new Error(`--backend must be wasm or cpu`);
  const seed = num(values.seed, 1, 'seed');
  const out = values.out ?? join('.cache', 'runs', `${kind}-base-s${seed}`);

  await initBackend(backend);
  const t0 = performance.now();
  const loaded = loadDataset(values.data);
  const kCore = num(values['k-core'], 10, 'k-core');
  const ds = prepareDataset(loaded.interactions, { k: kCore }).split;
  console.log(`data ${loaded.file}: ${ds.numUsers} users, ${ds.numItems} items (${kCore}-core)`);

  const dropout = num(values.dropout, 0.5, 'dropout');
  const backbone: Backbone =
    kind === 'sasrec'
      ? createSasrec({ numItems: ds.numItems, numUsers: ds.numUsers, dropout, maxLen: num(values['max-len'], 50, 'max-len') })
      : createCaser({ numItems: ds.numItems, numUsers: ds.numUsers, dropout });
  const model = createBaseModel(backbone, seed);
  const settings = {
    data: loaded.file,
    kCore,
    backbone: kind,
    method: 'base',
    config: (backbone as unknown as { sasrec?: unknown; caser?: unknown }).sasrec ??
      (backbone as unknown as { caser?: unknown }).caser,
    seed,
    batchSize: num(values.batch, kind === 'sasrec' ? 128 : 512, 'batch'),
    lr: num(values.lr, 1e-3, 'lr'),
    weightDecay: num(values['weight-decay'], 0, 'weight-decay'),
    patience: num(values.patience, 10, 'patience'),
    evalEvery: num(values['eval-every'], 1, 'eval-every'),
    metric,
    backend,
  };
  console.log(`model ${kind}: ${countParams(model.variables)} parameters; settings ${JSON.stringify(settings)}`);
  mkdirSync(out, { recursive: true });
  const result = await trainModel(model, backbone, ds, {
    epochs: num(values.epochs, 200, 'epochs'),
    seed,
    batchSize: settings.batchSize,
    lr: settings.lr,
    weightDecay: settings.weightDecay,
    patience: settings.patience,
    evalEvery: settings.evalEvery,
    metric,
    checkpointDir: out,
    resume: values.resume,
    maxStepsPerEpoch: values['max-steps'] === undefined ? undefined : num(values['max-steps'], 0, 'max-steps'),
    settings,
    log: (line) => console.log(line),
  });
  const test = evaluateRanking(
    (seq, users) => model.scores(seq, users),
    backbone.numItems,
    backbone.inputLen,
    testSet(ds),
  );
  const summary = {
    settings,
    bestEpoch: result.bestEpoch,
    epochsRun: result.epochsRun,
    stoppedEarly: result.stoppedEarly,
    meanEpochSeconds: result.meanEpochSeconds,
    meanStepSeconds: result.meanStepSeconds,
    wallSeconds: (performance.now() - t0) / 1000,
    valid: result.bestValid,
    test,
  };
  writeFileAtomic(join(out, 'result.json'), JSON.stringify(summary, null, 1));
  const f = (x: number) => x.toFixed(4);
  console.log(`best epoch ${result.bestEpoch}/${result.epochsRun}, ${result.meanEpochSeconds.toFixed(1)} s/epoch`);
  console.log(`test unmasked NDCG@10 ${f(test.unmasked.ndcg10)} HR@10 ${f(test.unmasked.hr10)} NDCG@5 ${f(test.unmasked.ndcg5)} HR@5 ${f(test.unmasked.hr5)}`);
  console.log(`test masked   NDCG@10 ${f(test.masked.ndcg10)} HR@10 ${f(test.masked.hr10)} NDCG@5 ${f(test.masked.ndcg5)} HR@5 ${f(test.masked.hr5)}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
