/**
 * Trains one model (Base fp32, uniform-quant, or a CHORD variant) on a frozen backbone and
 * exports the artifact directory the page and the strategy server load.
 *
 *   npm run train -- --data ../shared/datasets/ml-100k --backbone sasrec --method chord \
 *     [--beta 0.125] [--levels 2,4,6,8] [--epochs 100] [--patience 6] [--seed 1] [--out <dir>] \
 *     [--w3a3] [--init pretrained|random] [--pretrained <base run dir>] [--budgets 2.5,2] [--resume]
 *
 * --init (quant, custom, weighted, chord; Base is always trained from scratch):
 *   pretrained (default)  freeze a trained Base backbone ("frozen-pretrained"; it beat random-frozen on
 *                         ML-100K validation, results/ml-100k.md). The artifact ships the layer weights.
 *                         Without --pretrained, the Base fp32 model is trained first, with the same
 *                         data, backbone, seed and shared options, into <out>/base/ (its own train.log
 *                         and progress; --resume resumes it too), then the method starts from it.
 *   random                freeze the seed's random backbone (devices regenerate it from the manifest's seed).
 *
 * More options (defaults in brackets; RUN_DEFAULTS, the settings of every committed result): --batch
 * [128 sasrec / 512 caser] --lr [2e-3] --hyper-lr [= lr] --weight-decay [0] --dropout [0.5]
 * --eval-every [1] --metric [ndcg10] --k-core [10; N or USER,ITEM] --max-len [50] --temperature [0.5] --z-dim [32]
 * --hyper-hidden [64] --rank [2] --gru-window [20] --z-targets [10] (SASRec: targets per z, which is
 * built from the items before them) --contrast [0] --contrast-margin [0.02] (own strategy's loss
 * below another user's by the margin) --lambda-up [1] --lambda-down [1] --uniform-bits [3] --model-id [derived]
 * --loss [softmax] | sampled | gbce (item-loss.ts: full softmax, sampled softmax with logQ correction, or gSASRec's
 * gBCE) --negatives [256] (per step, shared by its rows) --sampler [uniform] | popularity (sampled) --gbce-t [0.75]
 * --valid-users [10000] (validation during training ranks all users up to this many, else a fixed seeded sample)
 * --watch-test (the paper's protocol, not a result: also rank as many test users after each validation and record
 * it per epoch in training.json's history; selection stays on validation)
 * --chord-examples (SASRec Base or Quant: train on CHORD's examples, windows every --z-targets items each training its
 * last --z-targets targets; a control for what those examples alone are worth)
 * --z-norm (custom, weighted, chord: standardize z before the hypernet, by batch statistics in training and their
 * running averages after; the export folds them into the trunk. Off by default: validation picked it for
 * frozen-pretrained SASRec on ML-100K (over plain CHORD on two seeds, over Quant on five), where reproduce's
 * profile sets it, but not for Caser on ML-100K nor for SASRec on Amazon Toys)
 * --length-buckets [0] (SASRec: batches of similar window length from chunks of this many batches, each cut to
 * its longest window; 0 = plain shuffled batches)
 * --workers [1] (threads, one core each: each step is split over them (chord/parallel.ts) unless --z-norm or
 * --contrast couple a batch's rows (then the steps run on one), and so is the final evaluation
 * (chord/deploy-workers.ts). How a run computes, not what, so a run resumes with any count)
 * --max-steps N (cap steps per epoch) --no-progress --caser-user [shared] (one learned user row, as the page
 * scores a shopper; table: the paper's per-training-user rows, replaced by their mean on the page).
 * Output (default --out .cache/runs/<backbone>-<method>[-pre]-s<seed>): <out>/checkpoint/
 * (best/last/optimizer/state.json: --resume continues there) and the artifact <out>/<modelId>/
 * (manifest.json, backbone.*, gru.*, hypernet.json, hyper.*, training.json). Early stopping uses
 * validation NDCG@10 only; test metrics are computed once, at the end, through the deployment path
 * (core GRU -> Hypernet -> fakeQuantize -> CPU forward).
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCli } from '../cli/run-cli.ts';
import { validateLevelTable } from '../core/allocation.ts';
import { METHODS, type Method } from '../core/methods.ts';
import { describeCoreThreshold, parseCoreThreshold, type CoreThreshold } from '../data/kcore.ts';
import { loadDataset } from '../data/load.ts';
import { prepareDataset } from '../data/split.ts';
import { initBackend, type BackendName } from './backend.ts';
import { ITEM_LOSSES, NEGATIVE_SAMPLERS, type ItemLossKind, type NegativeSamplerKind } from './item-loss.ts';
import { ChordTrainError } from './chord/errors.ts';
import { RUN_DEFAULTS, runTraining, type RunOptions, type RunResult } from './chord/run.ts';
import { codeRevision } from './provenance.ts';
import { lockRun } from './run-lock.ts';
import type { SelectionMetric } from './train.ts';


/** Where the Base run of `--init pretrained` without `--pretrained` goes, inside the run's --out. */
export const AUTO_BASE_DIR = 'base';

