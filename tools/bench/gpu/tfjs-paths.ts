/**
 * The reference paths the benchmark compares CHORD against, on whichever tfjs backend is active
 * when they are created (see tfjs-backends.ts):
 * - TfjsReranker: src/model's SASRec forward with the fp32 frozen weights, candidate scores and
 *   top-k, read back with data(): what a shop would run without CHORD's packed kernels.
 * - TfjsFinetune: one on-device training step (forward, backward, Adam on the trained parameters)
 *   for one user's sequence: the per-user adaptation CHORD replaces with one quantization pass.
 */
import * as tf from '@tensorflow/tfjs';
import type { FrozenLayer } from '../../../src/core/frozen.ts';
import { type BatchTensors, INFERENCE } from '../../../src/model/backbone.ts';
import { batchTensors, disposeBatch, writeLastWindow } from '../../../src/model/batches.ts';
import { mm } from '../../../src/model/nn.ts';
import { Adam } from '../../../src/model/optim.ts';
import { type ParamMap, variableFrom, type WeightMap } from '../../../src/model/params.ts';
import { createSasrec, SASREC_DEFAULTS, type SasrecConfig, sasrecExamples, sasrecForward } from '../../../src/model/sasrec.ts';
import type { BenchModel } from './model.ts';
import { type Summary, summarize, timed } from './stats.ts';
import { type TfjsBackend, useBackend } from './tfjs-backends.ts';

export function sasrecConfigOf(model: BenchModel): SasrecConfig {
  return { ...SASREC_DEFAULTS, ...model.config.dims, numItems: model.numItems, numUsers: 1 };
}

/** Trained tensors as tfjs variables on the active backend. */
function paramsOf(model: BenchModel): ParamMap {
  const params: ParamMap = {};
  for (const [name, t] of model.tensors) params[name] = variableFrom(name, t.shape, t.data);
  return params;
}

/** fp32 frozen weights as (non-trainable) tensors on the active backend, by layer name. */
function weightsOf(frozen: readonly FrozenLayer[]): WeightMap {
  const weights: WeightMap = {};
  for (const { spec, weights: w } of frozen) weights[spec.name] = tf.tensor(w, [...spec.shape], 'float32');
  return weights;
}

export interface TopK {
  readonly ids: number[];
  readonly scores: Float32Array;
}

export class TfjsReranker {
  readonly backend: string;
  readonly #config: SasrecConfig;
  readonly #params: ParamMap;
  readonly #weights: WeightMap;
  readonly #window: Int32Array;

  constructor(model: BenchModel, frozen: readonly FrozenLayer[]) {
    this.backend = tf.getBackend();
    this.#config = sasrecConfigOf(model);
    this.#params = paramsOf(model);
    this.#weights = weightsOf(frozen);
    this.#window = new Int32Array(this.#config.maxLen);
  }

  /** The top k of `candidates` after `history`, read back to the CPU. */
  rerank(history: readonly number[], candidates: readonly number[], k: number): Promise<TopK> {
    return this.#topK(
      history,
      k,
      () => tf.gather(this.#params['item_emb']!, tf.tensor1d(Int32Array.from(candidates), 'int32')) as tf.Tensor2D,
      (j) => candidates[j]!,
    );
  }

  /** The top k of the whole catalogue (items 1..numItems): one matmul with the item table, no gather. */
  recommend(history: readonly number[], k: number): Promise<TopK> {
    const c = this.#config;
    return this.#topK(history, k, () => this.#params['item_emb']!.slice([1, 0], [c.numItems, c.hidden]) as tf.Tensor2D, (j) => j + 1);
  }

