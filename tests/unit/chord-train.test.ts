/**
 * End to end on a tiny generated dataset: train a few steps, export the artifact directory, and
 * check that core's parsers and the strategy server's loader accept it, that its deployment-path
 * metrics are recorded, and that a run resumes from its checkpoint.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServedModel } from '../../src/cloud/artifacts.ts';
import { averageBits } from '../../src/core/allocation.ts';
import { Hypernet, parseHypernetConfig } from '../../src/core/hypernet.ts';
import { parseManifest } from '../../src/core/manifest.ts';
import { decodeTensorFile } from '../../src/core/tensor-file.ts';
import type { SplitDataset } from '../../src/data/types.ts';
import { initBackend } from '../../src/model/backend.ts';
import { chordBatch, chordExamples, disposeChordBatch, validationHistories } from '../../src/model/chord/data.ts';
import { prepareDeployment, rankDeployment, userStrategy } from '../../src/model/chord/deployed.ts';
import { evaluateUsers, modelScorer } from '../../src/model/chord/evaluate.ts';
import { trainStep } from '../../src/model/train.ts';
import type { ChordMethod } from '../../src/core/methods.ts';
import { CHORD_DEFAULTS, createChordModel } from '../../src/model/chord/model.ts';
import { generateFrozenWeights } from '../../src/core/frozen.ts';
import { loadTensorSet } from '../../src/model/checkpoint.ts';
import { Adam } from '../../src/model/optim.ts';
import { createSasrec } from '../../src/model/sasrec.ts';
import { runTraining, type RunOptions } from '../../src/model/chord/run.ts';
import { readArtifact } from '../../src/model/export.ts';
import { cyclicSplit, tinyRunOptions } from '../fixtures/tiny-training.ts';

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'chord-train-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The tiny CHORD run of the fixture, in this file's temp directory. */
const options = (over: Partial<RunOptions>): RunOptions => tinyRunOptions(dir, over);
/** 24 users over 12 items, 12 clicks each. */
const tinySplit = (): SplitDataset => cyclicSplit(24, 12);

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

