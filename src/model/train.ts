/**
 * The training loop shared by Base and (later) CHORD: shuffled mini-batches of a backbone's
 * examples, Adam, validation by full ranking after every `evalEvery` epochs, early stopping on a
 * validation metric, and checkpoints that let a killed run resume where it left off.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TensorMap } from '../core/tensor-file.ts';
import type { SplitDataset } from '../data/types.ts';
import type { Backbone, ForwardCtx } from './backbone.ts';
import { batchTensors, disposeBatch } from './batches.ts';
import {
  assignVariables,
  CheckpointError,
  hasTensorSet,
  loadTensorSet,
  saveTensorSet,
  snapshot,
  writeFileAtomic,
} from './checkpoint.ts';
import { evaluateRanking, validationSet, type EvalResult, type Metrics } from './evaluate.ts';
import type { TrainableModel } from './model.ts';
import { Adam } from './optim.ts';
import type { ParamMap } from './params.ts';
import { Rng, shuffleInPlace } from './rng.ts';

export type SelectionMetric = 'ndcg10' | 'hr10' | 'ndcg10_masked' | 'hr10_masked';

export interface TrainOptions {
  readonly epochs: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly weightDecay: number;
  readonly seed: number;
  /** Stop after this many evaluations without improvement of `metric`. */
  readonly patience: number;
  readonly evalEvery: number;
  readonly metric: SelectionMetric;
  /** Directory for checkpoints; none written when undefined. */
  readonly checkpointDir?: string;
  /** Continue from checkpointDir's state.json if present. */
  readonly resume: boolean;
  /** Caps steps per epoch (benchmarks, smoke tests); undefined = whole epoch. */
  readonly maxStepsPerEpoch?: number;
  /** Settings recorded in state.json; a resumed run must have the same ones. */
  readonly settings?: Record<string, unknown>;
  readonly log?: (line: string) => void;
}

export const TRAIN_DEFAULTS = {
  batchSize: 128,
  lr: 1e-3,
  weightDecay: 0,
  patience: 10,
  evalEvery: 1,
  metric: 'ndcg10' as SelectionMetric,
  resume: false,
};

export interface EpochLog {
  readonly epoch: number;
  readonly loss: number;
  readonly trainSeconds: number;
  readonly steps: number;
  readonly valid?: EvalResult;
}

export interface TrainResult {
  readonly bestEpoch: number;
  readonly bestValid: EvalResult | undefined;
  readonly epochsRun: number;
  readonly stoppedEarly: boolean;
  readonly meanEpochSeconds: number;
  readonly meanStepSeconds: number;
  readonly history: EpochLog[];
}

/** A training loop's resumable state (state.json); `E` is the loop's per-epoch log entry. */
export interface RunState<E = EpochLog> {
  version: 1;
  epoch: number;
  adamStep: number;
  rngState: number;
  bestEpoch: number;
  bestScore: number;
  bestValid: EvalResult | undefined;
  badEvals: number;
  stoppedEarly: boolean;
  history: E[];
  settings: Record<string, unknown>;
}

export function selectionScore(r: EvalResult, metric: SelectionMetric): number {
  const pick = (m: Metrics, k: 'ndcg10' | 'hr10') => m[k];
  switch (metric) {
    case 'ndcg10':
      return pick(r.unmasked, 'ndcg10');
    case 'hr10':
      return pick(r.unmasked, 'hr10');
    case 'ndcg10_masked':
      return pick(r.masked, 'ndcg10');
    case 'hr10_masked':
      return pick(r.masked, 'hr10');
  }
}

/** What one optimisation step needs: named variables and a loss over a batch. */
export interface Steppable<B> {
  readonly variables: ParamMap;
  loss(batch: B, ctx: ForwardCtx): tf.Scalar;
}

/** An optimizer that applies gradients keyed by variable name (Adam, or CHORD's grouped Adam). */
export interface GradientApplier {
  apply(vars: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>): void;
}

