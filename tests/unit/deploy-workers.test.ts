/**
 * Deployment evaluation split over real worker threads (src/model/chord/deploy-workers.ts): the
 * metrics, ranks and bits equal one thread's exactly, for CHORD (own strategy, T budget, another
 * user's strategy, strategy from other clicks, named controls) and for fp32 Base; a run trained with --workers
 * evaluates on them; bench:eval times both; a control strategy given as a function is refused; a worker's
 * failure is a typed error.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniformStrategy } from '../../src/core/strategy-controls.ts';
import { initBackend } from '../../src/model/backend.ts';
import { testHistories, validationHistories } from '../../src/model/chord/data.ts';
import { dealUsersByLength, DeploymentWorkers } from '../../src/model/chord/deploy-workers.ts';
import { anotherUser, evaluateAndRankDeployment, prepareDeployment, type Deployment } from '../../src/model/chord/deployed.ts';
import { runTraining } from '../../src/model/chord/run.ts';
import { rankUserRows, summarizeUserRows, usersWithTarget, type UserScorer } from '../../src/model/evaluate.ts';
import { readArtifact } from '../../src/model/export.ts';
import { benchEvaluation } from '../../tools/bench/bench-eval.ts';
import { cyclicSplit, tinyRunOptions } from '../fixtures/tiny-training.ts';

const dir = mkdtempSync(join(tmpdir(), 'deploy-workers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ds = cyclicSplit(30, 12);
let chord: Deployment;
let chordRun: Awaited<ReturnType<typeof runTraining>>;
const logged: string[] = [];

beforeAll(async () => {
  await initBackend('wasm');
  // Trained with two threads: its final evaluation in training.json is the split one. With z
  // standardized by batch statistics its steps run on one thread.
  chordRun = await runTraining(tinyRunOptions(dir, { method: 'chord', zNorm: true, workers: 2, log: (l) => logged.push(l) }), ds);
  chord = await prepareDeployment(readArtifact(chordRun.artifactDir));
}, 300_000);

describe('rows of an evaluation', () => {
  it('merges parts over disjoint users into the whole evaluation, in user order', () => {
    const set = { histories: [[1], [2, 3], [3], [1, 2, 3]].map((h) => Int32Array.from(h)), targets: Int32Array.from([2, 0, 1, 3]) };
    const score: UserScorer = (users) => Float32Array.from(users.flatMap((u) => [u % 3, (u * 7) % 5, 1]));
    const whole = summarizeUserRows([rankUserRows(set, 3, score)]);
    const parts = summarizeUserRows([rankUserRows(set, 3, score, 128, [3]), rankUserRows(set, 3, score, 128, [2, 0])]);
    expect(parts).toEqual(whole);
    expect(Array.from(whole.ranks.users)).toEqual([0, 2, 3]);
    expect(() => summarizeUserRows([rankUserRows(set, 3, score, 128, [0]), rankUserRows(set, 3, score, 128, [0, 2])])).toThrow(/user 0 is in two parts/);
    expect(() => rankUserRows(set, 3, score, 128, [1])).toThrow(/user 1 has no target/);
  });

  it('deals users out by history length, each user once', () => {
    const set = { histories: [5, 1, 4, 2, 3].map((n) => new Int32Array(n).fill(1)), targets: new Int32Array(5).fill(1) };
    expect(dealUsersByLength(set, [0, 1, 2, 3, 4], 2)).toEqual([[1, 4, 0], [3, 2]]);
  });
});

describe('DeploymentWorkers', () => {
  it('trains a CHORD run with --workers 2 whose final evaluation equals one thread\'s', async () => {
    expect(logged).toContain("2 threads for the final evaluation; the steps run on one (--z-norm standardizes z by the batch's statistics, which couples a batch's rows)");
    const training = JSON.parse(readFileSync(join(chordRun.artifactDir, 'training.json'), 'utf8'));
    expect(training.timing.workers).toBe(2);
    const test = testHistories(ds);
    const opts = { gruWindow: 6 };
    expect(chordRun.valid).toEqual(evaluateAndRankDeployment(chord, validationHistories(ds), opts).result);
    expect(chordRun.test).toEqual(evaluateAndRankDeployment(chord, test, opts).result);
    expect(training.metrics.testAtBudget['2.5']).toEqual(evaluateAndRankDeployment(chord, test, { ...opts, budget: 2.5 }).result);
    expect(training.metrics.testOthersStrategy).toEqual(evaluateAndRankDeployment(chord, test, { ...opts, strategyUser: anotherUser(ds.numUsers) }).result);
  });

  it('gives one thread\'s metrics, ranks and bits on three threads, for every option that crosses threads', async () => {
    const test = testHistories(ds);
    const otherTarget = (u: number) => Int32Array.from([...test.histories[u]!, test.targets[(u + 1) % ds.numUsers]!]);
    const options = [
      { gruWindow: 6 },
      { gruWindow: 6, budget: 2.5 },
      { gruWindow: 6, strategyUser: anotherUser(ds.numUsers) },
      { gruWindow: 6, strategyHistory: otherTarget },
      { gruWindow: 6, activationBits: 3 },
      { gruWindow: 6, strategyControl: { kind: 'shuffled' } },
      { gruWindow: 6, strategyControl: { kind: 'uniform', bits: 3 } },
    ] as const;
    const workers = DeploymentWorkers.start(chord, 3);
    try {
      expect(workers.count).toBe(3);
      for (const opts of options) {
        const one = evaluateAndRankDeployment(chord, test, opts);
        expect(one.result.averageBits).toBeGreaterThan(0);
        expect(await workers.evaluateAndRank(test, opts)).toEqual(one);
      }
    } finally {
      await workers.close();
    }
  }, 120_000);

  it('splits an fp32 Base artifact too (no strategy, no bits)', async () => {
    const base = await runTraining(tinyRunOptions(dir, { method: 'base', workers: 2 }), ds);
    const dep = await prepareDeployment(readArtifact(base.artifactDir));
    const test = testHistories(ds);
    const one = evaluateAndRankDeployment(dep, test, { gruWindow: 6 });
    expect(one.result.averageBits).toBeUndefined();
    expect(base.test).toEqual(one.result);
    const workers = DeploymentWorkers.start(dep, 2);
    try {
      expect(await workers.evaluateAndRank(test, { gruWindow: 6 })).toEqual(one);
    } finally {
      await workers.close();
    }
  }, 120_000);

  it('refuses a control strategy given as a function, which cannot cross threads, and a count below 1', async () => {
    const workers = DeploymentWorkers.start(chord, 2);
    try {
      const control = { gruWindow: 6, strategyControl: (s: Parameters<typeof uniformStrategy>[0]) => uniformStrategy(s, 3) };
      await expect(workers.evaluate(testHistories(ds), control)).rejects.toMatchObject({ code: 'CHORD_BAD_OPTION' });
      // The refusal happened before any request: the workers still answer.
      expect((await workers.evaluate(testHistories(ds), { gruWindow: 6 })).users).toBe(ds.numUsers);
    } finally {
      await workers.close();
    }
    expect(() => DeploymentWorkers.start(chord, 0)).toThrow(/positive integer/);
  }, 120_000);

  it('bench:eval times one thread against two on the same users and finds the same ranks', async () => {
    const r = await benchEvaluation(chordRun.artifactDir, ds, 2, 20);
    expect(r).toMatchObject({ users: 20, items: ds.numItems, personalised: true, workers: 2 });
    expect(r.oneThreadSeconds).toBeGreaterThan(0);
    expect(r.speedup).toBeCloseTo(r.oneThreadSeconds / r.splitSeconds, 10);
    expect(r.testNdcg10).toBeGreaterThan(0);
  }, 120_000);

  it('turns a worker\'s failure into CHORD_WORKER_FAILED', async () => {
    const test = testHistories(ds);
    const [, theirs] = dealUsersByLength(test, usersWithTarget(test), 2);
    const bad = new Set(theirs);
    // Clicks outside the catalogue for the worker's users only: the failure is the worker's.
    const strategyHistory = (u: number) => (bad.has(u) ? Int32Array.from([ds.numItems + 50]) : test.histories[u]!);
    const workers = DeploymentWorkers.start(chord, 2);
    try {
      await expect(workers.evaluate(test, { gruWindow: 6, strategyHistory })).rejects.toMatchObject({ code: 'CHORD_WORKER_FAILED' });
      expect((await workers.evaluate(test, { gruWindow: 6 })).users).toBe(ds.numUsers);
    } finally {
      await workers.close();
    }
  }, 120_000);
});
