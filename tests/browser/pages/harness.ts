// Exposes project modules to Playwright tests: `await page.evaluate(() => window.chord.<name>(...))`.
import { acquireGpu } from '../../../src/gpu/device.ts';
import { runAxpy } from '../../../src/gpu/axpy-program.ts';
import { computeFrozenVectors } from '../../../src/core/frozen.ts';
import frozenVectors from '../../fixtures/frozen-vectors.json';

async function smokeAxpy(): Promise<{ adapter: string; y: number[] }> {
  const { device, adapterDescription } = await acquireGpu();
  try {
    const n = 1000;
    const x = new Float32Array(n).map((_, i) => i);
    const y = new Float32Array(n).map((_, i) => 0.5 * i + 1);
    const out = await runAxpy(device, 2, x, y);
    return { adapter: adapterDescription, y: Array.from(out) };
  } finally {
    device.destroy();
  }
}

/** Recomputes the pinned frozen-weight vectors in the page (the Node test pins the same fixture). */
async function frozenVectorsInPage() {
  return { expected: frozenVectors, actual: await computeFrozenVectors(frozenVectors as Parameters<typeof computeFrozenVectors>[0]) };
}

const api = { smokeAxpy, frozenVectorsInPage };
declare global {
  interface Window {
    chord: typeof api;
  }
}
window.chord = api;
document.body.dataset.ready = '1';