/** --k-core's value (N or USER,ITEM). */
function coreThreshold(text: string): CoreThreshold {
  try {
    return parseCoreThreshold(text);
  } catch (error) {
    throw new ChordTrainError('CHORD_BAD_OPTION', `--k-core: ${(error as Error).message}`, { cause: error });
  }
}

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

/** runTraining's options as far as the command line decides them (the rest needs the terminal and a log file). */
export type CliRunOptions = Omit<RunOptions, 'progress' | 'log'>;

export interface TrainCliArgs {
  readonly data: string;
  readonly kCore: CoreThreshold;
  readonly backend: BackendName;
  readonly noProgress: boolean;
  /** `--init pretrained` without `--pretrained`: train the Base into <out>/base first, then freeze it. */
  readonly autoBase: boolean;
  /** The requested run; with autoBase, its pretrainedDir is the Base run's directory. */
  readonly run: CliRunOptions;
}

/** Parses train-cli's arguments (no file system access); bad options throw ChordTrainError CHORD_BAD_OPTION. */
export function parseTrainArgs(argv: readonly string[], command: string = argv.join(' ')): TrainCliArgs {
  const { values } = parseArgs({
    args: [...argv],
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
      'caser-user': { type: 'string' },
      // No parser default: it depends on --method (Base has no frozen backbone to choose).
      init: { type: 'string' },
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
      'z-targets': { type: 'string' },
      contrast: { type: 'string' },
      'contrast-margin': { type: 'string' },
      'lambda-up': { type: 'string' },
      'lambda-down': { type: 'string' },
      'uniform-bits': { type: 'string' },
      'model-id': { type: 'string' },
      'max-steps': { type: 'string' },
      loss: { type: 'string' },
      negatives: { type: 'string' },
      sampler: { type: 'string' },
      'gbce-t': { type: 'string' },
      'valid-users': { type: 'string' },
      'watch-test': { type: 'boolean', default: false },
      'chord-examples': { type: 'boolean', default: false },
      'z-norm': { type: 'boolean', default: false },
      'length-buckets': { type: 'string' },
      workers: { type: 'string' },
      backend: { type: 'string', default: 'wasm' },
      'no-progress': { type: 'boolean', default: false },
    },
  });
  const bad = (msg: string) => new ChordTrainError('CHORD_BAD_OPTION', msg);
  if (!values.data) throw bad('--data <path> is required');
  const kind = values.backbone;
  if (kind !== 'sasrec' && kind !== 'caser') throw bad(`--backbone must be sasrec or caser, got '${kind}'`);
  const method = values.method as Method;
  if (!METHODS.includes(method)) throw bad(`--method must be one of ${METHODS.join('|')}, got '${method}'`);
  const init = values.init ?? (method === 'base' ? 'random' : 'pretrained');
  if (init !== 'random' && init !== 'pretrained') throw bad(`--init must be random or pretrained`);
  if (method === 'base' && init === 'pretrained') throw bad('--init pretrained needs a quantized method (Base trains its own weights)');
  if (values.pretrained !== undefined && init !== 'pretrained') {
    throw bad(method === 'base' ? '--pretrained applies to the quantized methods, not to Base' : '--pretrained applies to --init pretrained, not to --init random');
  }
  const caserUser = values['caser-user'];
  if (caserUser !== undefined && caserUser !== 'table' && caserUser !== 'shared') throw bad(`--caser-user must be table or shared, got '${caserUser}'`);
  if (caserUser !== undefined && kind !== 'caser') throw bad('--caser-user applies to --backbone caser');
  const metric = values.metric as SelectionMetric;
  if (!['ndcg10', 'hr10', 'ndcg10_masked', 'hr10_masked'].includes(metric)) throw bad(`bad --metric ${metric}`);
  const backend = values.backend as BackendName;
  if (backend !== 'wasm' && backend !== 'cpu') throw bad('--backend must be wasm or cpu');
  const lossKind = (values.loss ?? RUN_DEFAULTS.loss.kind) as ItemLossKind;
  if (!ITEM_LOSSES.includes(lossKind)) throw bad(`--loss must be one of ${ITEM_LOSSES.join('|')}, got '${lossKind}'`);
  const sampler = (values.sampler ?? RUN_DEFAULTS.loss.sampler) as NegativeSamplerKind;
  if (!NEGATIVE_SAMPLERS.includes(sampler)) throw bad(`--sampler must be one of ${NEGATIVE_SAMPLERS.join('|')}, got '${sampler}'`);
  if (lossKind === 'softmax' && (values.negatives ?? values.sampler ?? values['gbce-t']) !== undefined) {
    throw bad('--negatives, --sampler and --gbce-t apply to --loss sampled or gbce');
  }
  if (lossKind === 'gbce' && values.sampler !== undefined) throw bad('--loss gbce samples uniformly (gSASRec); --sampler applies to --loss sampled');
  const negatives = num(values.negatives, RUN_DEFAULTS.loss.negatives, 'negatives');
  if (!Number.isInteger(negatives) || negatives < 1) throw bad(`--negatives must be a positive integer, got ${negatives}`);
  const gbceT = num(values['gbce-t'], RUN_DEFAULTS.loss.gbceT, 'gbce-t');
  if (!(gbceT >= 0 && gbceT <= 1)) throw bad(`--gbce-t must be in [0, 1], got ${gbceT}`);
  const validUsers = num(values['valid-users'], RUN_DEFAULTS.validUsers, 'valid-users');
  if (!Number.isInteger(validUsers) || validUsers < 1) throw bad(`--valid-users must be a positive integer, got ${validUsers}`);
  const lengthBuckets = num(values['length-buckets'], 0, 'length-buckets');
  if (!Number.isInteger(lengthBuckets) || lengthBuckets < 0) throw bad(`--length-buckets must be an integer >= 0, got ${lengthBuckets}`);
  if (lengthBuckets > 0 && kind !== 'sasrec') throw bad('--length-buckets applies to --backbone sasrec (Caser reads a fixed window)');
  const workers = num(values.workers, 1, 'workers');
  if (!Number.isInteger(workers) || workers < 1) throw bad(`--workers must be a positive integer, got ${workers}`);
  const levelTable = validateLevelTable(values.levels ? numList(values.levels, 'levels') : RUN_DEFAULTS.levelTable);
  const seed = num(values.seed, 1, 'seed');
  const out = values.out ?? join('.cache', 'runs', `${kind}-${method}${init === 'pretrained' ? '-pre' : ''}-s${seed}`);
  const autoBase = init === 'pretrained' && !values.pretrained;
  const pretrainedDir = autoBase ? join(out, AUTO_BASE_DIR) : values.pretrained;
  const dataName = basename(values.data.replace(/[\\/]+$/, '')).replace(/\.(inter|data|txt|seq)$/, '');
  return {
    data: values.data,
    kCore: values['k-core'] === undefined ? 10 : coreThreshold(values['k-core']),
    backend,
    noProgress: values['no-progress'],
    autoBase,
    run: {
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
      dropout: num(values.dropout, RUN_DEFAULTS.dropout, 'dropout'),
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
      zTargets: num(values['z-targets'], RUN_DEFAULTS.zTargets, 'z-targets'),
      contrast: num(values.contrast, RUN_DEFAULTS.contrast, 'contrast'),
      contrastMargin: num(values['contrast-margin'], RUN_DEFAULTS.contrastMargin, 'contrast-margin'),
      ...(values.w3a3 ? { activationBits: 3 } : {}),
      ...(caserUser ? { caserUser } : {}),
      init,
      ...(pretrainedDir ? { pretrainedDir } : {}),
      budgets: numList(values.budgets, 'budgets'),
      out,
      ...(values['model-id'] ? { modelId: values['model-id'] } : {}),
      resume: values.resume,
      ...(values['max-steps'] ? { maxStepsPerEpoch: num(values['max-steps'], 0, 'max-steps') } : {}),
      loss: { kind: lossKind, negatives, sampler, gbceT },
      validUsers,
      ...(values['watch-test'] ? { watchTest: true } : {}),
      ...(values['chord-examples'] ? { chordExamples: true } : {}),
      ...(values['z-norm'] ? { zNorm: true } : {}),
      ...(lengthBuckets > 0 ? { lengthBuckets } : {}),
      ...(workers > 1 ? { workers } : {}),
      command,
    },
  };
}

