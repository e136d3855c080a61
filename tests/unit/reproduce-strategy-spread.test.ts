/**
 * The reproduce report's strategy-spread diagnostic: seed means in the result rows, the markdown
 * table beside own vs another user's strategy, and the sidecar step over a real (tiny) artifact.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StrategySpread } from '../../src/core/strategy-spread.ts';
import { strategySpreads, type StrategySpreadSidecar } from '../../src/model/reproduce/diagnostics.ts';
import { layerBitsTable, strategySpreadTable } from '../../src/model/reproduce/markdown.ts';
import { aggregate } from '../../src/model/reproduce/report.ts';
import { finishedRun } from '../fixtures/reproduce-runs.ts';
import { expectCached, firstSidecarPass, tempRunDir } from '../fixtures/reproduce-sidecars.ts';

const spread = (pairDiffer: number, globalChannels: number, min: number, max: number): StrategySpread => ({
  users: 10,
  channels: 100,
  pairDiffer,
  globalChannels,
  averageBits: { min, mean: (min + max) / 2, max },
  // Two equal layers whose mean bits average to the model's mean.
  layers: [
    { name: 'b0.q', weightShare: 0.5, meanBits: min },
    { name: 'b0.k', weightShare: 0.5, meanBits: max },
  ],
});

const finished = new Map([
  finishedRun('sasrec-base-s1', 0.06),
  finishedRun('sasrec-quant-s1', 0.05),
  finishedRun('sasrec-custom-l2468-b0.125-s1', 0.04, {}, undefined, 0.03),
  finishedRun('sasrec-chord-l2468-b0.125-s1', 0.02, { '2.5': 0.01 }, undefined, 0.01),
  finishedRun('sasrec-chord-l2468-b0.125-s2', 0.04, { '2.5': 0.02 }, undefined, 0.05),
  finishedRun('sasrec-chord-l2468-b0.125-pre-s1', 0.05, {}, undefined, 0.045),
  finishedRun('sasrec-chord-l2468-b0.25-s1', 0.04, {}, undefined, 0.04), // an ablation: not in the table
]);
const spreads = new Map([
  ['sasrec-quant-s1', spread(0, 1, 3, 3)],
  ['sasrec-custom-l2468-b0.125-s1', spread(0.3, 0.1, 3, 3)],
  ['sasrec-chord-l2468-b0.125-s1', spread(0.2, 0.4, 2.9, 3.2)],
  ['sasrec-chord-l2468-b0.125-s2', spread(0.4, 0.2, 3.1, 3.4)],
  // frozen-pretrained CHORD has none
  ['sasrec-chord-l2468-b0.25-s1', spread(0.5, 0, 3, 3)],
]);

describe('strategy spread in the reproduce report', () => {
  it('averages the runs of a configuration into the unmasked rows at the trained bits, and only there', () => {
    const rows = aggregate(finished, { spreads });
    const row = (key: string, masked: boolean, budget: number | null = null) =>
      rows.find((r) => r.runs.includes(key) && r.masked === masked && r.deploy_budget === budget)!;
    const chord = row('sasrec-chord-l2468-b0.125-s1', false).strategy_spread!;
    expect(chord.pair_differ).toBeCloseTo(0.3, 10);
    expect(chord.global_channels).toBeCloseTo(0.3, 10);
    expect(chord.avg_bits_min).toBeCloseTo(3.0, 10);
    expect(chord.avg_bits_max).toBeCloseTo(3.3, 10);
    expect(chord.layers.map((l) => l.name)).toEqual(['b0.q', 'b0.k']);
    expect(chord.layers[0]!.weight_share).toBe(0.5);
    expect(chord.layers[0]!.mean_bits).toBeCloseTo(3.0, 10);
    expect(chord.layers[1]!.mean_bits).toBeCloseTo(3.3, 10);
    expect(row('sasrec-quant-s1', false).strategy_spread).toEqual({
      pair_differ: 0,
      global_channels: 1,
      avg_bits_min: 3,
      avg_bits_max: 3,
      layers: [
        { name: 'b0.q', weight_share: 0.5, mean_bits: 3 },
        { name: 'b0.k', weight_share: 0.5, mean_bits: 3 },
      ],
    });
    expect(row('sasrec-chord-l2468-b0.125-s1', true)).not.toHaveProperty('strategy_spread');
    expect(row('sasrec-chord-l2468-b0.125-s1', false, 2.5)).not.toHaveProperty('strategy_spread');
    expect(row('sasrec-base-s1', false)).not.toHaveProperty('strategy_spread');
    // Another user's strategy: on both protocols' trained-bits rows, when every run measured it.
    expect(row('sasrec-chord-l2468-b0.125-s1', false).others_strategy_ndcg10).toBeCloseTo(0.03, 10);
    expect(row('sasrec-chord-l2468-b0.125-s1', true).others_strategy_ndcg10).toBeCloseTo(0.06, 10);
    expect(row('sasrec-chord-l2468-b0.125-s1', false, 2.5)).not.toHaveProperty('others_strategy_ndcg10');
    expect(row('sasrec-quant-s1', false)).not.toHaveProperty('others_strategy_ndcg10');
    // A configuration where one seed lacks it gets no mean over the others.
    const partial = aggregate(finished, { spreads: new Map([['sasrec-chord-l2468-b0.125-s1', spread(0.2, 0.4, 2.9, 3.2)]]) });
    expect(partial.find((r) => r.runs.includes('sasrec-chord-l2468-b0.125-s1') && !r.masked)).not.toHaveProperty('strategy_spread');
    expect(aggregate(finished).every((r) => r.strategy_spread === undefined)).toBe(true);
  });

  it('tables the quantized headline methods and frozen-pretrained CHORD, own vs another user\'s strategy beside the spread', () => {
    const lines = strategySpreadTable(aggregate(finished, { spreads }));
    const body = lines.filter((l) => l.startsWith('| ') && !l.startsWith('| backbone'));
    expect(body).toEqual([
      '| sasrec | quant | 1 | 0.0000 | 1.0000 | 3.000–3.000 | 0.0500 / – | 0.1000 / – |',
      '| sasrec | custom | 1 | 0.3000 | 0.1000 | 3.000–3.000 | 0.0400 / 0.0300 | 0.0800 / 0.0600 |',
      '| sasrec | chord | 2 | 0.3000 | 0.3000 | 3.000–3.300 | 0.0300 / 0.0300 | 0.0600 / 0.0600 |',
      '| sasrec | chord (frozen-pretrained) | 1 | – | – | – | 0.0500 / 0.0450 | 0.1000 / 0.0900 |',
    ]);
    expect(lines).toContain('## How personal are the strategies?');
  });

  it("tables each layer's weight share and mean bits for the headline CHORD rows that have a spread, per backbone", () => {
    const lines = layerBitsTable(aggregate(finished, { spreads }));
    expect(lines).toContain('## Where Λ puts the bits');
    const table = lines.slice(lines.findIndex((l) => l.startsWith('| sasrec layer')));
    // Random-frozen CHORD only: frozen-pretrained has no spread, the β ablation is not a headline row,
    // and the methods without Λ (quant, custom) are not CHORD.
    expect(table).toEqual([
      '| sasrec layer | weight share | random-frozen (2 seeds) |',
      '|---|---|---|',
      '| b0.q | 0.500 | 3.00 |',
      '| b0.k | 0.500 | 3.30 |',
      // the runs' recorded average bits (finishedRun's 3.2), not a sum the table makes up
      '| all (avg bits) | 1.000 | 3.20 |',
    ]);
    expect(layerBitsTable(aggregate(finished))).toEqual([]);
  });
});

describe('strategySpreads: the sidecar step', () => {
  const tmp = tempRunDir('reproduce-strategy-spread-');

  it('measures the test users\' strategies of an artifact, caches them by artifact hash, and never writes in the run', async () => {
    // Base has no strategy: never evaluated, whatever its artifact.
    const pass = await firstSidecarPass(tmp(), strategySpreads, 'sasrec-base-s3');
    const { value: s, result, spec, diagnosticsDir } = pass;
    expect(s.users).toBe(24);
    const manifest = JSON.parse(readFileSync(join(result.artifactDir, 'manifest.json'), 'utf8')) as { layers: { name: string; outChannels: number }[] };
    expect(s.channels).toBe(manifest.layers.reduce((n, l) => n + l.outChannels, 0));
    expect(s.pairDiffer).toBeGreaterThanOrEqual(0);
    expect(s.pairDiffer).toBeLessThanOrEqual(1);
    expect(s.averageBits.min).toBeLessThanOrEqual(s.averageBits.mean);
    expect(s.averageBits.mean).toBeLessThanOrEqual(s.averageBits.max);
    // The strategies are the ones the run's own test evaluation used: their mean average bits are its, to the bit.
    expect(s.averageBits.mean).toBe(result.test.averageBits);
    // Per layer, as the manifest lists them; weighted by their shares they give the same mean.
    expect(s.layers.map((l) => l.name)).toEqual(manifest.layers.map((l) => l.name));
    expect(s.layers.reduce((t, l) => t + l.weightShare, 0)).toBeCloseTo(1, 12);
    expect(s.layers.reduce((t, l) => t + l.weightShare * l.meanBits, 0)).toBeCloseTo(s.averageBits.mean, 12);
    const sidecar = JSON.parse(readFileSync(join(diagnosticsDir, `${spec.key}.strategy-spread.json`), 'utf8')) as StrategySpreadSidecar;
    expect(sidecar.matchesTraining).toBe(true);
    expect(sidecar.spread).toEqual(s);
    expect(pass.line).toMatch(/^sasrec-chord-l2468-b0\.125-s3: strategy spread over 24 test users: /);
    // The history share's sidecar name stays free.
    expect(existsSync(join(diagnosticsDir, `${spec.key}.json`))).toBe(false);
    await expectCached(pass, strategySpreads);
  }, 120_000);
});
