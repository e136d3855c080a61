/**
 * What every training run shares with the unit tests: one optimisation step over named variables
 * (trainStep) and the validation metric that early stopping selects on. The epoch loop with its
 * checkpoints is src/model/chord/loop.ts (it trains Base as well as the quantized methods).
 */
import * as tf from '@tensorflow/tfjs';
import type { ForwardCtx } from './backbone.ts';
import type { EvalResult, Metrics } from './evaluate.ts';
import type { ParamMap } from './params.ts';

export type SelectionMetric = 'ndcg10' | 'hr10' | 'ndcg10_masked' | 'hr10_masked';

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

/**
 * The batch loss and its gradient for every trainable variable, keyed by the variable's name in
 * `model.variables`. The caller disposes `value` and the gradients.
 */
export function namedGradients<B>(model: Steppable<B>, batch: B, ctx: ForwardCtx): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const names = Object.keys(model.variables).sort();
  const varList = names.map((n) => model.variables[n]!);
  const byTfName = new Map(varList.map((v, i) => [v.name, names[i]!]));
  const { value, grads } = tf.variableGrads(() => model.loss(batch, ctx), varList);
  const named: Record<string, tf.Tensor> = {};
  for (const [tfName, g] of Object.entries(grads)) named[byTfName.get(tfName)!] = g;
  return { value, grads: named };
}

/** One optimisation step; returns the batch loss. */
export function trainStep<B>(model: Steppable<B>, adam: GradientApplier, batch: B, ctx: ForwardCtx): number {
  const { value, grads } = namedGradients(model, batch, ctx);
  adam.apply(model.variables, grads);
  const loss = value.dataSync()[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}
