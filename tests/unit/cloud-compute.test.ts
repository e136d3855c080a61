/**
 * The strategy compute (z -> bytes, ETag, average bits) against core's per-z path, its
 * bitstream writer against core's encoder, and the worker-thread pool that runs it off the main
 * thread: same answers, a crashed worker fails only its batch (503) and is replaced, close()
 * finishes what is running.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { averageBits } from '../../src/core/allocation.ts';
import { decodeStrategy, encodeStrategy } from '../../src/core/bitstream.ts';
import { applyBudget } from '../../src/core/budget.ts';
import { Hypernet } from '../../src/core/hypernet.ts';
import type { LevelTable, Strategy } from '../../src/core/strategy.ts';
import { loadServedModel } from '../../src/cloud/artifacts.ts';
import type { ServedModel } from '../../src/cloud/artifacts.ts';
import { ComputePool } from '../../src/cloud/compute-pool.ts';
import { ApiError } from '../../src/cloud/errors.ts';
import { BitstreamWriter, etagOf, StrategyCompute } from '../../src/cloud/strategy-compute.ts';
import type { ComputeResult } from '../../src/cloud/strategy-compute.ts';
import { writeTestModel } from '../fixtures/artifacts.ts';

let root: string;
let model: ServedModel;
let custom: ServedModel;
/** Levels 0/3/4/5: strategies with off channels. */
let gate: ServedModel;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'chord-compute-'));
  model = await loadServedModel((await writeTestModel(root, { modelId: 'chord-m', seed: 12 })).dir);
  custom = await loadServedModel((await writeTestModel(root, { modelId: 'custom-m', seed: 13, method: 'custom' })).dir);
  gate = await loadServedModel((await writeTestModel(root, { modelId: 'gate-m', seed: 14, levelTable: [0, 3, 4, 5], beta: 0.375 })).dir);
});
afterAll(async () => rm(root, { recursive: true, force: true }));

function randomZ(count: number, dim: number, seed: number): Float32Array<ArrayBuffer> {
  let s = seed;
  return Float32Array.from({ length: count * dim }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1);
}

/** The answer the pre-batching server computed for one z: core end to end. */
function coreAnswer(m: ServedModel, z: Float32Array, budget: number | undefined) {
  let strategy = new Hypernet(m.hypernetConfig, m.computeSpec.hypernetTensors).strategy(z);
  let avg = averageBits(strategy, m.rowLengths);
  if (budget !== undefined) {
    const t = applyBudget(strategy, m.frozen, budget);
    strategy = t.strategy;
    avg = t.averageBits;
  }
  const bytes = encodeStrategy(strategy, { modelId: m.modelId, frozenWeightsHash: m.manifest.frozenWeightsHash });
  return { bytes, etag: etagOf(bytes), averageBits: avg };
}

const BUDGETS = [NaN, 2.25, 2.5, 3, 8, 2];

function budgetsFor(count: number): Float64Array<ArrayBuffer> {
  return Float64Array.from({ length: count }, (_, i) => BUDGETS[i % BUDGETS.length]!);
}

function expectCoreAnswers(m: ServedModel, zs: Float32Array, budgets: Float64Array, results: ComputeResult[]): void {
  const dim = m.hypernetConfig.zDim;
  results.forEach((r, i) => {
    if (!r.ok) throw r.error;
    const b = budgets[i]!;
    const want = coreAnswer(m, zs.subarray(i * dim, (i + 1) * dim), Number.isNaN(b) ? undefined : b);
    expect(Buffer.from(r.value.bytes).equals(Buffer.from(want.bytes))).toBe(true);
    expect(r.value.etag).toBe(want.etag);
    expect(r.value.averageBits).toBe(want.averageBits);
  });
}

describe('BitstreamWriter', () => {
  it("writes exactly core's encodeStrategy bytes", () => {
    let s = 3;
    const next = () => (s = (Math.imul(s, 69069) + 1) >>> 0);
    // Channel totals with every remainder mod 4 (the last payload byte is partly padding).
    for (const counts of [[1], [3, 1], [4, 4, 4], [5, 2, 7, 1], [64, 64, 256, 63]]) {
      const table: LevelTable = [2, 4, 6, 8];
      const meta = { modelId: 'shop.model-1', frozenWeightsHash: 'ab'.repeat(32) };
      const writer = new BitstreamWriter(meta, table, 0.125, counts);
      for (let t = 0; t < 5; t++) {
        const flat = Uint8Array.from({ length: counts.reduce((a, b) => a + b, 0) }, () => next() & 3);
        let at = 0;
        const strategy: Strategy = {
          levelTable: table,
          beta: 0.125,
          layers: counts.map((c, i) => ({ name: `l${i}`, levels: flat.slice(at, (at += c)) })),
        };
        expect(Buffer.from(writer.encode(flat)).equals(Buffer.from(encodeStrategy(strategy, meta)))).toBe(true);
      }
    }
  });
});

