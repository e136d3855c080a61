/**
 * The strategy probe on a tiny trained CHORD artifact: its honest arm is the run's own test
 * evaluation to the bit (same deployment path), the own-target arm really changes strategies, and
 * every paired difference covers all test users.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/model/backend.ts';
import { testHistories } from '../../src/model/chord/data.ts';
import { DeploymentWorkers } from '../../src/model/chord/deploy-workers.ts';
import { anotherUser, prepareDeployment, rankDeployment } from '../../src/model/chord/deployed.ts';
import { runTraining } from '../../src/model/chord/run.ts';
import { readArtifact } from '../../src/model/export.ts';
import { inputSpread, inputSpreadLine, PROBE_ARMS, probeLines, probeStrategy } from '../../tools/probe-strategy.ts';
import { cyclicSplit, tinyRunOptions } from '../fixtures/tiny-training.ts';

const dir = mkdtempSync(join(tmpdir(), 'chord-probe-'));
beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('strategy probe', () => {
  it('scores four strategy arms on the same backbone input; the honest arm is the run\'s test evaluation', async () => {
    const ds = cyclicSplit(24, 12);
    const run = await runTraining(tinyRunOptions(dir, { method: 'chord', budgets: [] }), ds);
    const dep = await prepareDeployment(readArtifact(run.artifactDir));
    const r = await probeStrategy(dep, run.artifactDir, ds, 6);
    expect(r.artifact).toBe(run.artifactDir);
    expect(r.users).toBe(24);
    expect(r.ndcg10.honest.unmasked).toBe(run.test.unmasked.ndcg10);
    expect(r.ndcg10.honest.masked).toBe(run.test.masked.ndcg10);
    for (const arm of PROBE_ARMS) expect(Number.isFinite(r.ndcg10[arm].unmasked)).toBe(true);
    for (const d of Object.values(r.paired)) expect(d.unmasked.n).toBe(24);
    // The extra click moves z, so some channels change level; another user's history moves more or less, but not none.
    expect(r.channelsChanged.ownTarget).toBeGreaterThan(0);
    expect(r.channelsChanged.otherUser).toBeGreaterThan(0);
    expect(r.meanAbsLog2RankShift.honest_vs_otherUser).toBeGreaterThanOrEqual(0);
    expect(probeLines(r).length).toBe(1 + PROBE_ARMS.length + 3 + 2);
    // The study hands over the two arms it has ranked already (own and another user's strategy): the same probe.
    const test = testHistories(ds);
    const ranked = { honest: rankDeployment(dep, test, { gruWindow: 6 }), otherUser: rankDeployment(dep, test, { gruWindow: 6, strategyUser: anotherUser(ds.numUsers) }) };
    expect(await probeStrategy(dep, run.artifactDir, ds, 6, ranked)).toEqual(r);
    // On two threads (probe --workers 2): the same probe.
    const threads = DeploymentWorkers.start(dep, 2);
    try {
      expect(await probeStrategy(dep, run.artifactDir, ds, 6, {}, threads)).toEqual(r);
    } finally {
      await threads.close();
    }

    // Where the users' differences go: z varies between users, and so (channels change above) do the scores.
    const spread = inputSpread(dep, ds, 6, 10);
    expect(spread.users).toBe(10);
    expect(spread.zMeanAbs).toBeGreaterThan(0);
    expect(spread.zMeanAbs).toBeLessThan(1);
    for (const share of [spread.zSaturated, spread.trunkSaturated]) expect(share >= 0 && share <= 1).toBe(true);
    expect(spread.zRelativeSpread).toBeGreaterThan(0);
    expect(spread.scoreSpreadRatio).toBeGreaterThan(0);
    expect(inputSpreadLine(spread)).toMatch(/^input spread \(10 users\)/);
  }, 120_000);

  it('finds no spread at all where every user has the same history', async () => {
    const ds = cyclicSplit(24, 12);
    const same = { ...ds, train: ds.train.map(() => ds.train[0]!), valid: ds.valid.map(() => ds.valid[0]!) };
    const run = await runTraining(tinyRunOptions(join(dir, 'same'), { method: 'chord', budgets: [] }), ds);
    const spread = inputSpread(await prepareDeployment(readArtifact(run.artifactDir)), same, 6, 10);
    expect(spread.zRelativeSpread).toBe(0);
    expect(spread.scoreSpreadRatio).toBe(0);
  }, 120_000);
});
