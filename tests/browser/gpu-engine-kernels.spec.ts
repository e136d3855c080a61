import { expect, test } from '@playwright/test';
import { openPageForEachTest } from './open-page.ts';

// Each engine kernel against src/core (or a transcription of its private loops) on random inputs.
openPageForEachTest('engine');

// f32 kernels against f64 references, relative to the block's largest |value|.
const TOL = 1e-4;

type QuantParity = { compared: number; exact: number; nearTie: number; unexplained: number; firstUnexplained: string | null };

function expectQuantParity(q: QuantParity | null, label: string): void {
  expect(q, label).not.toBeNull();
  expect(q!.unexplained, `${label}: ${q!.firstUnexplained}`).toBe(0);
  expect(q!.exact + q!.nearTie, label).toBe(q!.compared);
  // Near-ties (f32 quotient within 1e-4 of .5) are rare; a kernel off by a step would be everywhere.
  expect(q!.nearTie, label).toBeLessThanOrEqual(Math.ceil(q!.compared * 1e-3));
}

test('quantize_rows: equals core quantizeActivationRows on edge rows, every width 1..8', async ({ page }) => {
  for (let bits = 1; bits <= 8; bits++) {
    const width = [37, 64, 256, 320, 5, 336, 100, 1][bits - 1]!;
    const r = await page.evaluate((o) => window.chordEngine.quantizeKernel(o), { seed: bits, width, rows: 14, bits });
    expect(r.compared).toBe(14 * width);
    expectQuantParity(r, `bits ${bits} width ${width}`);
  }
});

test('layer_norm: rows, last row only, with per-token quantized output and input', async ({ page }) => {
  const plain = await page.evaluate(() => window.chordEngine.layerNormKernel({ seed: 1, rows: 23, width: 64 }));
  expect(plain.norm.compared).toBe(23 * 64);
  expect(plain.norm.maxRelErr).toBeLessThanOrEqual(TOL);
  const wide = await page.evaluate(() => window.chordEngine.layerNormKernel({ seed: 2, rows: 5, width: 200 }));
  expect(wide.norm.maxRelErr).toBeLessThanOrEqual(TOL);
  const last = await page.evaluate(() => window.chordEngine.layerNormKernel({ seed: 3, rows: 17, width: 64, lastOnly: true }));
  expect(last.norm.compared).toBe(64);
  expect(last.norm.maxRelErr).toBeLessThanOrEqual(TOL);
  expect(last.untouched).toBe(last.expectedUntouched);
  const quant = await page.evaluate(() => window.chordEngine.layerNormKernel({ seed: 4, rows: 31, width: 64, bits: 3 }));
  expect(quant.norm.maxRelErr).toBeLessThanOrEqual(TOL);
  expectQuantParity(quant.quantOut, 'quantized LN output');
  expectQuantParity(quant.quantIn, 'quantized LN input');
});

test('embed_positions: SASRec (scaled items + positions) and Caser (padding rows zero)', async ({ page }) => {
  for (const withPositions of [true, false]) {
    const r = await page.evaluate((w) => window.chordEngine.embedKernel({ seed: 5, withPositions: w }), withPositions);
    expect(r.refAbsMax).toBeGreaterThan(0);
    expect(r.maxRelErr).toBeLessThanOrEqual(1e-6);
  }
});

test('matmul_fused: Q/K/V in one dispatch, bias+ReLU, residual in place, row modes and strides', async ({ page }) => {
  for (const n of [50, 1, 17]) {
    const r = await page.evaluate((nn) => window.chordEngine.matmulKernel({ seed: 10 + nn, n: nn }), n);
    // Q on its last row, K, V, out on n rows, ffn.in on n rows, the strided job 16 x 4.
    expect(r.compared).toBe(64 + n * (3 * 64 + 256) + 64);
    expect(r.maxRelErr).toBeLessThanOrEqual(1e-5);
    expect(r.sentinels).toBe(r.sentinelsExpected);
    for (const w of r.widths.slice(0, 5)) expect(w).toBeGreaterThanOrEqual(3);
  }
});

