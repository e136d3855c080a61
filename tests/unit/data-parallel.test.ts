/**
 * Data-parallel training (`train --workers N`, src/model/chord/parallel.ts) with real worker
 * threads: without dropout a step split over two threads moves every weight as the one-thread step
 * does (up to float rounding), with full softmax and with a sampled loss; a run trains, records
 * its threads and resumes with another count; a loss that couples a batch's rows (z-norm, contrast)
 * trains on one thread.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { generateShop } from '../../src/data/synthetic.ts';
import { prepareDataset } from '../../src/data/split.ts';
import { initBackend } from '../../src/model/backend.ts';
import { chordBatch, chordExamples, disposeChordBatch } from '../../src/model/chord/data.ts';
import { lengthBatches } from '../../src/model/chord/loop.ts';
import { combineGradients, dataParallelRefusal, DataParallelSteps, shardIndices, type ReplicaSpec } from '../../src/model/chord/parallel.ts';
import { buildReplica, makeBackbone, RUN_DEFAULTS, runTraining, type RunOptions } from '../../src/model/chord/run.ts';
import { NegativeSampler } from '../../src/model/item-loss.ts';
import { trainStep } from '../../src/model/train.ts';
import { parseTrainArgs } from '../../src/model/train-cli.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const dir = mkdtempSync(join(tmpdir(), 'data-parallel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ds = prepareDataset(generateShop({ seed: 5, numItems: 300, numShoppers: 200, clicksPerShopper: 20 }).interactions, { k: 0 }).split;

function runOptions(over: Partial<RunOptions>): RunOptions {
  return {
    ...RUN_DEFAULTS,
    backbone: 'sasrec',
    method: 'base',
    dataName: 'shop',
    seed: 3,
    epochs: 2,
    patience: 2,
    batchSize: 64,
    lr: 5e-3,
    dropout: 0,
    out: join(dir, 'unused'),
    command: 'test',
    log: () => {},
    ...over,
  };
}

describe('shards and their combination', () => {
  it('deals a batch out round-robin, every example once', () => {
    const idx = [10, 11, 12, 13, 14, 15, 16];
    const shards = [0, 1, 2].map((k) => Array.from(shardIndices(idx, 3, k)));
    expect(shards).toEqual([[10, 13, 16], [11, 14], [12, 15]]);
    expect(Array.from(shardIndices([7], 2, 1))).toEqual([]);
  });

  it('weights each shard by its target rows and leaves out empty shards', () => {
    const g = combineGradients([
      { rows: 3, grads: { w: Float32Array.from([1, 2]) } },
      { rows: 1, grads: { w: Float32Array.from([5, -2]) } },
      { rows: 0, grads: {} },
    ]);
    expect(Array.from(g['w']!)).toEqual([2, 1]);
  });
});

/** An optimizer that records the gradients it is given and moves the weights by plain SGD. */
class RecordingSgd {
  readonly seen: Array<Record<string, Float32Array>> = [];
  apply(vars: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>): void {
    this.seen.push(Object.fromEntries(Object.entries(grads).map(([n, g]) => [n, g.dataSync() as Float32Array])));
    for (const [n, g] of Object.entries(grads)) vars[n]!.assign(tf.tidy(() => tf.sub(vars[n]!, tf.mul(g, 0.05))));
  }
}

