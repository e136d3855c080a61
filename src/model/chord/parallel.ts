/**
 * Data-parallel training steps over worker threads (`train --workers N`): tfjs-wasm runs one
 * thread in Node, so one run holds one core. With N workers a step's batch is dealt out
 * round-robin into N shards (so each shard has the batch's spread of window lengths); this thread
 * computes the gradient of shard 0 and N − 1 worker threads, each holding a replica of the model,
 * those of the others. The gradients are combined weighted by each shard's target rows, which is
 * the gradient of the whole batch's mean loss, and this thread's optimizer applies it; the
 * replicas receive the new weights with the next step. The optimizer state, checkpoints and
 * resume stay in this thread, so a run may resume with another worker count.
 *
 * Only for losses that are a mean over independent target rows: every method, each row's strategy
 * coming from its own window, unless z is standardized by the batch's statistics (--z-norm) or the
 * contrast term compares each row with the rolled batch (--contrast); then a shard's gradient is not
 * a share of the batch's. Dropout masks come from per-shard
 * seeds, so a run is reproducible for a given worker count but not equal to a one-thread run;
 * without dropout the step equals the one-thread step up to float rounding.
 *
 * Messages (this thread → worker; the worker answers each `step` with one `grads` or `error`):
 *   init     in workerData: the run's options, catalogue size and the sampled loss's log(K·q)
 *   examples the epoch's examples (typed arrays)
 *   step     the shard's example indices, trim, the current weights, a dropout seed, negatives
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../core/rng.ts';
import type { ForwardCtx } from '../backbone.ts';
import type { SampledNegatives } from '../item-loss.ts';
import { namedGradients, type GradientApplier, type Steppable } from '../train.ts';
import { chordBatch, disposeChordBatch, type ChordExamples } from './data.ts';
import { ChordTrainError } from './errors.ts';
import type { ChordBatch } from './model.ts';
import { RequestWorker, type WorkerErrorReply } from './worker-thread.ts';

/** A model the loop trains (loop.ts Trainable). */
type Trainable = Steppable<ChordBatch>;

/** What decides whether a run's loss couples a batch's rows (RunOptions' fields). */
export interface CouplingOptions {
  readonly zNorm?: boolean;
  readonly contrast?: number;
}

/** Why a run's steps cannot be split over threads (its loss couples a batch's rows), or undefined when they can. */
export function dataParallelRefusal(o: CouplingOptions): string | undefined {
  if (o.zNorm) return "--z-norm standardizes z by the batch's statistics";
  if ((o.contrast ?? 0) > 0) return '--contrast compares each row with the rolled batch';
  return undefined;
}

/** What a worker needs to build its replica (structured-cloneable). */
export interface ReplicaSpec {
  /** The run's options without its log function (RunOptions). */
  readonly options: Record<string, unknown>;
  readonly numItems: number;
  readonly numUsers: number;
  readonly backend: 'wasm' | 'cpu';
  /** The sampled loss's log(K·q) per item (NegativeSampler), when the loss samples negatives. */
  readonly logExpected?: Float32Array;
}

export interface StepRequest {
  readonly type: 'step';
  readonly idx: Int32Array;
  readonly trim: boolean;
  readonly weights: Record<string, Float32Array>;
  readonly seed: number;
  readonly negatives?: { readonly kind: 'sampled' | 'gbce'; readonly cols: Int32Array; readonly beta: number };
}

export interface StepReply {
  readonly type: 'grads';
  /** Target rows of the shard (0: nothing computed). */
  readonly rows: number;
  readonly loss: number;
  readonly grads: Record<string, Float32Array>;
}

export type WorkerMessage = StepReply | WorkerErrorReply;

/** Shard k of a batch: its examples k, k + N, k + 2N, … */
export function shardIndices(idx: ArrayLike<number>, shards: number, k: number): Int32Array {
  const out = new Int32Array(Math.max(0, Math.ceil((idx.length - k) / shards)));
  for (let i = k, j = 0; i < idx.length; i += shards, j++) out[j] = idx[i]!;
  return out;
}

