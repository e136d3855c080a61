// Exposes project modules to Playwright tests: `await page.evaluate(() => window.chord.<name>(...))`.
import { acquireGpu } from '../../../src/gpu/device.ts';
import { runAxpy } from '../../../src/gpu/axpy-program.ts';

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

const api = { smokeAxpy };
declare global {
  interface Window {
    chord: typeof api;
  }
}
window.chord = api;
document.body.dataset.ready = '1';
