/**
 * The strategy-contrast term: the loss is the own strategy's cross-entropy plus
 * contrast · relu(own − other + margin), where "other" scores the same batch with each example's
 * GRU window replaced by the next example's (the batch rolled by one); its gradient reaches the
 * hypernet through both strategies.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateFrozenWeights } from '../../src/core/frozen.ts';
import { initBackend } from '../../src/model/backend.ts';
import { chordBatch, chordExamples, disposeChordBatch } from '../../src/model/chord/data.ts';
import { CHORD_DEFAULTS, createChordModel } from '../../src/model/chord/model.ts';
import { createSasrec } from '../../src/model/sasrec.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const train = Array.from({ length: 12 }, (_, u) => Int32Array.from({ length: 7 + (u % 4) }, (_, i) => ((u * 5 + i * 3) % 14) + 1));
const backbone = createSasrec({ numItems: 14, numUsers: 12, maxLen: 8, hidden: 8, heads: 2, blocks: 1, ffn: 16, dropout: 0.2 });
const frozen = new Map(generateFrozenWeights({ seed: 4, layers: backbone.layers() }).map((l) => [l.spec.name, l.weights]));
const model = (contrast: number, contrastMargin: number) =>
  createChordModel(backbone, frozen, { ...CHORD_DEFAULTS, method: 'chord', zDim: 4, hyperHidden: 6, gruWindow: 4, seed: 2, contrast, contrastMargin });
const eval_ = { training: false, seed: () => 0 };

describe('strategy-contrast loss', () => {
  it('adds contrast · relu(own − other + margin) to the own loss, other = the batch with its GRU windows rolled by one', () => {
    const ex = chordExamples(backbone, train, 1, { gruLen: 4, zTargets: 3 });
    const batch = chordBatch(ex, [0, 3, 5, 8, 11]);
    const plain = model(0, 0);
    const own = plain.loss(batch, eval_).dataSync()[0]!;
    const rolled = tf.concat([batch.gru.slice([1, 0]), batch.gru.slice([0, 0], [1, -1])]) as tf.Tensor2D;
    const other = plain.loss({ ...batch, gru: rolled }, eval_).dataSync()[0]!;
    // Different users' strategies give different losses (else the test below proves nothing).
    expect(Math.abs(own - other)).toBeGreaterThan(1e-6);
    for (const margin of [0, 0.5, 5]) {
      const withTerm = model(2, margin).loss(batch, eval_).dataSync()[0]!;
      expect(withTerm).toBeCloseTo(own + 2 * Math.max(0, own - other + margin), 5);
    }
    disposeChordBatch(batch);
  });

  it('sends gradient from the contrast term to the hypernet', () => {
    const ex = chordExamples(backbone, train, 0, { gruLen: 4, zTargets: 3 });
    const batch = chordBatch(ex, [1, 2, 4, 7, 9]);
    const grads = (m: ReturnType<typeof model>) => {
      const vars = Object.entries(m.variables).filter(([n]) => n.startsWith('hyper.'));
      const { grads: g } = tf.variableGrads(() => m.loss(batch, eval_), vars.map(([, v]) => v));
      return Object.values(g).reduce((a, t) => a + tf.sum(tf.abs(t)).dataSync()[0]!, 0);
    };
    // With a large margin the hinge is active, so the term changes the hypernet's gradient.
    expect(Math.abs(grads(model(1, 10)) - grads(model(0, 0)))).toBeGreaterThan(1e-6);
    disposeChordBatch(batch);
  });
});