describe('a step over two threads', () => {
  const cases = [
    ['sasrec', 'base', 'softmax'],
    ['sasrec', 'base', 'sampled'],
    ['caser', 'base', 'softmax'],
    ['sasrec', 'chord', 'softmax'],
    ['caser', 'weighted', 'softmax'],
  ] as const;
  for (const [kind, method, loss] of cases) {
    it(`gives the one-thread step's loss and gradient without dropout (${kind} ${method}, ${loss} loss)`, async () => {
      const o = runOptions({ backbone: kind, method, ...(loss === 'sampled' ? { loss: { ...RUN_DEFAULTS.loss, kind: 'sampled', negatives: 32 } } : {}) });
      const sampler = loss === 'sampled' ? new NegativeSampler(o.loss!, ds.numItems, ds.train) : undefined;
      const { log: _log, ...options } = o;
      const spec: ReplicaSpec = {
        options: options as unknown as Record<string, unknown>,
        numItems: ds.numItems,
        numUsers: ds.numUsers,
        backend: 'wasm',
        ...(sampler ? { logExpected: sampler.logExpected.dataSync() as Float32Array } : {}),
      };
      const one = buildReplica(spec);
      const two = buildReplica(spec);
      for (const [name, v] of Object.entries(two.variables)) v.assign(one.variables[name]!);
      const backbone = makeBackbone(o, ds);
      // The windows training uses: every target for Base, CHORD's leak-free last zTargets for the hypernet methods.
      const ex = chordExamples(backbone, ds.train, 0, { gruLen: o.gruWindow, zTargets: method === 'base' ? backbone.inputLen : o.zTargets });
      const order = Array.from({ length: ex.count }, (_, i) => i);
      // SASRec on length-bucketed batches, cut (as the Amazon profiles train); Caser's fixed windows.
      const trim = kind === 'sasrec';
      const batches = trim ? lengthBatches(ex, order, 64, 2, new Rng(1)) : [0, 1, 2].map((b) => order.slice(b * 64, (b + 1) * 64));
      const parallel = DataParallelSteps.start(spec, 2);
      try {
        parallel.setExamples(ex);
        const sgdOne = new RecordingSgd();
        const sgdTwo = new RecordingSgd();
        const ctx = { training: true, seed: () => 1 };
        for (const idx of batches.slice(0, 3)) {
          const negatives = sampler?.sample(new Rng(idx[0]!));
          const batch = chordBatch(ex, idx, trim);
          const lossOne = trainStep(one, sgdOne, negatives ? { ...batch, negatives } : batch, ctx);
          disposeChordBatch(batch);
          const lossTwo = await parallel.step(two, sgdTwo, idx, trim, ctx, negatives);
          negatives?.cols.dispose();
          expect(lossTwo).toBeCloseTo(lossOne, 4);
        }
        // Every step's gradient agrees, so the weights the worker received with steps 2 and 3 did too.
        expect(sgdTwo.seen).toHaveLength(3);
        const largest = Math.max(...Object.values(sgdOne.seen[0]!).map((g) => g.reduce((a, x) => Math.max(a, Math.abs(x)), 0)));
        expect(largest).toBeGreaterThan(1e-3);
        sgdOne.seen.forEach((grads, step) => {
          expect(Object.keys(sgdTwo.seen[step]!).sort()).toEqual(Object.keys(grads).sort());
          for (const [name, g] of Object.entries(grads)) {
            const h = sgdTwo.seen[step]![name]!;
            const scale = g.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
            // Float rounding: relative to the variable's largest gradient, absolute where that is ~0.
            for (let i = 0; i < g.length; i++) expect(Math.abs(g[i]! - h[i]!)).toBeLessThanOrEqual(1e-3 * scale + 1e-7);
          }
        });
      } finally {
        await parallel.close();
        sampler?.dispose();
      }
    }, 120_000);
  }
});

describe('train --workers', () => {
  it('trains a run over two threads, records them, and resumes on one', async () => {
    const out = join(dir, 'run');
    const o = runOptions({ out, epochs: 1, dropout: 0.2, workers: 2, lengthBuckets: 2 });
    const first = await runTraining(o, ds);
    expect(first.loop.epochsRun).toBe(1);
    const training = JSON.parse(readFileSync(join(first.artifactDir, 'training.json'), 'utf8')) as { timing: { workers?: number } };
    expect(training.timing.workers).toBe(2);
    expect(first.valid.unmasked.ndcg10).toBeGreaterThan(0);
    const { workers: _w, ...oneThread } = o;
    const resumed = await runTraining({ ...oneThread, epochs: 2, resume: true }, ds);
    expect(resumed.loop.epochsRun).toBe(2);
    expect(resumed.loop.history[0]!.loss).toBe(first.loop.history[0]!.loss);
  }, 300_000);

  it("refuses to split the steps of a loss that couples a batch's rows (z-norm, contrast), and a count below 1", () => {
    expect(parseTrainArgs(['--data', 'x', '--method', 'chord', '--z-norm', '--workers', '2']).run.workers).toBe(2);
    const spec = (over: Partial<RunOptions>): ReplicaSpec => {
      const { log: _log, ...options } = runOptions({ method: 'chord', ...over });
      return { options: options as unknown as Record<string, unknown>, numItems: ds.numItems, numUsers: ds.numUsers, backend: 'wasm' };
    };
    expect(() => DataParallelSteps.start(spec({ zNorm: true }), 2)).toThrow(/--z-norm standardizes z by the batch's statistics/);
    expect(() => DataParallelSteps.start(spec({ contrast: 1 }), 2)).toThrow(/--contrast compares each row with the rolled batch/);
    expect(dataParallelRefusal({ zNorm: false, contrast: 0 })).toBeUndefined();
    expect(() => parseTrainArgs(['--data', 'x', '--workers', '0'])).toThrow(/--workers must be a positive integer/);
    expect(parseTrainArgs(['--data', 'x', '--method', 'quant', '--workers', '2']).run.workers).toBe(2);
    expect(parseTrainArgs(['--data', 'x']).run.workers).toBeUndefined();
  });
});
