/**
 * The training loop of the `train` CLI: shuffled mini-batches, Adam (src/model/optim.ts), a
 * validation after every `evalEvery` epochs, early stopping on validation NDCG@10 (unmasked by
 * default; test data is never looked at), a progress bar, and checkpoints after every epoch so
 * a killed run resumes where it stopped (files described in src/model/checkpoint.ts). It trains
 * every method, Base included.
 */
import * as tf from '@tensorflow/tfjs';
import { SingleBar } from 'cli-progress';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TensorMap } from '../../core/tensor-file.ts';
import type { Examples, ForwardCtx } from '../backbone.ts';
import { windowLength } from '../batches.ts';
import type { NegativeSampler } from '../item-loss.ts';
import {
  assignVariables,
  CheckpointError,
  hasTensorSet,
  loadTensorSet,
  saveTensorSet,
  snapshot,
  writeFileAtomic,
} from '../checkpoint.ts';
import type { EvalResult } from '../evaluate.ts';
import { Adam } from '../optim.ts';
import { Rng } from '../../core/rng.ts';
import { selectionScore, trainStep, type GradientApplier, type SelectionMetric, type Steppable } from '../train.ts';
import { chordBatch, disposeChordBatch, type ChordExamples } from './data.ts';
import type { ChordBatch } from './model.ts';
import type { DataParallelSteps } from './parallel.ts';

/** A model the loop trains: Base or a quantized method, on batches with GRU windows. */
export type Trainable = Steppable<ChordBatch>;

export interface LoopOptions {
  readonly epochs: number;
  readonly batchSize: number;
  readonly lr: number;
  /** Learning rate of the hypernet and GRU variables (`hyper.*`, `gru.*`); default `lr`. */
  readonly hyperLr?: number;
  readonly weightDecay: number;
  readonly seed: number;
  readonly patience: number;
  readonly evalEvery: number;
  readonly metric: SelectionMetric;
  readonly checkpointDir?: string;
  readonly resume: boolean;
  readonly maxStepsPerEpoch?: number;
  /**
   * Batches of similar window length (0 or none = plain shuffled batches): the shuffled examples
   * are cut into chunks of this many batches, each chunk is sorted by window length and cut into
   * batches, the batches are shuffled, and each is cut to its longest window. For a backbone that
   * acceptsShortWindows: where most histories are short, a full window is mostly padding.
   */
  readonly lengthBuckets?: number;
  /** Draws each step's shared negatives for a sampled loss; none = full softmax. */
  readonly negatives?: NegativeSampler;
  /** Steps split over worker threads (parallel.ts); none = this thread alone. */
  readonly parallel?: DataParallelSteps;
  /**
   * The paper's protocol, never a selection: after each validation, also rank the test users and
   * record it (EpochLog.watchedTest), so a report can set the best test epoch beside the
   * validation-picked one. Changes nothing the run trains or selects.
   */
  readonly watchTest?: () => EvalResult;
  /** Recorded in state.json; resuming requires equal settings. */
  readonly settings: Record<string, unknown>;
  /** Show a cli-progress bar (a TTY); otherwise one log line per epoch. */
  readonly progress: boolean;
  readonly log: (line: string) => void;
}

export interface EpochLog {
  readonly epoch: number;
  readonly loss: number;
  readonly steps: number;
  readonly trainSeconds: number;
  /** CPU seconds (user + system) of the epoch's steps: step cost independent of machine load. */
  readonly trainCpuSeconds: number;
  readonly evalSeconds?: number;
  readonly valid?: EvalResult;
  /** Test ranking after this epoch (LoopOptions.watchTest): the paper's protocol, not used for selection. */
  readonly watchedTest?: EvalResult;
}

export interface LoopResult {
  readonly bestEpoch: number;
  readonly bestValid: EvalResult | undefined;
  readonly epochsRun: number;
  readonly stoppedEarly: boolean;
  readonly meanStepSeconds: number;
  readonly meanStepCpuSeconds: number;
  readonly history: readonly EpochLog[];
}

/** The loop's resumable state (state.json). */
export interface RunState {
  version: 1;
  epoch: number;
  adamStep: number;
  rngState: number;
  bestEpoch: number;
  bestScore: number;
  bestValid: EvalResult | undefined;
  badEvals: number;
  stoppedEarly: boolean;
  history: EpochLog[];
  settings: Record<string, unknown>;
}

/** Reads a run's state.json (version 1), or undefined when the run has none yet. */
function readRunState(dir: string): RunState | undefined {
  const path = join(dir, 'state.json');
  if (!existsSync(path)) return undefined;
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as RunState;
    if (s.version !== 1) throw new Error(`state version ${String(s.version)}`);
    return s;
  } catch (cause) {
    throw new CheckpointError(`cannot read ${path}`, { cause });
  }
}

/** What a step needs from the optimizer (Adam, or GroupedAdam below). */
export type StepOptimizer = GradientApplier;