/** One shard's gradient of its mean loss, on this thread's tensors. */
export function shardGradients(
  model: Trainable,
  batch: ChordBatch,
  ctx: ForwardCtx,
): { rows: number; loss: number; grads: Record<string, Float32Array> } {
  const rows = batch.targetRows.shape[0];
  if (rows === 0) return { rows, loss: 0, grads: {} };
  const { value, grads } = namedGradients(model, batch, ctx);
  const out: Record<string, Float32Array> = {};
  for (const [name, g] of Object.entries(grads)) out[name] = g.dataSync() as Float32Array;
  const loss = value.dataSync()[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  return { rows, loss, grads: out };
}

/** Σ_k rows_k·g_k / Σ_k rows_k per variable (shards with no rows left out). */
export function combineGradients(parts: readonly Pick<StepReply, 'rows' | 'grads'>[]): Record<string, Float32Array> {
  const live = parts.filter((p) => p.rows > 0);
  const total = live.reduce((a, p) => a + p.rows, 0);
  const out: Record<string, Float32Array> = {};
  for (const p of live) {
    const w = p.rows / total;
    for (const [name, g] of Object.entries(p.grads)) {
      const acc = (out[name] ??= new Float32Array(g.length));
      for (let i = 0; i < g.length; i++) acc[i]! += w * g[i]!;
    }
  }
  return out;
}

const WORKER_URL = new URL('./step-worker.ts', import.meta.url);

/** This thread plus `workers − 1` worker threads stepping one model. */
export class DataParallelSteps {
  private ex: ChordExamples | undefined;
  private constructor(private readonly workers: readonly RequestWorker<StepReply>[]) {}

  /** Starts `count − 1` worker threads (count ≥ 2) for a run of `spec`. */
  static start(spec: ReplicaSpec, count: number): DataParallelSteps {
    if (!Number.isInteger(count) || count < 2) throw new ChordTrainError('CHORD_BAD_OPTION', `data-parallel training needs 2 or more workers, got ${count}`);
    const refusal = dataParallelRefusal(spec.options as CouplingOptions);
    if (refusal) throw new ChordTrainError('CHORD_BAD_OPTION', `data-parallel steps need a loss that is a mean over independent rows: ${refusal}`);
    const workers = Array.from({ length: count - 1 }, () => new RequestWorker<StepReply>(WORKER_URL, spec, 'training worker'));
    return new DataParallelSteps(workers);
  }

  get count(): number {
    return this.workers.length + 1;
  }

  /** Hands every worker the epoch's examples. */
  setExamples(ex: ChordExamples): void {
    this.ex = ex;
    const { seq, users, targets, gru, count, inputLen, targetsPer, gruLen } = ex;
    for (const w of this.workers) w.post({ type: 'examples', ex: { seq, users, targets, gru, count, inputLen, targetsPer, gruLen } });
  }

  /** One optimisation step on examples `idx`; returns the batch's mean loss. */
  async step(model: Trainable, adam: GradientApplier, idx: ArrayLike<number>, trim: boolean, ctx: ForwardCtx, negatives?: SampledNegatives): Promise<number> {
    const ex = this.ex;
    if (!ex) throw new ChordTrainError('CHORD_BAD_OPTION', 'setExamples before the first step');
    const weights: Record<string, Float32Array> = {};
    for (const [name, v] of Object.entries(model.variables)) weights[name] = v.dataSync() as Float32Array;
    const negativesMessage = negatives ? { kind: negatives.kind, cols: negatives.cols.dataSync() as Int32Array, beta: negatives.beta } : undefined;
    const replies = this.workers.map((w, i) =>
      w.request({
        type: 'step',
        idx: shardIndices(idx, this.count, i + 1),
        trim,
        weights,
        seed: ctx.seed(),
        ...(negativesMessage ? { negatives: negativesMessage } : {}),
      } satisfies StepRequest),
    );
    const own = shardIndices(idx, this.count, 0);
    const parts: Array<Pick<StepReply, 'rows' | 'grads' | 'loss'>> = [];
    if (own.length > 0) {
      const batch = chordBatch(ex, own, trim);
      try {
        parts.push(shardGradients(model, negatives ? { ...batch, negatives } : batch, ctx));
      } finally {
        disposeChordBatch(batch);
      }
    }
    parts.push(...(await Promise.all(replies)));
    const rows = parts.reduce((a, p) => a + p.rows, 0);
    if (rows === 0) return 0;
    const combined = combineGradients(parts);
    const grads = Object.fromEntries(Object.entries(combined).map(([name, g]) => [name, tf.tensor(g, model.variables[name]!.shape)]));
    adam.apply(model.variables, grads);
    tf.dispose(Object.values(grads));
    return parts.reduce((a, p) => a + p.rows * p.loss, 0) / rows;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}

/** A worker's dropout seeds: a stream of its own from the seed this thread drew for the step. */
export function shardCtx(seed: number): ForwardCtx {
  const rng = new Rng(seed);
  return { training: true, seed: () => rng.seed() };
}
