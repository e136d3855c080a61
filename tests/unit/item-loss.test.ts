import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { initBackend } from '../../src/model/backend.ts';
import { fullSoftmaxLoss, FULL_SOFTMAX_MAX_LOGITS, gbceBeta, itemLoss, NegativeSampler, type ItemLossSpec, type SampledNegatives } from '../../src/model/item-loss.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const rows = [
  [0.5, -1, 2],
  [1, 0.25, -0.5],
];
const table = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
  [1, 1, 1],
  [-1, 0.5, 0],
];
const bias = [0.1, -0.2, 0, 0.3, 0.05];
const targets = [2, 0];
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const logit = (m: number, j: number, withBias: boolean) => dot(rows[m]!, table[j]!) + (withBias ? bias[j]! : 0);
const lse = (xs: number[]) => {
  const mx = Math.max(...xs);
  return mx + Math.log(xs.reduce((s, x) => s + Math.exp(x - mx), 0));
};
const softplus = (x: number) => Math.log1p(Math.exp(x));

function loss(withBias: boolean, negatives?: SampledNegatives): number {
  return tf.tidy(() =>
    itemLoss(tf.tensor2d(rows), tf.tensor2d(table), withBias ? tf.tensor1d(bias) : undefined, tf.tensor1d(targets, 'int32'), negatives).dataSync()[0]!,
  );
}

function negatives(kind: 'sampled' | 'gbce', cols: number[], logExpected: number[], beta = 1): SampledNegatives {
  return { kind, cols: tf.tensor1d(cols, 'int32'), logExpected: tf.tensor1d(logExpected), beta };
}

/** The reference: tfjs's own softmax cross-entropy of logits [M, N] against target columns, averaged over rows. */
function softmaxCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(tf.oneHot(targets, logits.shape[1]), logits) as tf.Scalar;
}

describe('itemLoss', () => {
  it('is the full-softmax cross-entropy without negatives, with and without an item bias', () => {
    for (const withBias of [false, true]) {
      const expected = tf.tidy(() => {
        const logits = tf.add(tf.matMul(tf.tensor2d(rows), tf.tensor2d(table), false, true), withBias ? tf.tensor1d(bias) : 0) as tf.Tensor2D;
        return softmaxCrossEntropy(logits, tf.tensor1d(targets, 'int32')).dataSync()[0]!;
      });
      expect(loss(withBias)).toBeCloseTo(expected, 5);
    }
  });

  it('sampled: softmax over the target and the negatives, each logit minus log(K q), a negative equal to the target removed', () => {
    const logQ = [-1, -2, -0.5, -3, -1.5];
    const cols = [1, 2, 4]; // column 2 is row 0's target: removed from row 0 only
    const expected =
      targets
        .map((t, m) => {
          const pos = logit(m, t, true) - logQ[t]!;
          const negs = cols.filter((j) => j !== t).map((j) => logit(m, j, true) - logQ[j]!);
          return lse([pos, ...negs]) - pos;
        })
        .reduce((a, b) => a + b) / targets.length;
    const n = negatives('sampled', cols, logQ);
    expect(loss(true, n)).toBeCloseTo(expected, 5);
    n.cols.dispose();
  });

  it('gbce: β-weighted softplus(−pos) plus softplus of every other negative, over 1 + K terms per row', () => {
    const beta = 0.3;
    const cols = [0, 3, 3];
    const expected =
      targets
        .map((t, m) => beta * softplus(-logit(m, t, false)) + cols.filter((j) => j !== t).reduce((s, j) => s + softplus(logit(m, j, false)), 0))
        .reduce((a, b) => a + b) /
      targets.length /
      (1 + cols.length);
    const n = negatives('gbce', cols, [0, 0, 0, 0, 0], beta);
    expect(loss(false, n)).toBeCloseTo(expected, 5);
    n.cols.dispose();
  });

  it('gives the item table a gradient through the sampled rows only', () => {
    const n = negatives('sampled', [1], [0, 0, 0, 0, 0]);
    const g = tf.tidy(() => {
      const grad = tf.grad((tab: tf.Tensor) => itemLoss(tf.tensor2d(rows), tab as tf.Tensor2D, undefined, tf.tensor1d(targets, 'int32'), n));
      return grad(tf.tensor2d(table)).arraySync() as number[][];
    });
    const norms = g.map((r) => Math.hypot(...r));
    // Targets 2 and 0 and negative 1 get gradient; items 3 and 4 were never scored.
    expect(norms[0]).toBeGreaterThan(0);
    expect(norms[1]).toBeGreaterThan(0);
    expect(norms[2]).toBeGreaterThan(0);
    expect(norms[3]).toBe(0);
    expect(norms[4]).toBe(0);
    n.cols.dispose();
  });
});

describe('gbceBeta', () => {
  it('is 1 at t = 0 (plain BCE) and α at t = 1', () => {
    expect(gbceBeta(256, 1001, 0)).toBeCloseTo(1, 12);
    expect(gbceBeta(256, 1001, 1)).toBeCloseTo(256 / 1000, 12);
    expect(gbceBeta(256, 1001, 0.75)).toBeCloseTo(0.256 * (0.75 * (1 - 1 / 0.256) + 1 / 0.256), 12);
  });
});