const isHyper = (name: string) => name.startsWith('hyper.') || name.startsWith('gru.');

/**
 * Adam with its own learning rate for the hypernet + GRU: they only reach the loss through
 * which channels cross a Γ/Λ boundary, and with the backbone's rate they reorder channels far
 * more slowly than the backbone converges. One step counter; state is one named tensor set.
 */
export class GroupedAdam implements StepOptimizer {
  private readonly main: Adam;
  private readonly hyper: Adam;
  constructor(lr: number, hyperLr: number, weightDecay: number) {
    this.main = new Adam({ lr, weightDecay });
    this.hyper = new Adam({ lr: hyperLr, weightDecay });
  }
  get step(): number {
    return this.main.step;
  }
  apply(vars: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>): void {
    const split = (hyper: boolean) => Object.fromEntries(Object.entries(grads).filter(([n]) => isHyper(n) === hyper));
    this.main.apply(vars, split(false));
    this.hyper.apply(vars, split(true));
  }
  stateTensors(): Record<string, tf.Tensor> {
    return { ...this.main.stateTensors(), ...this.hyper.stateTensors() };
  }
  loadState(step: number, tensors: TensorMap): void {
    const part = (hyper: boolean) => new Map([...tensors].filter(([k]) => isHyper(k.slice(k.indexOf('/') + 1)) === hyper));
    this.main.loadState(step, part(false));
    this.hyper.loadState(step, part(true));
  }
  dispose(): void {
    this.main.dispose();
    this.hyper.dispose();
  }
}

/**
 * LoopOptions.lengthBuckets' batches: `order` (shuffled) cut into chunks of `chunkBatches`
 * batches, each chunk sorted by window length (stable) and cut into batches, then the batches
 * shuffled.
 */
