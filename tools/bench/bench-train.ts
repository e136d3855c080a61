/**
 * Training-step benchmark: `npm run bench:train [-- --data <path>] [--k-core 10] [--length-buckets 0]
 * [--workers 1] [--steps 6] [--only caser,chord] [--out results/bench-train.json]`.
 *
 * CPU seconds per optimisation step (forward, backward, Adam) of every method on both backbones,
 * at the train CLI's batch sizes (SASRec 128, Caser 512) on the tfjs wasm backend, and what that
 * means per epoch (steps per epoch x s/step). CPU time of this process, not wall time: on a shared
 * machine it moves far less with other load (the load average at the start is recorded too).
 * Models are random-frozen (a frozen-pretrained one costs the same per step).
 *
 * Default data: a generated shop of ML-100K's size (943 shoppers, 1,152 items, ~100 clicks each),
 * so anyone can run it; `--data ../shared/datasets/ml-100k` measures on the real split. A shop-size
 * catalogue as reproduce trains it: `--data ../shared/datasets/amazon-sports/Sports_and_Outdoors.txt
 * --k-core 0 --length-buckets 20 --only sasrec` (SASRec's batches of similar length, cut).
 * Windows are the training loop's: Base and Quant train every target of a window, the hypernet
 * methods CHORD's windows.
 */
import * as tf from '@tensorflow/tfjs';
import { SingleBar } from 'cli-progress';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BACKBONE_KINDS, type BackboneKind } from '../../src/core/backbones.ts';
import { runCli, UsageError } from '../../src/cli/run-cli.ts';
import { isHypernetMethod, METHODS, type Method } from '../../src/core/methods.ts';
import { loadDataset } from '../../src/data/load.ts';
import { prepareDataset } from '../../src/data/split.ts';
import { generateShop } from '../../src/data/synthetic.ts';
import type { SplitDataset } from '../../src/data/types.ts';
import { initBackend } from '../../src/model/backend.ts';
import { chordBatch, chordExamples, disposeChordBatch } from '../../src/model/chord/data.ts';
import { GroupedAdam, lengthBatches } from '../../src/model/chord/loop.ts';
import { buildReplica, makeBackbone, RUN_DEFAULTS } from '../../src/model/chord/run.ts';
import { CHORD_DEFAULTS } from '../../src/model/chord/model.ts';
import { DataParallelSteps, type ReplicaSpec } from '../../src/model/chord/parallel.ts';
import { Rng } from '../../src/core/rng.ts';
import { trainStep } from '../../src/model/train.ts';

const BATCH = { sasrec: 128, caser: 512 } as const;
const WARMUP_STEPS = 2;

/** ML-100K's size after the 10-core filter: 943 users, 1,152 items, ~98k clicks. */
const ML100K_SIZED_SHOP = { seed: 1, numItems: 1152, numShoppers: 943, clicksPerShopper: 104 } as const;

export interface StepBench {
  readonly backbone: BackboneKind;
  readonly method: Method;
  readonly batchSize: number;
  /** Threads each step is split over (train --workers; 1 = one thread). */
  readonly workers: number;
  /** Batches of similar window length, cut to their longest (SASRec; 0 = off). */
  readonly lengthBuckets: number;
  /** Mean target rows per timed step (what the item loss is computed on). */
  readonly meanTargetRows: number;
  readonly stepsPerEpoch: number;
  readonly stepsTimed: number;
  readonly cpuSecondsPerStep: number;
  readonly wallSecondsPerStep: number;
  /** stepsPerEpoch x cpuSecondsPerStep / 60 (all threads). */
  readonly cpuMinutesPerEpoch: number;
  /** stepsPerEpoch x wallSecondsPerStep / 60: what `workers` threads buy, on an otherwise idle machine. */
  readonly wallMinutesPerEpoch: number;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** The replica spec of a run with reproduce's settings (dropout 0.5, maxLen 50, Caser's shared user row). */