/**
 * The Base fp32 run a frozen-pretrained run starts from: the same data, backbone, seed and shared
 * options (so it is the Base `--method base` with those options would train), into pretrainedDir.
 * What only the quantized run has is left out: w3a3 (fp32 Base), T budgets, its model id.
 */
export function autoBaseOptions(run: CliRunOptions): CliRunOptions {
  if (!run.pretrainedDir) throw new ChordTrainError('CHORD_BAD_OPTION', 'a frozen-pretrained run needs a Base run directory');
  const { activationBits: _a, pretrainedDir, modelId: _m, ...shared } = run;
  return {
    ...shared,
    method: 'base',
    init: 'random',
    budgets: [],
    out: pretrainedDir,
    command: `${run.command} (Base fp32 run for --init pretrained)`,
  };
}

export interface TrainCliIo {
  /** Console lines (default console.log). */
  readonly print?: (line: string) => void;
  /** Whether a progress bar may be drawn (default: stdout is a terminal). */
  readonly tty?: boolean;
}

export interface TrainCliResult {
  /** The Base run trained first for `--init pretrained` without `--pretrained`. */
  readonly base?: RunResult;
  readonly result: RunResult;
}

/** The whole `npm run train` command: argv without the node and script paths. */
export async function trainCli(argv: readonly string[], io: TrainCliIo = {}, command?: string): Promise<TrainCliResult> {
  const args = parseTrainArgs(argv, command);
  const print = io.print ?? ((line: string) => console.log(line));
  const progress = !args.noProgress && (io.tty ?? process.stdout.isTTY === true);
  // The code this process loaded: read now, as the checkout may move on while it trains.
  const code = codeRevision();
  const runWith = (o: CliRunOptions, prefix: string) => {
    mkdirSync(o.out, { recursive: true });
    const logFile = join(o.out, 'train.log');
    const log = (line: string) => {
      appendFileSync(logFile, `${new Date().toISOString()} ${line}\n`);
      if (!progress) print(`${prefix}${line}`);
    };
    return { ...o, progress, log, code };
  };
  const testLine = (r: RunResult) => {
    const t = r.test;
    return `test NDCG@10 ${t.unmasked.ndcg10.toFixed(4)} HR@10 ${t.unmasked.hr10.toFixed(4)} (masked ${t.masked.ndcg10.toFixed(4)} / ${t.masked.hr10.toFixed(4)})`;
  };

  mkdirSync(args.run.out, { recursive: true });
  // Until it returns or throws, no other process trains into this folder (run-lock.ts).
  const release = await lockRun(args.run.out, print);
  try {
    await initBackend(args.backend);
    const loaded = loadDataset(args.data);
    const ds = prepareDataset(loaded.interactions, { k: args.kCore }).split;
    print(`data ${loaded.file}: ${ds.numUsers} users, ${ds.numItems} items (${describeCoreThreshold(args.kCore)}); output ${args.run.out}`);

    let base: RunResult | undefined;
    if (args.autoBase) {
      const o = autoBaseOptions(args.run);
      print(`--init pretrained: training the Base fp32 model first, into ${o.out}`);
      base = await runTraining(runWith(o, '[base] '), ds);
      if (progress) print(`[base] ${testLine(base)}`);
      print(`[base] artifact: ${base.artifactDir}`);
    }
    const result = await runTraining(runWith(args.run, ''), ds);
    if (progress) print(testLine(result));
    print(`artifact: ${result.artifactDir}`);
    return { ...(base ? { base } : {}), result };
  } finally {
    await release();
  }
}

