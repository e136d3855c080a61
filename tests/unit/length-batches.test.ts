import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.ts';
import { INFERENCE } from '../../src/model/backbone.ts';
import { initBackend } from '../../src/model/backend.ts';
import { batchTensors, disposeBatch, windowLength } from '../../src/model/batches.ts';
import { sampleUsers } from '../../src/model/chord/data.ts';
import { lengthBatches } from '../../src/model/chord/loop.ts';
import { runTraining } from '../../src/model/chord/run.ts';
import { createBaseModel } from '../../src/model/model.ts';
import { createSasrec, sasrecExamples } from '../../src/model/sasrec.ts';
import { cyclicSplit, tinyRunOptions } from '../fixtures/tiny-training.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const dir = mkdtempSync(join(tmpdir(), 'length-batches-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Histories of 2..9 items: most of a window of 8 is padding for the short ones.
const train = Array.from({ length: 12 }, (_, u) => Int32Array.from({ length: 2 + (u % 8) }, (_, i) => ((u + i) % 10) + 1));

describe('batchTensors with trim', () => {
  const bb = createSasrec({ numItems: 10, numUsers: 12, maxLen: 8, hidden: 16, heads: 2, blocks: 2, ffn: 32, dropout: 0.2 });
  const ex = sasrecExamples(bb.sasrec, train, 0);

  it('cuts the padding every window of the batch shares, keeping every target', () => {
    const idx = [0, 1, 8]; // windows of 1, 2 and 1 input items
    const full = batchTensors(ex, idx);
    const cut = batchTensors(ex, idx, true);
    expect(full.seq.shape).toEqual([3, 8]);
    expect(cut.seq.shape).toEqual([3, 2]);
    expect(cut.targetCols.arraySync()).toEqual(full.targetCols.arraySync());
    expect(cut.seq.arraySync()).toEqual((full.seq.arraySync() as number[][]).map((r) => r.slice(6)));
    disposeBatch(full);
    disposeBatch(cut);
  });

  it('gives the same loss as the full windows', () => {
    const model = createBaseModel(bb, 2);
    const idx = [0, 1, 2, 9, 10];
    const full = batchTensors(ex, idx);
    const cut = batchTensors(ex, idx, true);
    expect(cut.seq.shape[1]).toBeLessThan(8);
    const a = model.loss(full, INFERENCE).dataSync()[0]!;
    const b = model.loss(cut, INFERENCE).dataSync()[0]!;
    expect(b).toBeCloseTo(a, 5);
    disposeBatch(full);
    disposeBatch(cut);
  });
});

describe('lengthBatches', () => {
  const bb = createSasrec({ numItems: 10, numUsers: 12, maxLen: 8 });
  const ex = sasrecExamples(bb.sasrec, train, 0);

  it('partitions the examples into batches of similar length within each chunk', () => {
    const order = Array.from({ length: ex.count }, (_, i) => i);
    new Rng(1).shuffle(order);
    const batches = lengthBatches(ex, order, 3, 2, new Rng(2));
    expect(batches.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: ex.count }, (_, i) => i));
    // With one chunk of everything, batches are consecutive runs of the length-sorted examples.
    const one = lengthBatches(ex, order, 3, 100, new Rng(2));
    const spans = one.map((b) => b.map((i) => windowLength(ex, i)));
    const sortedLengths = order.map((i) => windowLength(ex, i)).sort((a, b) => a - b);
    expect(spans.flat().sort((a, b) => a - b)).toEqual(sortedLengths);
    for (const s of spans) expect(Math.max(...s) - Math.min(...s)).toBeLessThanOrEqual(2);
  });
});

describe('sampleUsers', () => {
  const set = { histories: train, targets: Int32Array.from({ length: 12 }, (_, u) => (u === 3 ? 0 : 1)) };

  it('keeps a seeded sample of the users with a target, the same for the same seed', () => {
    const a = sampleUsers(set, 5, 7);
    expect(a.targets.filter((t) => t > 0).length).toBe(5);
    expect(a.targets[3]).toBe(0);
    expect(Array.from(sampleUsers(set, 5, 7).targets)).toEqual(Array.from(a.targets));
    expect(Array.from(sampleUsers(set, 5, 8).targets)).not.toEqual(Array.from(a.targets));
    expect(sampleUsers(set, 11, 7)).toBe(set);
  });
});

describe('runTraining with a sampled loss and length buckets', () => {
  it('trains, records the settings it changed and validates on the sample', async () => {
    const ds = cyclicSplit(24, 12);
    const lines: string[] = [];
    const r = await runTraining(
      {
        ...tinyRunOptions(dir, { method: 'base', init: 'random' }),
        out: join(dir, 'gbce'),
        loss: { kind: 'gbce', negatives: 6, sampler: 'uniform', gbceT: 0.75 },
        lengthBuckets: 2,
        validUsers: 10,
        log: (l) => lines.push(l),
      },
      ds,
    );
    const settings = (r.training['options'] as Record<string, unknown>);
    expect(settings['loss']).toEqual({ kind: 'gbce', negatives: 6, sampler: 'uniform', gbceT: 0.75 });
    expect(settings['lengthBuckets']).toBe(2);
    expect(settings['validUsers']).toBe(10);
    expect(lines.some((l) => l.includes('a seeded sample of 10 of 24 users'))).toBe(true);
    expect(r.loop.bestValid!.users).toBe(10);
    expect(r.test.users).toBe(24);
    const state = JSON.parse(readFileSync(join(dir, 'gbce', 'checkpoint', 'state.json'), 'utf8'));
    expect(state.settings.loss.kind).toBe('gbce');
    expect(Number.isFinite(r.loop.history[0]!.loss)).toBe(true);
  });

  it('refuses length buckets on Caser', async () => {
    const ds = cyclicSplit(8, 12);
    await expect(
      runTraining({ ...tinyRunOptions(dir, { method: 'base', init: 'random' }), backbone: 'caser', out: join(dir, 'caser'), lengthBuckets: 2, log: () => {} }, ds),
    ).rejects.toThrow(/length-buckets/);
  });
});

