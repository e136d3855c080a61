/**
 * bench:train's measurement on a tiny generated shop: every backbone and a CHORD-family method
 * take real optimisation steps and report consistent per-step and per-epoch figures.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { prepareDataset } from '../../src/data/split.ts';
import { generateShop } from '../../src/data/synthetic.ts';
import { initBackend } from '../../src/model/backend.ts';
import { benchSteps } from '../../tools/bench/bench-train.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const ds = prepareDataset(generateShop({ seed: 2, numItems: 40, numShoppers: 30, clicksPerShopper: 12 }).interactions, { k: 3 }).split;

describe('benchSteps', () => {
  it.each([
    ['sasrec', 'chord'],
    ['caser', 'weighted'],
    ['caser', 'base'],
  ] as const)('times %s %s steps', async (backbone, method) => {
    const r = await benchSteps(ds, backbone, method, 1);
    expect(r).toMatchObject({ backbone, method, stepsTimed: 1, batchSize: backbone === 'sasrec' ? 128 : 512 });
    expect(r.stepsPerEpoch).toBeGreaterThanOrEqual(1);
    expect(r.cpuSecondsPerStep).toBeGreaterThan(0);
    expect(r.wallSecondsPerStep).toBeGreaterThan(0);
    expect(r.cpuMinutesPerEpoch).toBeCloseTo((r.stepsPerEpoch * r.cpuSecondsPerStep) / 60, 10);
  });

  it('buckets SASRec windows by length (Caser reads fixed windows) and counts the target rows', async () => {
    const bucketed = await benchSteps(ds, 'sasrec', 'base', 1, 20);
    expect(bucketed.lengthBuckets).toBe(20);
    expect((await benchSteps(ds, 'caser', 'base', 1, 20)).lengthBuckets).toBe(0);
    // Base trains every target of a user's one window, CHORD the last zTargets (10) of windows
    // every 10 items: with 40 clicks a shopper, a batch of 128 windows holds fewer targets.
    const long = prepareDataset(generateShop({ seed: 3, numItems: 80, numShoppers: 200, clicksPerShopper: 40 }).interactions, { k: 3 }).split;
    const base = await benchSteps(long, 'sasrec', 'base', 1);
    const chord = await benchSteps(long, 'sasrec', 'chord', 1);
    expect(base.meanTargetRows).toBeGreaterThan(0);
    expect(bucketed.meanTargetRows).toBeGreaterThan(0);
    expect(chord.meanTargetRows).toBeLessThan(base.meanTargetRows);
  });

  it('splits a Base step over two threads with --workers 2', async () => {
    const r = await benchSteps(ds, 'sasrec', 'base', 2, 20, 2);
    expect(r).toMatchObject({ workers: 2, stepsTimed: 2 });
    expect(r.wallMinutesPerEpoch).toBeCloseTo((r.stepsPerEpoch * r.wallSecondsPerStep) / 60, 10);
  }, 60_000);
});