  /** The top k rows of `table()` (built inside the tidy) scored against the last state after `history`; row j is item idOf(j). */
  async #topK(history: readonly number[], k: number, table: () => tf.Tensor2D, idOf: (row: number) => number): Promise<TopK> {
    const c = this.#config;
    writeLastWindow(history, c.maxLen, this.#window, 0);
    const [values, indices] = tf.tidy(() => {
      const seq = tf.tensor2d(this.#window, [1, c.maxLen], 'int32');
      const h = sasrecForward(c, this.#params, this.#weights, seq, INFERENCE);
      const rep = h.slice([0, c.maxLen - 1, 0], [1, 1, c.hidden]).reshape([1, c.hidden]);
      const rows = table();
      const scores = mm(rep, rows, false, true).reshape([rows.shape[0]]);
      const top = tf.topk(scores, k);
      return [top.values, top.indices];
    });
    try {
      const [v, i] = await Promise.all([values.data(), indices.data()]);
      return { ids: Array.from(i, idOf), scores: v as Float32Array };
    } finally {
      tf.dispose([values, indices]);
    }
  }

  dispose(): void {
    tf.dispose([...Object.values(this.#params), ...Object.values(this.#weights)]);
  }
}

export class TfjsFinetune {
  readonly backend: string;
  readonly #params: ParamMap;
  readonly #weights: WeightMap;
  readonly #names: string[];
  readonly #adam = new Adam({ lr: 1e-3 });
  readonly #batch: BatchTensors;
  readonly #loss: ReturnType<typeof createSasrec>['loss'];
  #seed = 1;

  /** `sequence`: one user's items, oldest first (maxLen + 1 of them give maxLen targets). */
  constructor(model: BenchModel, frozen: readonly FrozenLayer[], sequence: readonly number[]) {
    this.backend = tf.getBackend();
    const backbone = createSasrec(sasrecConfigOf(model));
    this.#loss = backbone.loss;
    this.#params = paramsOf(model);
    this.#weights = weightsOf(frozen);
    this.#names = Object.keys(this.#params).sort();
    const examples = sasrecExamples(backbone.sasrec, [Int32Array.from(sequence)], 0);
    this.#batch = batchTensors(examples, [0]);
  }

  /** One forward + backward + Adam update on every trained parameter; resolves with the loss. */
  async step(): Promise<number> {
    const vars = this.#names.map((n) => this.#params[n]!);
    const byTfName = new Map(vars.map((v, i) => [v.name, this.#names[i]!]));
    const ctx = { training: true, seed: () => this.#seed++ };
    const { value, grads } = tf.variableGrads(() => this.#loss(this.#params, this.#weights, this.#batch, ctx), vars);
    const named: Record<string, tf.Tensor> = {};
    for (const [tfName, g] of Object.entries(grads)) named[byTfName.get(tfName)!] = g;
    this.#adam.apply(this.#params, named);
    try {
      // Reading the loss waits for the step; one parameter read makes sure the update ran too.
      const [loss] = await Promise.all([value.data(), this.#params['final_ln.beta']!.data()]);
      return loss[0]!;
    } finally {
      tf.dispose([value, ...Object.values(grads)]);
    }
  }

  dispose(): void {
    this.#adam.dispose();
    disposeBatch(this.#batch);
    tf.dispose([...Object.values(this.#params), ...Object.values(this.#weights)]);
  }
}

/** Fine-tune step times on each tfjs backend in turn: `warmup` untimed steps (the first gives lossFirst), then `reps` timed. */
export async function timeFinetuneSteps(
  model: BenchModel,
  frozen: readonly FrozenLayer[],
  sequence: readonly number[],
  backends: readonly TfjsBackend[],
  opts: { warmup: number; reps: number; log: (line: string) => void; label: string },
): Promise<Partial<Record<TfjsBackend, Summary & { lossFirst: number; lossLast: number }>>> {
  const out: Partial<Record<TfjsBackend, Summary & { lossFirst: number; lossLast: number }>> = {};
  for (const backend of backends) {
    opts.log(`${opts.label}: tfjs ${backend} x ${opts.reps}`);
    await useBackend(backend);
    const ft = new TfjsFinetune(model, frozen, sequence);
    try {
      const lossFirst = await ft.step();
      for (let i = 1; i < opts.warmup; i++) await ft.step();
      const steps: number[] = [];
      let lossLast = lossFirst;
      for (let i = 0; i < opts.reps; i++) {
        const r = await timed(() => ft.step());
        steps.push(r.ms);
        lossLast = r.value;
      }
      out[backend] = { ...summarize(steps), lossFirst, lossLast };
    } finally {
      ft.dispose();
    }
  }
  return out;
}