describe('train + export (SASRec, chord)', () => {
  it('writes an artifact that core and the strategy server accept, with deployment-path metrics', async () => {
    const lines: string[] = [];
    const result = await runTraining(options({ log: (l) => lines.push(l) }), tinySplit());
    const art = result.artifactDir;
    expect(art.endsWith('sasrec-tiny-chord-b0125-l2468-s3')).toBe(true);
    for (const f of ['manifest.json', 'backbone.json', 'backbone.bin', 'gru.json', 'gru.bin', 'hypernet.json', 'hyper.json', 'hyper.bin', 'training.json']) {
      expect(existsSync(join(art, f))).toBe(true);
    }
    const manifest = parseManifest(readJson(join(art, 'manifest.json')));
    expect(manifest.userDim).toBe(8);
    expect(manifest.numItems).toBe(12);
    const config = parseHypernetConfig(readJson(join(art, 'hypernet.json')));
    expect(config.layers.map((l) => l.name)).toEqual(manifest.layers.map((l) => l.name));
    const hyper = decodeTensorFile(readJson(join(art, 'hyper.json')), new Uint8Array(readFileSync(join(art, 'hyper.bin'))));
    const backbone = decodeTensorFile(readJson(join(art, 'backbone.json')), new Uint8Array(readFileSync(join(art, 'backbone.bin'))));
    // A trained artifact keeps its item table in float32 (manifest version 1): its metrics, and every
    // re-evaluation of it, rank with the table as trained.
    expect(manifest.version).toBe(1);
    expect(manifest.itemTable).toBeUndefined();
    expect(existsSync(join(art, 'item_emb.q8'))).toBe(false);
    expect(backbone.get('item_emb')!.shape).toEqual([13, 64]);
    expect(backbone.has('block0.attn.q')).toBe(false); // frozen weights come from the seed, not the file
    const gru = decodeTensorFile(readJson(join(art, 'gru.json')), new Uint8Array(readFileSync(join(art, 'gru.bin'))));
    expect(gru.get('gru.weight_hh')!.shape).toEqual([24, 8]);
    new Hypernet(config, hyper);

    const served = await loadServedModel(art); // the strategy server's checks (hash, shapes, layer match)
    expect(served.modelId).toBe(manifest.modelId);

    const training = readJson(join(art, 'training.json')) as Record<string, any>;
    expect(training.method).toBe('chord');
    expect(training.epochs.run).toBe(2);
    for (const split of ['valid', 'test']) {
      for (const view of ['masked', 'unmasked']) {
        for (const k of ['ndcg5', 'ndcg10', 'hr5', 'hr10']) expect(training.metrics[split][view][k]).toBeGreaterThanOrEqual(0);
      }
    }
    // Γ at β = 0.125 plus Λ: ~3 bits on average; T at 2.5 brings it down to the budget.
    expect(training.metrics.test.averageBits).toBeGreaterThan(2.8);
    expect(training.metrics.test.averageBits).toBeLessThan(3.6);
    expect(training.metrics.testAtBudget['2.5'].averageBits).toBeLessThanOrEqual(2.5);
    // HR@10 of 12 items masks all but a few: any working ranking is far above zero.
    expect(training.metrics.valid.unmasked.hr10).toBeGreaterThan(0.5);
    expect(lines.some((l) => l.startsWith('epoch 2'))).toBe(true);
    // The deployment-path validation equals the training-side validation of the best epoch up to
    // ranking ties (f32 vs f64 arithmetic): at most one user of 24 may differ.
    expect(Math.abs(training.metrics.valid.unmasked.hr10 - result.loop.bestValid!.unmasked.hr10)).toBeLessThanOrEqual(1 / 24 + 1e-9);

    // Different users get different strategies from the shipped hypernet.
    const dep = await prepareDeployment(readArtifact(art));
    const data = tinySplit();
    const strategies = new Set(data.train.map((h) => userStrategy(dep, h, { gruWindow: 6 }).layers.map((l) => l.levels.join('')).join('|')));
    expect(strategies.size).toBeGreaterThan(1);

    // A user whose strategy equals the previous user's reuses the quantized weights: ranking all
    // users in one pass equals ranking each alone (a fresh quantization), with their own strategies
    // and with everyone at user 0's.
    const set = validationHistories(data);
    for (const strategyOf of [(u: number) => u, () => 0]) {
      const together = rankDeployment(dep, set, { gruWindow: 6, strategyUser: strategyOf });
      data.train.forEach((history, u) => {
        const one = { histories: [history], targets: set.targets.subarray(u, u + 1) };
        const alone = rankDeployment(dep, one, { gruWindow: 6, strategyHistory: () => data.train[strategyOf(u)]! });
        const at = together.users.indexOf(u);
        expect([alone.unmasked[0], alone.masked[0]]).toEqual([together.unmasked[at], together.masked[at]]);
      });
    }
  }, 120_000);

  it('a run killed after epoch 1 resumes to exactly what an uninterrupted run trains, checkpoints and ships', async () => {
    const straight = await runTraining(options({ out: join(dir, 'straight'), epochs: 3 }), tinySplit());
    const out = join(dir, 'resume');
    const kill = (l: string) => {
      if (l.startsWith('epoch 1 ')) throw new Error('killed'); // logged after epoch 1's checkpoint
    };
    await expect(runTraining(options({ out, epochs: 3, log: kill }), tinySplit())).rejects.toThrow('killed');
    const lines: string[] = [];
    const resumed = await runTraining(options({ out, epochs: 3, resume: true, log: (l) => lines.push(l) }), tinySplit());
    expect(lines[1]).toMatch(/^resumed from .* after epoch 1/);
    expect(lines.filter((l) => l.startsWith('epoch '))).toHaveLength(2);
    expect(resumed.loop.epochsRun).toBe(3);
    const numbers = (r: typeof straight) => ({
      ...r.loop,
      meanStepSeconds: undefined,
      meanStepCpuSeconds: undefined,
      history: r.loop.history.map((e) => ({ ...e, trainSeconds: undefined, trainCpuSeconds: undefined, evalSeconds: undefined })),
      metrics: r.training['metrics'],
    });
    expect(numbers(resumed)).toEqual(numbers(straight));
    for (const f of ['last.bin', 'best.bin', 'optimizer.bin']) {
      expect(readFileSync(join(out, 'checkpoint', f)).equals(readFileSync(join(dir, 'straight', 'checkpoint', f))), f).toBe(true);
    }
    for (const f of ['backbone.bin', 'gru.bin', 'hyper.bin']) {
      expect(readFileSync(join(resumed.artifactDir, f)).equals(readFileSync(join(straight.artifactDir, f))), f).toBe(true);
    }

    // --watch-test records the test ranking after every epoch and changes nothing trained or selected.
    const watched = await runTraining(options({ out: join(dir, 'watched'), epochs: 3, watchTest: true }), tinySplit());
    const history = watched.training['history'] as Array<{ watchedTest?: { unmasked: { ndcg10: number } } }>;
    expect(history.map((e) => typeof e.watchedTest?.unmasked.ndcg10)).toEqual(['number', 'number', 'number']);
    const unwatched = (r: typeof straight) => {
      const n = numbers(r);
      return { ...n, history: n.history.map((e) => ({ ...e, watchedTest: undefined })) };
    };
    expect(unwatched(watched)).toEqual(unwatched(straight));
    expect(readFileSync(join(dir, 'watched', 'checkpoint', 'best.bin')).equals(readFileSync(join(dir, 'straight', 'checkpoint', 'best.bin')))).toBe(true);
  }, 120_000);
});

