import { expect, test } from '@playwright/test';
import { openPageForEachTest } from './open-page.ts';
import type { AdaptParityOptions } from './pages/gpu.ts';

openPageForEachTest('gpu', ['error', 'warning']);

type Report = Awaited<ReturnType<Window['chordGpu']['adaptParity']>>;

/** Every array of every layer in every round equals core's packLayer, byte for byte. */
function expectIdentical(report: Report, layerCount: number): Set<number> {
  const widths = new Set<number>();
  expect(report.rounds.length).toBeGreaterThan(0);
  for (const round of report.rounds) {
    expect(round.layers).toHaveLength(layerCount);
    for (const layer of round.layers) {
      expect(layer.first, `table ${round.table.join('/')}`).toBeNull();
      expect(layer.mismatches).toEqual({ words: 0, meta: 0, scale: 0, zero: 0, max: 0, position: 0, groups: 0 });
      // A layer whose every channel is off (0 bits) packs no words; any other packs some.
      if (layer.widths.some((w) => w !== 0)) expect(layer.comparedWords).toBeGreaterThan(0);
      else expect(layer.comparedWords).toBe(0);
      for (const w of layer.widths) widths.add(w);
    }
  }
  return widths;
}

test('adapt: edge-case channels match core packLayer byte for byte, widths 1..8, re-adapt in place', async ({ page }) => {
  const opts: AdaptParityOptions = { model: 'edge', seed: 11, tables: [[1, 3, 5, 7], [2, 4, 6, 8]] };
  const report = await page.evaluate((o) => window.chordGpu.adaptParity(o), opts);
  console.log(`adapter ${report.adapter}; adapt ms ${report.rounds.map((r) => r.adaptMs.toFixed(1)).join(', ')}`);
  const widths = expectIdentical(report, 9);
  expect([...widths].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  // The inputs really exercised half-to-even ties and the emulated-f64 fallback near them.
  expect(report.ties.exact).toBeGreaterThan(100);
  expect(report.ties.near).toBeGreaterThan(100);
  expect(report.sameBuffers).toBe(true);
});

test('adapt: edge-case channels, consecutive widths [1,2,3,4] then [5,6,7,8]', async ({ page }) => {
  const opts: AdaptParityOptions = { model: 'edge', seed: 29, tables: [[1, 2, 3, 4], [5, 6, 7, 8]] };
  const report = await page.evaluate((o) => window.chordGpu.adaptParity(o), opts);
  const widths = expectIdentical(report, 9);
  expect([...widths].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  expect(report.ties.exact).toBeGreaterThan(100);
});

test('adapt: steps recomputed from (min, max) equal core channelScale on adversarial ranges, widths 1..8', async ({ page }) => {
  // Ranges where f64 rounding of M - m decides the step, subnormal and huge ranges, ranges at
  // n * 2^k: the kernels store no step and recompute it, so readPacked's scale is that recomputation.
  for (const [seed, tables] of [[3, [[1, 3, 5, 7], [2, 4, 6, 8]]], [17, [[1, 2, 3, 4], [5, 6, 7, 8]]]] as const) {
    const opts: AdaptParityOptions = { model: 'scales', seed, tables: tables.map((t) => [...t] as [number, number, number, number]) };
    const report = await page.evaluate((o) => window.chordGpu.adaptParity(o), opts);
    const widths = expectIdentical(report, 4);
    expect([...widths].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  }
});

test('adapt: SASRec frozen weights (hidden 64, FFN 256), whole model in one submit', async ({ page }) => {
  const opts: AdaptParityOptions = { model: 'sasrec', seed: 2024, tables: [[2, 4, 6, 8], [1, 2, 3, 4]] };
  const report = await page.evaluate((o) => window.chordGpu.adaptParity(o), opts);
  console.log(`sasrec adapt ms ${report.rounds.map((r) => r.adaptMs.toFixed(1)).join(', ')}`);
  const widths = expectIdentical(report, 12);
  expect([...widths].sort()).toEqual([1, 2, 3, 4, 6, 8]);
  expect(report.sameBuffers).toBe(true);
});

test("adapt: 'fit' packs the same bytes into a words buffer sized exactly to each strategy", async ({ page }) => {
  const opts: AdaptParityOptions = { model: 'sasrec', seed: 2024, tables: [[2, 4, 6, 8], [1, 2, 3, 4], [8, 8, 8, 8]], wordCapacity: 'fit' };
  const report = await page.evaluate((o) => window.chordGpu.adaptParity(o), opts);
  expectIdentical(report, 12);
  for (const w of report.words) expect(w.bytes).toBe(w.used);
  // Three sizes, three buffers (the first replaces the estimate made before any strategy).
  expect(new Set(report.words.map((w) => w.bytes)).size).toBe(3);
  expect(report.generation).toBe(3);
  expect(report.sameBuffers).toBe(false);
});

test('adapt: Caser frozen weights (conv rows of 5..320, fc1 336)', async ({ page }) => {
  const opts: AdaptParityOptions = { model: 'caser', seed: 7, tables: [[2, 4, 6, 8]] };
  const report = await page.evaluate((o) => window.chordGpu.adaptParity(o), opts);
  expectIdentical(report, 7);
});

test('adapt: the emulated-f64 path alone also reproduces core (edge + SASRec, every weight)', async ({ page }) => {
  // The f32 fast path normally decides almost every code; this mode checks the fallback on all
  // weights, so a GPU whose f32 division is less accurate than SwiftShader's stays byte-exact.
  const edge: AdaptParityOptions = { model: 'edge', seed: 5, tables: [[1, 3, 5, 7], [2, 4, 6, 8]], exactPathOnly: true };
  expectIdentical(await page.evaluate((o) => window.chordGpu.adaptParity(o), edge), 9);
  const sasrec: AdaptParityOptions = { model: 'sasrec', seed: 77, tables: [[2, 4, 6, 8]], exactPathOnly: true };
  const report = await page.evaluate((o) => window.chordGpu.adaptParity(o), sasrec);
  console.log(`sasrec exact-path adapt ms ${report.rounds.map((r) => r.adaptMs.toFixed(1)).join(', ')}`);
  expectIdentical(report, 12);
});

test('adapt: off level (0 bits) matches core packLayer byte for byte (ranges (0, 0), no words), switched off and on in place', async ({ page }) => {
  // [0,3,4,5] first, then [2,4,6,8] over the same buffers (off channels get words and ranges back),
  // then [0,1,2,8] (stale words and ranges of the channels switched off again must not show).
  const edge: AdaptParityOptions = { model: 'edge', seed: 13, tables: [[0, 3, 4, 5], [2, 4, 6, 8], [0, 1, 2, 8]] };
  const report = await page.evaluate((o) => window.chordGpu.adaptParity(o), edge);
  const widths = expectIdentical(report, 9);
  expect([...widths].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 8]);
  // Layer edge8 is uniform at level 0 in round 0: every channel off.
  expect(report.rounds[0]!.layers[8]!.widths).toEqual([0]);
  expect(report.ties.exact).toBeGreaterThan(0);
  expect(report.sameBuffers).toBe(true);
  const scales: AdaptParityOptions = { model: 'scales', seed: 19, tables: [[0, 2, 4, 8]] };
  expect([...expectIdentical(await page.evaluate((o) => window.chordGpu.adaptParity(o), scales), 4)].sort()).toEqual([0, 2, 4, 8]);
});

test("adapt: SASRec with levels 0/3/4/5 (chord-gate), 'any' and 'fit' capacity, exact path too", async ({ page }) => {
  for (const extra of [{}, { wordCapacity: 'fit' as const }, { exactPathOnly: true }]) {
    const opts: AdaptParityOptions = { model: 'sasrec', seed: 2025, tables: [[0, 3, 4, 5], [2, 4, 6, 8]], ...extra };
    const report = await page.evaluate((o) => window.chordGpu.adaptParity(o), opts);
    expect([...expectIdentical(report, 12)].sort()).toEqual([0, 2, 3, 4, 5, 6, 8]);
    if (!('wordCapacity' in extra)) continue;
    for (const w of report.words) expect(w.bytes).toBe(w.used);
  }
});
