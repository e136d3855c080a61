// The real training path writes frozen-pretrained (and Base) artifacts whose manifest pins the
// shipped layer weights, and the strategy server accepts the pretrained one. Tiny data, a few steps.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServedModel } from '../../src/cloud/artifacts.ts';
import { channelRangesFromWeights } from '../../src/core/budget.ts';
import { generateFrozenWeights, hashFrozenWeights, shippedFrozenWeights } from '../../src/core/frozen.ts';
import { parseManifest, resolveFrozenWeights } from '../../src/core/manifest.ts';
import type { SplitDataset } from '../../src/data/types.ts';
import { initBackend } from '../../src/model/backend.ts';
import { runTraining, type RunOptions } from '../../src/model/chord/run.ts';
import { readArtifact } from '../../src/model/export.ts';
import { cyclicSplit, tinyRunOptions } from '../fixtures/tiny-training.ts';

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = mkdtempSync(join(tmpdir(), 'chord-shipped-train-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The fixture's tiny run, one epoch, no budget sweep. */
const options = (over: Partial<RunOptions>): RunOptions => tinyRunOptions(dir, { seed: 5, epochs: 1, budgets: [], ...over });
/** 24 users over 12 items. */
const tinySplit = (): SplitDataset => cyclicSplit(24, 12);

describe('training writes shipped-weights manifests', () => {
  it('base and frozen-pretrained chord: frozenWeights shipped, hash of the shipped weights; the server loads the chord one', async () => {
    const base = await runTraining(options({ method: 'base', out: join(dir, 'base') }), tinySplit());
    const baseArt = readArtifact(base.artifactDir);
    expect(baseArt.manifest.frozenWeights).toBe('shipped');
    const baseWeights = shippedFrozenWeights(baseArt.manifest.layers, baseArt.backbone)!;
    expect(baseArt.manifest.frozenWeightsHash).toBe(await hashFrozenWeights(baseWeights));

    const pre = await runTraining(options({ init: 'pretrained', pretrainedDir: join(dir, 'base'), out: join(dir, 'pre') }), tinySplit());
    const manifest = parseManifest(JSON.parse(readFileSync(join(pre.artifactDir, 'manifest.json'), 'utf8')));
    expect(manifest.frozenWeights).toBe('shipped');
    const preArt = readArtifact(pre.artifactDir);
    const frozen = await resolveFrozenWeights(manifest, preArt.backbone);
    // The Base run's best weights, frozen: not the seed's.
    expect(frozen.map((l) => Array.from(l.weights))).toEqual(baseWeights.map((l) => Array.from(l.weights)));
    expect(Array.from(frozen[0]!.weights)).not.toEqual(Array.from(generateFrozenWeights(manifest)[0]!.weights));

    const served = await loadServedModel(pre.artifactDir);
    expect(served.manifest.frozenWeightsHash).toBe(manifest.frozenWeightsHash);
    const l = frozen[3]!;
    expect(Array.from(served.frozen[3]!.ranges)).toEqual(Array.from(channelRangesFromWeights(l.weights, l.spec.outChannels, l.spec.rowLength)));
  }, 120_000);
});