describe('other methods and backbones', () => {
  it('quant w3a3: a servable artifact whose hypernet gives every user the uniform 3-bit strategy', async () => {
    const result = await runTraining(options({ method: 'quant', activationBits: 3 }), tinySplit());
    const art = readArtifact(result.artifactDir);
    expect(art.hypernet!.config.levelTable[0]).toBe(3);
    const hn = new Hypernet(art.hypernet!.config, art.hypernet!.tensors);
    const s = hn.strategy(Float32Array.from({ length: 8 }, (_, i) => i / 8 - 0.5));
    expect(averageBits(s, art.manifest.layers.map((l) => l.rowLength))).toBe(3);
    expect((result.training as any).metrics.test.averageBits).toBe(3);
    expect((result.training as any).options.activationBits).toBe(3);
    await loadServedModel(result.artifactDir);
  }, 120_000);

  it('Caser CHORD gating (levels 0/3/4/5, β 0.375): each user gets switched-off channels, and it trains and evaluates through the deployment path', async () => {
    const result = await runTraining(
      options({ backbone: 'caser', method: 'chord', maxLen: 5, budgets: [], levelTable: [0, 3, 4, 5], beta: 0.375, out: join(dir, 'gate') }),
      tinySplit(),
    );
    const art = readArtifact(result.artifactDir);
    expect(art.hypernet!.config.levelTable).toEqual([0, 3, 4, 5]);
    const hn = new Hypernet(art.hypernet!.config, art.hypernet!.tensors);
    const s = hn.strategy(Float32Array.from({ length: 8 }, (_, i) => Math.sin(i)));
    const levels = s.layers.flatMap((l) => Array.from(l.levels));
    const offShare = levels.filter((v) => v === 0).length / levels.length;
    // Γ puts 25% of every layer's channels on level 0; Λ moves whole layers one level up or down.
    expect(offShare).toBeGreaterThan(0);
    expect(offShare).toBeLessThan(0.6);
    const bits = (result.training as any).metrics.test.averageBits as number;
    expect(bits).toBeGreaterThan(2);
    expect(bits).toBeLessThan(4.5);
    expect(Number.isFinite(result.test.unmasked.ndcg10)).toBe(true);
  }, 120_000);

  it("--chord-examples trains SASRec Quant on CHORD's examples (more, shorter-target windows), records it, and refuses other methods", async () => {
    const plain = await runTraining(options({ method: 'quant', budgets: [], epochs: 1, zTargets: 2, batchSize: 4, maxStepsPerEpoch: 1000, out: join(dir, 'quant-plain') }), tinySplit());
    const chordEx = await runTraining(options({ method: 'quant', budgets: [], epochs: 1, zTargets: 2, batchSize: 4, maxStepsPerEpoch: 1000, chordExamples: true, out: join(dir, 'quant-chord-ex') }), tinySplit());
    expect(chordEx.loop.history[0]!.steps).toBeGreaterThan(plain.loop.history[0]!.steps);
    const state = JSON.parse(readFileSync(join(dir, 'quant-chord-ex', 'checkpoint', 'state.json'), 'utf8'));
    expect(state.settings.chordExamples).toBe(true);
    const plainState = JSON.parse(readFileSync(join(dir, 'quant-plain', 'checkpoint', 'state.json'), 'utf8'));
    expect(plainState.settings.chordExamples).toBeUndefined();
    // Another model than plain Quant: its own artifact id.
    expect(basename(chordEx.artifactDir)).toBe(`${basename(plain.artifactDir).replace(/-s(\d+)$/, '-examples-s$1')}`);
    await expect(runTraining(options({ method: 'chord', chordExamples: true, out: join(dir, 'chord-ex') }), tinySplit())).rejects.toThrow(/--chord-examples/);
  }, 120_000);

  it('Caser weighted: ships user_emb_mean instead of the per-user table, and evaluates through core', async () => {
    const result = await runTraining(options({ backbone: 'caser', method: 'weighted', maxLen: 5, budgets: [] }), tinySplit());
    const art = readArtifact(result.artifactDir);
    expect(art.backbone.has('user_emb')).toBe(false);
    expect(art.backbone.get('user_emb_mean')!.shape).toEqual([64]);
    expect(art.backbone.get('out_emb')!.shape).toEqual([13, 128]);
    expect(art.hypernet!.config.method).toBe('weighted');
    expect(art.hypernet!.config.lambda).toEqual({ up: 0, down: 0 });
    expect(result.test.unmasked.hr10).toBeGreaterThanOrEqual(0);
    await loadServedModel(result.artifactDir);
  }, 120_000);

  it("Caser's default user row is shared: the shipped user_emb_mean is that trained row, and the settings say so", async () => {
    const shared = await runTraining(options({ backbone: 'caser', method: 'base', maxLen: 5, budgets: [], out: join(dir, 'caser-shared') }), tinySplit());
    const state = readJson(join(dir, 'caser-shared', 'checkpoint', 'state.json')) as { settings: Record<string, unknown> };
    expect(state.settings['caserUser']).toBe('shared');
    const best = loadTensorSet(join(dir, 'caser-shared', 'checkpoint'), 'best').get('user_emb')!;
    expect(best.shape).toEqual([1, 64]);
    expect(Array.from(readArtifact(shared.artifactDir).backbone.get('user_emb_mean')!.data)).toEqual(Array.from(best.data));
    // 'table' keeps the paper's per-user rows and the settings it had before the option existed.
    await runTraining(options({ backbone: 'caser', method: 'base', maxLen: 5, budgets: [], caserUser: 'table', out: join(dir, 'caser-table') }), tinySplit());
    const tableState = readJson(join(dir, 'caser-table', 'checkpoint', 'state.json')) as { settings: Record<string, unknown> };
    expect('caserUser' in tableState.settings).toBe(false);
  }, 120_000);

  it('base, then chord on the frozen pretrained base backbone: both ship their layer weights', async () => {
    const baseOut = join(dir, 'base');
    const result = await runTraining(options({ method: 'base', budgets: [], out: baseOut }), tinySplit());
    const art = readArtifact(result.artifactDir);
    expect(art.hypernet).toBeUndefined();
    const trained = art.backbone.get('block1.ffn.out')!;
    expect(trained.shape).toEqual([64, 256]);
    expect(result.test.averageBits).toBeUndefined();

    const pre = await runTraining(options({ init: 'pretrained', pretrainedDir: baseOut, out: join(dir, 'pre'), budgets: [] }), tinySplit());
    expect(pre.artifactDir.endsWith('-pre-s3')).toBe(true);
    const preArt = readArtifact(pre.artifactDir);
    // The frozen weights are the Base run's best ones, shipped because no seed can regenerate them.
    const best = readArtifact(result.artifactDir).backbone.get('block1.ffn.out')!.data;
    expect(Array.from(preArt.backbone.get('block1.ffn.out')!.data)).toEqual(Array.from(best));
    const dep = await prepareDeployment(preArt);
    expect(dep.shipped).toBe(true);
    expect(pre.test.averageBits).toBeGreaterThan(2.5);
  }, 120_000);
});