test('attention_causal: all rows and last row, several heads', async ({ page }) => {
  const cases = [
    { seed: 1, n: 50, d: 64, heads: 2, lastOnly: false },
    { seed: 2, n: 50, d: 64, heads: 2, lastOnly: true },
    { seed: 3, n: 1, d: 64, heads: 2, lastOnly: false },
    { seed: 4, n: 13, d: 48, heads: 3, lastOnly: false },
    { seed: 5, n: 90, d: 32, heads: 1, lastOnly: false },
    { seed: 6, n: 200, d: 64, heads: 4, lastOnly: true },
  ];
  for (const c of cases) {
    const r = await page.evaluate((o) => window.chordEngine.attentionKernel(o), c);
    expect(r.attention.compared).toBe((c.lastOnly ? 1 : c.n) * c.d);
    expect(r.attention.maxRelErr, JSON.stringify(c)).toBeLessThanOrEqual(TOL);
    expect(r.untouched).toBe(r.expectedUntouched);
  }
});

test('caser_conv_v / caser_conv_h: every height, mixed widths, against the Caser loops', async ({ page }) => {
  for (const seed of [1, 2]) {
    const r = await page.evaluate((s) => window.chordEngine.caserConvKernels({ seed: s }), seed);
    expect(r.convV.compared).toBe(4 * 64);
    expect(r.convH.compared).toBe(16 * 5);
    expect(r.convV.maxRelErr).toBeLessThanOrEqual(TOL);
    expect(r.convH.maxRelErr).toBeLessThanOrEqual(TOL);
    expect(r.positiveFeatures).toBeGreaterThan(10); // the max-pool + ReLU path is exercised
    expect(Math.max(...r.widths)).toBeGreaterThanOrEqual(3);
  }
});

test('score_candidates: catalogue ids (with / without bias) and shop embeddings', async ({ page }) => {
  for (const c of [
    { seed: 1, dim: 64, count: 100, withBias: false },
    { seed: 2, dim: 128, count: 257, withBias: true },
    { seed: 3, dim: 7, count: 1, withBias: true },
  ]) {
    const r = await page.evaluate((o) => window.chordEngine.scoreKernel(o), c);
    expect(r.ids.compared).toBe(c.count);
    expect(r.ids.maxRelErr).toBeLessThanOrEqual(TOL);
    expect(r.embeddings.maxRelErr).toBeLessThanOrEqual(TOL);
  }
});

test('topk: identical to core topK, ties by index, NaN last, +0 == -0, ±Infinity', async ({ page }) => {
  const fixed = [0.5, NaN, -0, 0, 2, 2, -Infinity, NaN, Infinity, 0.5, -1, 2];
  for (const k of [1, 5, 12]) {
    const r = await page.evaluate((o) => window.chordEngine.topkKernel(o), { scores: fixed, k });
    expect(r.mismatches, JSON.stringify(r)).toBe(0);
    expect(r.scoreBitsOk).toBe(true);
  }
  for (const c of [
    { seed: 1, count: 100, distinct: 100, k: 100 },
    { seed: 2, count: 100, distinct: 6, k: 30 },
    { seed: 3, count: 1000, distinct: 40, k: 1000 },
    { seed: 4, count: 65, distinct: 3, k: 64 },
    // Several chunks of 256 (a short last one), k below, at and above a chunk.
    { seed: 5, count: 3001, distinct: 50, k: 10 },
    { seed: 6, count: 3001, distinct: 3001, k: 256 },
    { seed: 7, count: 1500, distinct: 8, k: 300 },
  ]) {
    const r = await page.evaluate((o) => window.chordEngine.topkKernel({ scores: o, k: o.k }), c);
    expect(r.k).toBe(Math.min(c.k, c.count));
    expect(r.mismatches, JSON.stringify(r)).toBe(0);
    expect(r.scoreBitsOk).toBe(true);
  }
});