describe('StrategyCompute', () => {
  it('answers every z (mixed budgets, both kernels, chord and custom) with the bytes, ETag and average bits of the core path', () => {
    for (const m of [model, custom]) {
      for (const kernel of ['wasm', 'js'] as const) {
        const compute = new StrategyCompute({ ...m.computeSpec, kernel });
        for (const n of [1, 5, 70]) {
          const zs = randomZ(n, m.hypernetConfig.zDim, 100 + n);
          const budgets = budgetsFor(n);
          expectCoreAnswers(m, zs, budgets, compute.answer(zs, budgets, n));
        }
      }
    }
  });

  it('serves an off-level model (levels 0/3/4/5): core bytes, version 1, off channels in the stream, T down to switching channels off', () => {
    for (const kernel of ['wasm', 'js'] as const) {
      const compute = new StrategyCompute({ ...gate.computeSpec, kernel });
      const n = 24;
      const zs = randomZ(n, gate.hypernetConfig.zDim, 400);
      const budgets = Float64Array.from({ length: n }, (_, i) => [NaN, 4, 3, 2, 0.5, 0][i % 6]!);
      const results = compute.answer(zs, budgets, n);
      expectCoreAnswers(gate, zs, budgets, results);
      results.forEach((r, i) => {
        if (!r.ok) throw r.error;
        const d = decodeStrategy(r.value.bytes, { modelId: 'gate-m' });
        expect(r.value.bytes[4]).toBe(1);
        expect(d.strategy.levelTable).toEqual([0, 3, 4, 5]);
        const off = d.strategy.layers.reduce((sum, l) => sum + l.levels.filter((v) => v === 0).length, 0);
        expect(off, `z ${i}`).toBeGreaterThan(0);
        // Below 3 bits on average only switching channels off meets the budget.
        if (budgets[i]! < 3) expect(r.value.averageBits).toBeLessThanOrEqual(budgets[i]!);
      });
    }
  });

  it('fails a non-finite z alone with a 422 unprocessable-z', () => {
    const dim = model.hypernetConfig.zDim;
    const zs = randomZ(3, dim, 7);
    zs[dim + 2] = NaN;
    const results = model.compute.answer(zs, budgetsFor(3), 3);
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    const bad = results[1]!;
    expect(!bad.ok && bad.error).toBeInstanceOf(ApiError);
    expect(!bad.ok && (bad.error as ApiError).statusCode).toBe(422);
    expect(!bad.ok && bad.error.message).toMatch(/z\[2\] is not finite/);
  });
});

describe('ComputePool', () => {
  let pool: ComputePool;
  const workerErrors: Error[] = [];
  beforeAll(async () => {
    pool = await ComputePool.start([model.computeSpec, custom.computeSpec], 2, (e) => workerErrors.push(e));
  });
  afterAll(async () => pool.close());

  it('answers batches on its worker threads exactly as the main thread does', async () => {
    expect(pool.threads).toHaveLength(2);
    const runs = [model, custom, model].map(async (m, j) => {
      const n = 9 + j;
      const zs = randomZ(n, m.hypernetConfig.zDim, 40 + j);
      const budgets = budgetsFor(n);
      // The pool takes ownership of the buffers it is given (they are transferred).
      const results = await pool.run(m.modelId, zs.slice(), budgets.slice(), n);
      expectCoreAnswers(m, zs, budgets, results);
    });
    await Promise.all(runs);
  });

  it('carries per-item errors back as 4xx ApiErrors', async () => {
    const dim = model.hypernetConfig.zDim;
    const zs = randomZ(2, dim, 8);
    zs[0] = Infinity;
    const results = await pool.run(model.modelId, zs, budgetsFor(2), 2);
    expect(results[1]!.ok).toBe(true);
    const bad = results[0]!;
    expect(!bad.ok && bad.error).toBeInstanceOf(ApiError);
    expect(!bad.ok && [(bad.error as ApiError).statusCode, (bad.error as ApiError).code]).toEqual([422, 'UNPROCESSABLE_Z']);
  });

  it('answers 503 compute-unavailable for the batch of a worker that dies, replaces the worker and goes on', async () => {
    const dim = model.hypernetConfig.zDim;
    const before = pool.threads;
    pool.crashNextBatch();
    const error = await pool.run(model.modelId, randomZ(3, dim, 1), budgetsFor(3), 3).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ApiError);
    expect([(error as ApiError).statusCode, (error as ApiError).code]).toEqual([503, 'COMPUTE_UNAVAILABLE']);
    expect(workerErrors.at(-1)?.message).toMatch(/fault injection/);
    // Later batches are answered (by the survivor or the replacement), and the pool is whole again.
    const zs = randomZ(4, dim, 2);
    const budgets = budgetsFor(4);
    expectCoreAnswers(model, zs, budgets, await pool.run(model.modelId, zs.slice(), budgets.slice(), 4));
    for (let t = 0; t < 200 && pool.threads.length < 2; t++) await new Promise((r) => setTimeout(r, 25));
    expect(pool.threads).toHaveLength(2);
    expect(pool.threads.filter((w) => before.includes(w))).toHaveLength(1);
  });

  it('close() finishes the batches already given to it, then stops the threads and refuses more', async () => {
    const own = await ComputePool.start([model.computeSpec], 1);
    const dim = model.hypernetConfig.zDim;
    const running = [1, 2, 3].map((j) => own.run(model.modelId, randomZ(20, dim, j), budgetsFor(20), 20));
    const closed = own.close();
    const results = await Promise.all(running);
    expect(results.flat().every((r) => r.ok)).toBe(true);
    await closed;
    expect(own.threads).toHaveLength(0);
    const after = await own.run(model.modelId, randomZ(1, dim, 4), budgetsFor(1), 1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((after as ApiError).statusCode).toBe(503);
    expect((after as ApiError).code).toBe('SHUTTING_DOWN');
  });

  it('fails to start, rather than serve half-configured, when a worker cannot build its models', async () => {
    const broken = { ...model.computeSpec, hypernetTensors: new Map() };
    await expect(ComputePool.start([broken], 1)).rejects.toThrow(/missing tensor/);
  });
});
