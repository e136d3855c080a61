import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SplitDataset } from '../../src/data/types.ts';
import { initBackend } from '../../src/model/backend.ts';
import { assignVariables, CheckpointError, loadTensorSet, saveTensorSet } from '../../src/model/checkpoint.ts';
import { createBaseModel } from '../../src/model/model.ts';
import { createSasrec } from '../../src/model/sasrec.ts';
import { chordExamples } from '../../src/model/chord/data.ts';
import { trainLoop, type LoopOptions } from '../../src/model/chord/loop.ts';
import { evaluateRanking, validationSet } from '../../src/model/evaluate.ts';
import { cyclicSplit } from '../fixtures/tiny-training.ts';

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'model-train-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tiny = { numItems: 10, numUsers: 30, maxLen: 6, hidden: 8, heads: 2, blocks: 1, ffn: 16, dropout: 0.2 };

/** 30 users x 10 items; last two items are valid and test. */
const tinySplit = (): SplitDataset => cyclicSplit(30, 10);

function values(vars: Record<string, tf.Variable>): Record<string, number[]> {
  return Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, Array.from(v.dataSync())]));
}

describe('checkpoints', () => {
  it('round-trips every parameter through the JSON + f32 files', () => {
    const a = createBaseModel(createSasrec(tiny), 1);
    const b = createBaseModel(createSasrec(tiny), 2);
    expect(values(a.variables)).not.toEqual(values(b.variables));
    saveTensorSet(dir, 'rt', a.variables);
    const index = JSON.parse(readFileSync(join(dir, 'rt.json'), 'utf8')) as { tensors: { name: string }[] };
    expect(index.tensors.map((t) => t.name)).toContain('block0.attn.q');
    assignVariables(b.variables, loadTensorSet(dir, 'rt'));
    expect(values(b.variables)).toEqual(values(a.variables));
  });

  it('refuses a checkpoint of another shape or with foreign tensors', () => {
    const a = createBaseModel(createSasrec(tiny), 1);
    const bigger = createBaseModel(createSasrec({ ...tiny, hidden: 16 }), 1);
    saveTensorSet(dir, 'other', bigger.variables);
    expect(() => assignVariables(a.variables, loadTensorSet(dir, 'other'))).toThrow(CheckpointError);
    writeFileSync(join(dir, 'broken.json'), '{"format":"chord-tensors"}');
    writeFileSync(join(dir, 'broken.bin'), new Uint8Array(0));
    expect(() => loadTensorSet(dir, 'broken')).toThrow(CheckpointError);
  });
});

/** Everything a run leaves in its checkpoint directory, without the wall/CPU timings. */
function checkpointOf(d: string): Record<string, unknown> {
  const timing = new Set(['trainSeconds', 'trainCpuSeconds', 'evalSeconds']);
  const state: unknown = JSON.parse(readFileSync(join(d, 'state.json'), 'utf8'), (k, v: unknown) => (timing.has(k) ? undefined : v));
  const bin = (name: string) => Array.from(readFileSync(join(d, `${name}.bin`)));
  return { state, last: bin('last'), best: bin('best'), optimizer: bin('optimizer') };
}

describe('trainLoop on a Base model', () => {
  const data = tinySplit();
  const opts: LoopOptions = {
    epochs: 12,
    batchSize: 16,
    lr: 1e-2,
    weightDecay: 0,
    seed: 9,
    patience: 2,
    evalEvery: 1,
    metric: 'ndcg10',
    resume: false,
    settings: { data: 'tiny' },
    progress: false,
    log: () => {},
  };
  /** Trains a Base SASRec initialised with `init`; `killAtEval` throws inside that validation. */
  function train(init: number, over: Partial<LoopOptions>, killAtEval = Infinity) {
    const model = createBaseModel(createSasrec(tiny), init);
    let evals = 0;
    const validate = () => {
      if (++evals === killAtEval) throw new Error('killed');
      return evaluateRanking((seq, users) => model.scores(seq, users), data.numItems, model.backbone.inputLen, validationSet(data));
    };
    const run = trainLoop(model, (shift) => chordExamples(model.backbone, data.train, shift, { gruLen: 1, zTargets: model.backbone.inputLen }), model.backbone.inputLen, validate, { ...opts, ...over });
    return { model, run };
  }

  it('learns the tiny dataset, and a run killed mid-epoch resumes to exactly the uninterrupted result', async () => {
    const straight = train(9, { checkpointDir: join(dir, 'a') });
    const full = await straight.run;
    expect(full.history[5]!.loss).toBeLessThan(full.history[0]!.loss);
    // The pattern is fully predictable, so validation must beat random ranking (HR@10 = 1 trivially
    // with 10 items; NDCG@10 of a random rank is ~0.39).
    expect(full.bestValid!.unmasked.ndcg10).toBeGreaterThan(0.6);
    // The resume below must carry early stopping's count and the best epoch's weights: the run
    // stops early, two epochs after a best epoch that is not its last.
    expect(full.stoppedEarly).toBe(true);
    expect(full.epochsRun).toBe(full.bestEpoch + opts.patience);

    // Killed in the last epoch's validation: its steps ran, but its checkpoint was never written.
    const cut = join(dir, 'b');
    const killed = train(9, { checkpointDir: cut }, full.epochsRun);
    await expect(killed.run).rejects.toThrow('killed');
    expect(checkpointOf(cut)['state']).toMatchObject({ epoch: full.epochsRun - 1, badEvals: opts.patience - 1 });
    const lines: string[] = [];
    const resumed = train(123, { checkpointDir: cut, resume: true, log: (l) => lines.push(l) }); // other init: overwritten
    const rest = await resumed.run;
    expect(lines[0]).toBe(`resumed from ${cut} after epoch ${full.epochsRun - 1}`);
    expect(rest.epochsRun).toBe(full.epochsRun);
    expect(rest.bestEpoch).toBe(full.bestEpoch);
    expect(rest.bestValid).toEqual(full.bestValid);
    expect(rest.history.map((h) => [h.loss, h.valid])).toEqual(full.history.map((h) => [h.loss, h.valid]));
    expect(values(resumed.model.variables)).toEqual(values(straight.model.variables));
    expect(checkpointOf(cut)).toEqual(checkpointOf(join(dir, 'a')));
  }, 60_000);

  it('refuses to resume a checkpoint written with other settings', async () => {
    const d = join(dir, 'settings');
    await train(9, { checkpointDir: d, epochs: 1 }).run;
    const other = train(9, { checkpointDir: d, epochs: 2, resume: true, settings: { data: 'other' } });
    await expect(other.run).rejects.toThrow(CheckpointError);
    await expect(train(9, { checkpointDir: d, epochs: 2, resume: true }).run).resolves.toMatchObject({ epochsRun: 2 });
  });
});