describe('memory', () => {
  for (const method of ['quant', 'chord'] as ChordMethod[]) {
    it(`${method}: training steps and evaluation leave no tensors behind`, () => {
      const data = tinySplit();
      const bb = createSasrec({ numItems: 12, numUsers: 24, maxLen: 8, hidden: 8, heads: 2, blocks: 1, ffn: 16, dropout: 0.1 });
      const frozen = new Map(generateFrozenWeights({ seed: 1, layers: bb.layers() }).map((l) => [l.spec.name, l.weights]));
      const model = createChordModel(bb, frozen, { ...CHORD_DEFAULTS, method, zDim: 4, hyperHidden: 4, gruWindow: 6, seed: 1 });
      const adam = new Adam({ lr: 1e-3 });
      const ex = chordExamples(bb, data.train, 0, { gruLen: 6, zTargets: 4 });
      const step = () => {
        const batch = chordBatch(ex, [0, 1, 2, 3]);
        trainStep(model, adam, batch, { training: true, seed: () => 1 });
        disposeChordBatch(batch);
      };
      const valid = validationHistories(data);
      step(); // creates the optimizer moments
      const before = tf.memory().numTensors;
      step();
      evaluateUsers(valid, 12, modelScorer(model, valid, 6), 8);
      expect(tf.memory().numTensors).toBe(before);
      adam.dispose();
      model.dispose();
    });
  }
});