const TRAIN_USAGE = `usage: npm run train -- --data <path> [--backbone sasrec|caser] [--method base|quant|custom|weighted|chord]
       [--init pretrained|random] [--pretrained <Base run dir>] [--beta B] [--levels 2,4,6,8] [--w3a3]
       [--budgets 2.5,2] [--epochs N] [--patience N] [--seed N] [--out <dir>] [--resume] [--model-id ID] [--no-progress]
       [--batch N] [--lr X] [--hyper-lr X] [--weight-decay X] [--dropout X] [--eval-every N] [--metric ndcg10]
       [--k-core N|USER,ITEM] [--max-len N] [--temperature X] [--z-dim N] [--hyper-hidden N] [--rank N] [--gru-window N]
       [--lambda-up X] [--lambda-down X] [--uniform-bits N] [--max-steps N] [--caser-user shared|table] [--backend wasm]
       [--loss softmax|sampled|gbce] [--negatives N] [--sampler uniform|popularity] [--gbce-t X] [--valid-users N]
       [--length-buckets N] [--watch-test] [--chord-examples] [--z-norm] [--workers N]
  <path>: a RecBole .inter file or folder, a MovieLens u.data, or a sequence file (.txt/.seq; see the README).
  --z-norm is off by default; validation picked it for SASRec on ML-100K only (not Caser there, not SASRec on
  Amazon Toys), and reproduce sets it there. --workers 2 splits each step (unless --z-norm or --contrast
  couple a batch's rows) and the final evaluation over two cores.
  Writes a checkpoint and the artifact <out>/<modelId>/ (manifest.json, items, backbone.*, gru.*, hypernet.json,
  hyper.*, training.json); src/model/train-cli.ts's header explains every option and its default.`;

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runCli({ program: 'train', usage: TRAIN_USAGE, main: (argv) => trainCli(argv, {}, process.argv.slice(1).join(' ')) });
}
