import { expect, test } from '@playwright/test';
import { openPageForEachTest } from './open-page.ts';

// Rerank latency of the GPU engine vs the CPU path in the same page. On SwiftShader the "GPU" is
// the CPU too, so the ratio only says what the WebGPU path costs there; the spec logs it and
// checks that both paths ran, not a speed-up.
openPageForEachTest('engine');

for (const backbone of ['sasrec', 'caser'] as const) {
  test(`benchmark ${backbone}: rerank of 100 candidates, top 10, GPU engine vs CPU path`, async ({ page }) => {
    const adapter = await page.evaluate(async () => {
      const info = (await navigator.gpu.requestAdapter())?.info;
      return [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' / ');
    });
    const r = await page.evaluate((b) => window.chordEngine.benchmark({ backbone: b, candidates: 100, k: 10, reps: 20 }), backbone);
    console.log(
      `${backbone} on ${adapter || 'unknown adapter'}: GPU ${r.gpuMs.toFixed(2)} ms, CPU ${r.cpuMs.toFixed(2)} ms, GPU/CPU = ${r.ratio.toFixed(2)}`,
    );
    expect(r.gpuMs).toBeGreaterThan(0);
    expect(r.cpuMs).toBeGreaterThan(0);
  });
}
