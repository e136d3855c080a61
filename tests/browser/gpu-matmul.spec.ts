import { expect, test } from '@playwright/test';
import { openPageForEachTest } from './open-page.ts';
import type { MatmulCase } from './pages/gpu.ts';

openPageForEachTest('gpu');

// |y_gpu - y_ref| <= TOL * (sum_k |x w| + |b|): relative to the magnitude the f32 sum works with,
// so outputs that cancel to near zero are not held to an impossible relative bound.
const TOL = 1e-5;

type Result = Awaited<ReturnType<Window['chordGpu']['matmulParity']>>['results'][number];

function expectClose(results: Result[]): void {
  for (const r of results) {
    const label = `M${r.M} K${r.K} N${r.N} bits ${r.bits}`;
    expect(r.outputs, label).toBe(r.M * r.N);
    expect(r.refAbsMax, label).toBeGreaterThan(0);
    expect(r.maxRelErr, label).toBeLessThanOrEqual(TOL);
    expect(r.sentinelsIntact, `${label}: wrote outside its outputs`).toBe(r.sentinelsTotal);
  }
}

test('matmul: every single width 1..8 matches core dequantized weights, odd shapes', async ({ page }) => {
  const cases: MatmulCase[] = [];
  const shapes: [number, number, number][] = [[1, 64, 64], [3, 7, 5], [17, 100, 33], [50, 64, 256], [5, 257, 19], [2, 1, 3]];
  for (let bits = 1; bits <= 8; bits++) {
    const [M, K, N] = shapes[bits % shapes.length]!;
    cases.push({ M, K, N, bits, seed: 100 + bits, bias: bits % 2 === 0 });
  }
  const { results } = await page.evaluate((c) => window.chordGpu.matmulParity(c), cases);
  expect(results.map((r) => r.widths)).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((b) => [b]));
  expectClose(results);
});

test('matmul: mixed widths in one layer (one group per width), M up to 50, real model shapes', async ({ page }) => {
  const cases: MatmulCase[] = [
    { M: 1, K: 64, N: 64, bits: 'mixed', seed: 1, bias: true },
    { M: 50, K: 64, N: 256, bits: 'mixed', seed: 2, bias: true }, // FFN in
    { M: 50, K: 256, N: 64, bits: 'mixed', seed: 3, bias: false }, // FFN out
    { M: 13, K: 336, N: 64, bits: 'mixed', seed: 4, bias: true }, // Caser fc1
    { M: 4, K: 31, N: 37, bits: 'mixed', seed: 5, bias: true },
  ];
  const { results } = await page.evaluate((c) => window.chordGpu.matmulParity(c), cases);
  for (const r of results.slice(1)) expect(r.widths.length).toBeGreaterThanOrEqual(6);
  expectClose(results);
});

test('matmul: x offset, y offset and row stride (writing into a wider activation buffer)', async ({ page }) => {
  const cases: MatmulCase[] = [
    { M: 6, K: 64, N: 64, bits: 'mixed', seed: 8, bias: true, xOffset: 64, yOffset: 64, yStride: 192 },
    { M: 9, K: 20, N: 11, bits: 3, seed: 9, bias: false, xOffset: 3, yOffset: 5, yStride: 13 },
  ];
  const { results } = await page.evaluate((c) => window.chordGpu.matmulParity(c), cases);
  for (const r of results) expect(r.sentinelsTotal).toBeGreaterThan(0);
  expectClose(results);
});

test('matmul: integer unpack is exact (codes) and weights equal core dequantization bit for bit', async ({ page }) => {
  // x = identity, so y[m, j] = W[j, m]; K = 37 crosses word boundaries for every width.
  const out = await page.evaluate(() => window.chordGpu.matmulExactness({ K: 37, N: 24, seed: 3 }));
  expect(out.map((o) => o.name)).toEqual(['codes', 'dequantized']);
  for (const o of out) {
    expect(o.compared).toBe(37 * 24);
    expect(o.first).toBeNull();
    expect(o.mismatches).toBe(0);
  }
});

test('matmul: off channels (0 bits) among widths 1..8 output their bias alone, bit for bit; nine width groups in one layer', async ({ page }) => {
  const cases: MatmulCase[] = [
    { M: 5, K: 64, N: 64, bits: 'mixed-off', seed: 21, bias: true },
    { M: 50, K: 64, N: 256, bits: 'mixed-off', seed: 22, bias: true },
    { M: 3, K: 37, N: 40, bits: 'mixed-off', seed: 23, bias: false },
    { M: 6, K: 64, N: 64, bits: 'mixed-off', seed: 24, bias: true, xOffset: 64, yOffset: 64, yStride: 192 },
    { M: 4, K: 33, N: 20, bits: 0, seed: 25, bias: true }, // every channel off: no words at all
  ];
  const { results } = await page.evaluate((c) => window.chordGpu.matmulParity(c), cases);
  expect(results[1]!.widths).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  expect(results[4]!.widths).toEqual([0]);
  for (const r of results) {
    expect(r.offOutputs, `seed ${r.seed}`).toBeGreaterThan(0);
    expect(r.offMismatches, `seed ${r.seed}: off outputs that are not the bias alone`).toBe(0);
  }
  expectClose(results);
});