/** One optimisation step; returns the batch loss. Shared by the Base and CHORD training loops. */
export function trainStep<B>(model: Steppable<B>, adam: GradientApplier, batch: B, ctx: ForwardCtx): number {
  const names = Object.keys(model.variables).sort();
  const varList = names.map((n) => model.variables[n]!);
  const byTfName = new Map(varList.map((v, i) => [v.name, names[i]!]));
  const { value, grads } = tf.variableGrads(() => model.loss(batch, ctx), varList);
  const named: Record<string, tf.Tensor> = {};
  for (const [tfName, g] of Object.entries(grads)) named[byTfName.get(tfName)!] = g;
  adam.apply(model.variables, named);
  const loss = value.dataSync()[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

/** Reads a training loop's state.json (version 1), or undefined when the run has none yet. */
export function readRunState<S extends { version: number }>(dir: string): S | undefined {
  const path = join(dir, 'state.json');
  if (!existsSync(path)) return undefined;
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as S;
    if (s.version !== 1) throw new Error(`state version ${String(s.version)}`);
    return s;
  } catch (cause) {
    throw new CheckpointError(`cannot read ${path}`, { cause });
  }
}

export async function trainModel(
  model: TrainableModel,
  backbone: Backbone,
  data: SplitDataset,
  options: Partial<TrainOptions> & Pick<TrainOptions, 'epochs' | 'seed'>,
): Promise<TrainResult> {
  const opts: TrainOptions = { ...TRAIN_DEFAULTS, ...options };
  const log = opts.log ?? (() => {});
  const rng = new Rng(opts.seed);
  const adam = new Adam({ lr: opts.lr, weightDecay: opts.weightDecay });
  const settings = opts.settings ?? {};
  let state: RunState = {
    version: 1,
    epoch: 0,
    adamStep: 0,
    rngState: rng.state,
    bestEpoch: 0,
    bestScore: -Infinity,
    bestValid: undefined,
    badEvals: 0,
    stoppedEarly: false,
    history: [],
    settings,
  };
  let best: TensorMap | undefined;
  const dir = opts.checkpointDir;
  if (dir && opts.resume) {
    const saved = readRunState<RunState>(dir);
    if (saved) {
      if (JSON.stringify(saved.settings) !== JSON.stringify(settings)) {
        throw new CheckpointError(`settings differ from the checkpoint in ${dir}; refusing to resume`);
      }
      state = saved;
      assignVariables(model.variables, loadTensorSet(dir, 'last'));
      adam.loadState(saved.adamStep, loadTensorSet(dir, 'optimizer'));
      rng.state = saved.rngState;
      if (hasTensorSet(dir, 'best')) best = loadTensorSet(dir, 'best');
      log(`resumed from ${dir} after epoch ${saved.epoch}`);
    }
  }
  const ctx: ForwardCtx = { training: true, seed: () => rng.seed() };
  const evalSet = validationSet(data);
  const score = (seq: tf.Tensor2D, users: tf.Tensor1D) => model.scores(seq, users);

  while (state.epoch < opts.epochs && !state.stoppedEarly) {
    const epoch = state.epoch + 1;
    const t0 = performance.now();
    const ex = backbone.examples(data.train, rng.int(backbone.inputLen));
    const order = Array.from({ length: ex.count }, (_, i) => i);
    shuffleInPlace(order, rng);
    let steps = Math.ceil(ex.count / opts.batchSize);
    if (opts.maxStepsPerEpoch !== undefined) steps = Math.min(steps, opts.maxStepsPerEpoch);
    let lossSum = 0;
    for (let s = 0; s < steps; s++) {
      const batch = batchTensors(ex, order.slice(s * opts.batchSize, (s + 1) * opts.batchSize));
      lossSum += trainStep(model, adam, batch, ctx);
      disposeBatch(batch);
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    let entry: EpochLog = { epoch, loss: lossSum / steps, trainSeconds, steps };
    let line = `epoch ${epoch} loss ${entry.loss.toFixed(4)} ${trainSeconds.toFixed(1)}s (${steps} steps)`;
    if (epoch % opts.evalEvery === 0 || epoch === opts.epochs) {
      const valid = evaluateRanking(score, backbone.numItems, backbone.inputLen, evalSet);
      entry = { ...entry, valid };
      const sc = selectionScore(valid, opts.metric);
      line += ` | valid NDCG@10 ${valid.unmasked.ndcg10.toFixed(4)} HR@10 ${valid.unmasked.hr10.toFixed(4)}`;
      line += ` masked ${valid.masked.ndcg10.toFixed(4)} / ${valid.masked.hr10.toFixed(4)}`;
      if (sc > state.bestScore) {
        state.bestScore = sc;
        state.bestEpoch = epoch;
        state.bestValid = valid;
        state.badEvals = 0;
        best = snapshot(model.variables);
        if (dir) saveTensorSet(dir, 'best', best);
        line += ' *';
      } else if (++state.badEvals >= opts.patience) {
        state.stoppedEarly = true;
        line += ' (early stop)';
      }
    }
    log(line);
    state.history.push(entry);
    state.epoch = epoch;
    state.adamStep = adam.step;
    state.rngState = rng.state;
    if (dir) {
      saveTensorSet(dir, 'last', model.variables);
      saveTensorSet(dir, 'optimizer', adam.stateTensors());
      writeFileAtomic(join(dir, 'state.json'), JSON.stringify(state, null, 1));
    }
  }
  adam.dispose();
  // Leave the model at its best validation epoch: that is the one to test and export.
  if (best) assignVariables(model.variables, best);
  const epochs = state.history;
  const totalSeconds = epochs.reduce((a, e) => a + e.trainSeconds, 0);
  const totalSteps = epochs.reduce((a, e) => a + e.steps, 0);
  return {
    bestEpoch: state.bestEpoch,
    bestValid: state.bestValid,
    epochsRun: state.epoch,
    stoppedEarly: state.stoppedEarly,
    meanEpochSeconds: epochs.length ? totalSeconds / epochs.length : 0,
    meanStepSeconds: totalSteps ? totalSeconds / totalSteps : 0,
    history: state.history,
  };
}