describe('NegativeSampler', () => {
  const spec = (over: Partial<ItemLossSpec>): ItemLossSpec => ({ kind: 'sampled', negatives: 4000, sampler: 'uniform', gbceT: 0.75, ...over });
  // Item 1 seen 7 times, item 2 once, items 3 and 4 never: popularity q ∝ count + 1 = 8 : 2 : 1 : 1.
  const train = [Int32Array.from([1, 1, 1, 2]), Int32Array.from([1, 1, 1, 1])];

  it('draws popularity negatives in proportion to training count + 1, and reproducibly from a seed', () => {
    const s = new NegativeSampler(spec({ sampler: 'popularity' }), 4, train);
    const cols = s.sampleColumns(new Rng(3));
    const share = [0, 1, 2, 3].map((j) => cols.filter((c) => c === j).length / cols.length);
    [8, 2, 1, 1].forEach((w, j) => expect(share[j]).toBeCloseTo(w / 12, 1));
    expect(Array.from(s.sampleColumns(new Rng(3)))).toEqual(Array.from(cols));
    s.dispose();
  });

  it('draws uniform negatives over every item', () => {
    const s = new NegativeSampler(spec({}), 4, train);
    const cols = s.sampleColumns(new Rng(5));
    for (let j = 0; j < 4; j++) expect(cols.filter((c) => c === j).length / cols.length).toBeCloseTo(0.25, 1);
    s.dispose();
  });

  it('refuses full softmax and a bad negative count', () => {
    expect(() => new NegativeSampler(spec({ kind: 'softmax' }), 4, train)).toThrow(RangeError);
    expect(() => new NegativeSampler(spec({ negatives: 0 }), 4, train)).toThrow(RangeError);
  });
});

describe('fullSoftmaxLoss: one piece, or row chunks for catalogues whose [rows x items] logits would not fit', () => {
  const rng = new Rng(17);
  const m = 7;
  const n = 11;
  const d = 4;
  const rand = (k: number) => Array.from({ length: k }, () => rng.next() * 2 - 1);
  const values = { r: rand(m * d), t: rand(n * d), b: rand(n) };
  let R: tf.Tensor2D;
  let T: tf.Tensor2D;
  let B: tf.Tensor1D;
  let targetsT: tf.Tensor1D;
  beforeAll(() => {
    R = tf.tensor2d(values.r, [m, d]);
    T = tf.tensor2d(values.t, [n, d]);
    B = tf.tensor1d(values.b);
    // Repeated targets, so the scatter of the table's gradient adds up rows.
    targetsT = tf.tensor1d([3, 0, 10, 3, 5, 3, 7], 'int32');
  });
  const plain = (r: tf.Tensor, t: tf.Tensor, b?: tf.Tensor) => {
    const logits = tf.matMul(r as tf.Tensor2D, t as tf.Tensor2D, false, true);
    return softmaxCrossEntropy((b ? tf.add(logits, b) : logits) as tf.Tensor2D, targetsT);
  };

  for (const withBias of [true, false]) {
    for (const chunk of [1, 3, 7, 50]) {
      it(`${withBias ? 'with' : 'without'} a bias, chunks of ${chunk} rows: the value and every gradient of the one-piece loss`, () => {
        const chunked = withBias
          ? tf.grads((r, t, b) => fullSoftmaxLoss(r as tf.Tensor2D, t as tf.Tensor2D, b as tf.Tensor1D, targetsT, chunk))
          : tf.grads((r, t) => fullSoftmaxLoss(r as tf.Tensor2D, t as tf.Tensor2D, undefined, targetsT, chunk));
        const whole = withBias ? tf.grads((r, t, b) => plain(r, t, b)) : tf.grads((r, t) => plain(r, t));
        const args = withBias ? [R, T, B] : [R, T];
        const got = chunked(args);
        const want = whole(args);
        const value = withBias ? fullSoftmaxLoss(R, T, B, targetsT, chunk) : fullSoftmaxLoss(R, T, undefined, targetsT, chunk);
        expect(value.dataSync()[0]).toBeCloseTo((withBias ? plain(R, T, B) : plain(R, T)).dataSync()[0]!, 5);
        got.forEach((g, i) => {
          expect(g.shape).toEqual(want[i]!.shape);
          const a = g.dataSync();
          const b = want[i]!.dataSync();
          for (let j = 0; j < a.length; j++) expect(a[j]).toBeCloseTo(b[j]!, 5);
        });
      });
    }
  }

  for (const chunk of [3, 7]) {
    it(`leaves no tensors behind after a forward and backward (${chunk < m ? 'chunks' : 'one piece'})`, () => {
      const before = tf.memory().numTensors;
      const g = tf.grads((r, t, b) => fullSoftmaxLoss(r as tf.Tensor2D, t as tf.Tensor2D, b as tf.Tensor1D, targetsT, chunk))([R, T, B]);
      tf.dispose(g);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('is itemLoss without negatives, in one piece up to FULL_SOFTMAX_MAX_LOGITS logits', () => {
    expect(FULL_SOFTMAX_MAX_LOGITS).toBeGreaterThanOrEqual(128 * 50 * 1153); // an ML-100K step of 128 full windows
    expect(itemLoss(R, T, B, targetsT).dataSync()[0]).toBe(fullSoftmaxLoss(R, T, B, targetsT).dataSync()[0]);
    expect(itemLoss(R, T, B, targetsT).dataSync()[0]).toBeCloseTo(plain(R, T, B).dataSync()[0]!, 5);
  });

  it('refuses a chunk size that is not a positive integer', () => {
    expect(() => fullSoftmaxLoss(R, T, B, targetsT, 0)).toThrow(RangeError);
    expect(() => fullSoftmaxLoss(R, T, B, targetsT, 2.5)).toThrow(RangeError);
  });
});