export function lengthBatches(ex: Examples, order: readonly number[], batchSize: number, chunkBatches: number, rng: Rng): number[][] {
  const batches: number[][] = [];
  const chunk = batchSize * chunkBatches;
  for (let start = 0; start < order.length; start += chunk) {
    const part = order.slice(start, start + chunk);
    const length = new Map(part.map((i) => [i, windowLength(ex, i)]));
    part.sort((a, b) => length.get(a)! - length.get(b)!);
    for (let b = 0; b < part.length; b += batchSize) batches.push(part.slice(b, b + batchSize));
  }
  rng.shuffle(batches);
  return batches;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function trainLoop(
  model: Trainable,
  examples: (shift: number) => ChordExamples,
  inputLen: number,
  validate: () => EvalResult,
  opts: LoopOptions,
): Promise<LoopResult> {
  const rng = new Rng(opts.seed);
  const adam = new GroupedAdam(opts.lr, opts.hyperLr ?? opts.lr, opts.weightDecay);
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
    settings: opts.settings,
  };
  let best: TensorMap | undefined;
  const dir = opts.checkpointDir;
  if (dir && opts.resume) {
    const saved = readRunState(dir);
    if (saved) {
      if (JSON.stringify(saved.settings) !== JSON.stringify(opts.settings)) {
        throw new CheckpointError(`settings differ from the checkpoint in ${dir}; refusing to resume`);
      }
      state = saved;
      assignVariables(model.variables, loadTensorSet(dir, 'last'));
      adam.loadState(saved.adamStep, loadTensorSet(dir, 'optimizer'));
      rng.state = saved.rngState;
      if (hasTensorSet(dir, 'best')) best = loadTensorSet(dir, 'best');
      opts.log(`resumed from ${dir} after epoch ${saved.epoch}`);
    }
  }
  const ctx: ForwardCtx = { training: true, seed: () => rng.seed() };
  const fmt = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(4));
  const lastValid = (): EvalResult | undefined => {
    for (let i = state.history.length - 1; i >= 0; i--) if (state.history[i]!.valid) return state.history[i]!.valid;
    return undefined;
  };

  let bar: SingleBar | undefined;
  let stepsPerEpoch = 0;
  let stepSeconds = 0;
  let stepsTimed = 0;
  while (state.epoch < opts.epochs && !state.stoppedEarly) {
    const epoch = state.epoch + 1;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const ex = examples(rng.int(inputLen));
    const order = Array.from({ length: ex.count }, (_, i) => i);
    rng.shuffle(order);
    opts.parallel?.setExamples(ex);
    const buckets = opts.lengthBuckets ?? 0;
    const batches = buckets > 0 ? lengthBatches(ex, order, opts.batchSize, buckets, rng) : undefined;
    let steps = Math.ceil(ex.count / opts.batchSize);
    if (opts.maxStepsPerEpoch !== undefined) steps = Math.min(steps, opts.maxStepsPerEpoch);
    if (opts.progress && !bar) {
      stepsPerEpoch = steps;
      bar = new SingleBar({
        format:
          '{bar} {percentage}% | epoch {epoch}/{epochs} | loss {loss} | val NDCG@10 {ndcg} (best {best} @{bestEpoch}) | {stepTime}s/step | ETA {eta_formatted}',
        etaBuffer: 50,
        hideCursor: true,
      });
      bar.start(opts.epochs * stepsPerEpoch, state.epoch * stepsPerEpoch, {
        epoch,
        epochs: opts.epochs,
        loss: '-',
        ndcg: fmt(lastValid()?.unmasked.ndcg10),
        best: fmt(state.bestValid?.unmasked.ndcg10),
        bestEpoch: state.bestEpoch,
        stepTime: '-',
      });
    }
    let lossSum = 0;
    for (let s = 0; s < steps; s++) {
      const ts = performance.now();
      const idx = batches ? batches[s]! : order.slice(s * opts.batchSize, (s + 1) * opts.batchSize);
      const negatives = opts.negatives?.sample(rng);
      if (opts.parallel) {
        lossSum += await opts.parallel.step(model, adam, idx, batches !== undefined, ctx, negatives);
      } else {
        const batch = chordBatch(ex, idx, batches !== undefined);
        lossSum += trainStep(model, adam, negatives ? { ...batch, negatives } : batch, ctx);
        disposeChordBatch(batch);
      }
      negatives?.cols.dispose();
      stepSeconds += (performance.now() - ts) / 1000;
      stepsTimed++;
      bar?.update((epoch - 1) * stepsPerEpoch + Math.min(s + 1, stepsPerEpoch), {
        epoch,
        loss: (lossSum / (s + 1)).toFixed(4),
        stepTime: (stepSeconds / stepsTimed).toFixed(2),
      });
      await yieldToEventLoop();
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const trainCpuSeconds = (cpu.user + cpu.system) / 1e6;
    let entry: EpochLog = { epoch, loss: lossSum / steps, steps, trainSeconds, trainCpuSeconds };
    // CPU use of the process while it trained (one core = 100%): how much of the machine a run holds.
    const cpuShare = ((100 * trainCpuSeconds) / trainSeconds).toFixed(0);
    let line = `epoch ${epoch} loss ${entry.loss.toFixed(4)} ${trainSeconds.toFixed(1)}s, cpu ${(trainCpuSeconds / steps).toFixed(2)}s/step (${steps} steps, ${cpuShare}% of a core)`;
    if (epoch % opts.evalEvery === 0 || epoch === opts.epochs) {
      const te = performance.now();
      const valid = validate();
      const evalSeconds = (performance.now() - te) / 1000;
      entry = { ...entry, valid, evalSeconds };
      const sc = selectionScore(valid, opts.metric);
      line += ` | valid NDCG@10 ${fmt(valid.unmasked.ndcg10)} HR@10 ${fmt(valid.unmasked.hr10)}`;
      line += ` masked ${fmt(valid.masked.ndcg10)} / ${fmt(valid.masked.hr10)} (${evalSeconds.toFixed(1)}s)`;
      if (opts.watchTest) {
        const watchedTest = opts.watchTest();
        entry = { ...entry, watchedTest };
        line += ` | test (watched, not for selection) ${fmt(watchedTest.unmasked.ndcg10)} / ${fmt(watchedTest.unmasked.hr10)}`;
      }
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
    state.history.push(entry);
    state.epoch = epoch;
    state.adamStep = adam.step;
    state.rngState = rng.state;
    if (dir) {
      saveTensorSet(dir, 'last', model.variables);
      saveTensorSet(dir, 'optimizer', adam.stateTensors());
      writeFileAtomic(join(dir, 'state.json'), JSON.stringify(state, null, 1));
    }
    if (bar) {
      process.stdout.write(`\r\x1b[K${line}\n`);
      bar.update(epoch * stepsPerEpoch, {
        ndcg: fmt(entry.valid?.unmasked.ndcg10 ?? lastValid()?.unmasked.ndcg10),
        best: fmt(state.bestValid?.unmasked.ndcg10),
        bestEpoch: state.bestEpoch,
      });
    }
    opts.log(line);
  }
  bar?.stop();
  adam.dispose();
  if (best) assignVariables(model.variables, best);
  const totalSteps = state.history.reduce((a, e) => a + e.steps, 0);
  const totalSeconds = state.history.reduce((a, e) => a + e.trainSeconds, 0);
  // Epochs logged before CPU time was recorded (old checkpoints) are left out of its mean.
  const timed = state.history.filter((e) => e.trainCpuSeconds !== undefined);
  const totalCpu = timed.reduce((a, e) => a + e.trainCpuSeconds, 0);
  const cpuSteps = timed.reduce((a, e) => a + e.steps, 0);
  return {
    bestEpoch: state.bestEpoch,
    bestValid: state.bestValid,
    epochsRun: state.epoch,
    stoppedEarly: state.stoppedEarly,
    meanStepSeconds: totalSteps ? totalSeconds / totalSteps : 0,
    meanStepCpuSeconds: cpuSteps ? totalCpu / cpuSteps : 0,
    history: state.history,
  };
}