function benchSpec(ds: SplitDataset, kind: BackboneKind, method: Method): ReplicaSpec {
  const options = { ...RUN_DEFAULTS, backbone: kind, method, seed: 1, dropout: 0.5, maxLen: 50, caserUser: 'shared', init: 'random' };
  return { options, numItems: ds.numItems, numUsers: ds.numUsers, backend: 'wasm' };
}

/**
 * Times `steps` optimisation steps (after WARMUP_STEPS) of one backbone and method; with
 * `workers` > 1, each step split over that many threads (train --workers; no --z-norm or --contrast here).
 */
export async function benchSteps(ds: SplitDataset, kind: BackboneKind, method: Method, steps: number, lengthBuckets = 0, workers = 1): Promise<StepBench> {
  const seed = 1;
  const spec = benchSpec(ds, kind, method);
  const backbone = makeBackbone({ backbone: kind, dropout: 0.5, maxLen: 50, caserUser: 'shared' }, ds);
  const buckets = backbone.acceptsShortWindows ? lengthBuckets : 0;
  const model = buildReplica(spec);
  const zTargets = isHypernetMethod(method) ? CHORD_DEFAULTS.zTargets : backbone.inputLen;
  const ex = chordExamples(backbone, ds.train, 0, { gruLen: CHORD_DEFAULTS.gruWindow, zTargets });
  const batchSize = BATCH[kind];
  const order = Array.from({ length: ex.count }, (_, i) => i);
  const rng = new Rng(seed);
  rng.shuffle(order);
  const bucketed = buckets > 0 ? lengthBatches(ex, order, batchSize, buckets, rng) : undefined;
  const batchIndices = (s: number): number[] => {
    if (bucketed) return bucketed[s % bucketed.length]!;
    const from = (s * batchSize) % Math.max(1, ex.count - batchSize);
    return order.slice(from, from + batchSize);
  };
  const parallel = workers > 1 ? DataParallelSteps.start(spec, workers) : undefined;
  parallel?.setExamples(ex);
  const adam = new GroupedAdam(1e-3, 1e-3, 0);
  const ctx = { training: true, seed: () => rng.seed() };
  let cpu0 = 0;
  let wall0 = 0;
  try {
    for (let s = 0; s < WARMUP_STEPS + steps; s++) {
      if (s === WARMUP_STEPS) {
        cpu0 = cpuSeconds();
        wall0 = performance.now();
      }
      const idx = batchIndices(s);
      if (parallel) {
        await parallel.step(model, adam, idx, bucketed !== undefined, ctx);
      } else {
        const batch = chordBatch(ex, idx, bucketed !== undefined);
        trainStep(model, adam, batch, ctx);
        disposeChordBatch(batch);
      }
    }
  } finally {
    await parallel?.close();
  }
  // Worker threads' CPU counts too: process.cpuUsage is the whole process's.
  const cpuSecondsPerStep = (cpuSeconds() - cpu0) / steps;
  const wallSecondsPerStep = (performance.now() - wall0) / 1000 / steps;
  model.dispose();
  // The timed steps' target rows, counted outside the timing (a split step never forms the whole batch).
  let targetRows = 0;
  for (let s = WARMUP_STEPS; s < WARMUP_STEPS + steps; s++) {
    const batch = chordBatch(ex, batchIndices(s), bucketed !== undefined);
    targetRows += batch.targetRows.shape[0];
    disposeChordBatch(batch);
  }
  const stepsPerEpoch = Math.ceil(ex.count / batchSize);
  return {
    backbone: kind,
    method,
    batchSize,
    workers,
    lengthBuckets: buckets,
    meanTargetRows: targetRows / steps,
    stepsPerEpoch,
    stepsTimed: steps,
    cpuSecondsPerStep,
    wallSecondsPerStep,
    cpuMinutesPerEpoch: (stepsPerEpoch * cpuSecondsPerStep) / 60,
    wallMinutesPerEpoch: (stepsPerEpoch * wallSecondsPerStep) / 60,
  };
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      'k-core': { type: 'string' },
      'length-buckets': { type: 'string' },
      workers: { type: 'string' },
      steps: { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const steps = Number(values.steps ?? 6);
  if (!Number.isInteger(steps) || steps < 1) throw new UsageError(`--steps must be a positive integer, got '${values.steps}'`);
  const k = Number(values['k-core'] ?? 10);
  if (!Number.isInteger(k) || k < 0) throw new UsageError(`--k-core must be an integer >= 0, got '${values['k-core']}'`);
  const lengthBuckets = Number(values['length-buckets'] ?? 0);
  if (!Number.isInteger(lengthBuckets) || lengthBuckets < 0) {
    throw new UsageError(`--length-buckets must be an integer >= 0, got '${values['length-buckets']}'`);
  }
  const only = (values.only ?? '').split(',').filter(Boolean);
  const out = resolve(values.out ?? 'results/bench-train.json');
  await initBackend('wasm');
  const interactions = values.data ? loadDataset(values.data).interactions : generateShop(ML100K_SIZED_SHOP).interactions;
  const workers = Number(values.workers ?? 1);
  if (!Number.isInteger(workers) || workers < 1) throw new UsageError(`--workers must be a positive integer, got '${values.workers}'`);
  const ds = prepareDataset(interactions, { k }).split;
  const dataName = values.data ?? `generateShop(${JSON.stringify(ML100K_SIZED_SHOP)})`;
  const configs = BACKBONE_KINDS.flatMap((b) => METHODS.map((m) => [b, m] as const)).filter(([b, m]) => only.every((t) => t === b || t === m));
  if (configs.length === 0) throw new UsageError(`--only ${values.only} selects nothing (backbones ${BACKBONE_KINDS.join(', ')}; methods ${METHODS.join(', ')})`);
  const loadAverage = os.loadavg()[0]!;
  const bar = new SingleBar({ format: 'bench:train [{bar}] {value}/{total} {config}', hideCursor: true });
  bar.start(configs.length, 0, { config: '' });
  const rows: StepBench[] = [];
  for (const [b, m] of configs) {
    bar.update(rows.length, { config: `${b} ${m}` });
    rows.push(await benchSteps(ds, b, m, steps, lengthBuckets, workers));
  }
  bar.update(rows.length, { config: 'done' });
  bar.stop();
  const report = {
    format: 'chord-bench-train',
    version: 1,
    command: `npm run bench:train -- ${argv.join(' ')}`.trim(),
    data: { name: dataName, kCore: k, users: ds.numUsers, items: ds.numItems },
    backend: tf.getBackend(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', loadAverageAtStart: loadAverage, node: process.version },
    date: new Date().toISOString(),
    rows,
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  for (const r of rows) {
    console.log(
      `${r.backbone.padEnd(6)} ${r.method.padEnd(8)} ${r.cpuSecondsPerStep.toFixed(3)} s/step CPU (wall ${r.wallSecondsPerStep.toFixed(3)}, ` +
        `${r.meanTargetRows.toFixed(0)} target rows${r.workers > 1 ? `, ${r.workers} threads` : ''}), ` +
        `${r.stepsPerEpoch} steps/epoch -> ${r.cpuMinutesPerEpoch.toFixed(2)} CPU min/epoch`,
    );
  }
  console.log(`wrote ${out} (load average at start ${loadAverage.toFixed(2)} on ${os.cpus().length} CPUs)`);
}

const USAGE = `usage: npm run bench:train -- [--data <path>] [--k-core 10] [--length-buckets 0] [--workers 1] [--steps 6]
                             [--only caser,chord] [--out results/bench-train.json]
  CPU seconds per training step of every method on both backbones (tfjs wasm); --only keeps the configs
  matching every token; without --data, a generated shop of ML-100K's size. --k-core 0 for the
  already-filtered Amazon sets; --length-buckets and --workers as train's (compare wall s/step, on an
  otherwise idle machine).`;

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runCli({ program: 'bench:train', usage: USAGE, main });
}
