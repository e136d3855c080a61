/**
 * Entry of tools/bench/gpu/pages/bench-gpu.html: exposes `window.chordBench.run(options)` and
 * `window.chordBench.runShopScale(options)` to the Node driver (tools/bench/bench-gpu.ts) and marks
 * the page ready.
 */
import { type BenchOptions, runBenchGpu } from './run.ts';
import { runShopScale, type ShopScaleOptions } from './shop-scale.ts';

const api = {
  run: (options: Omit<BenchOptions, 'log'> = {}) => runBenchGpu({ ...options, log: (line) => console.log(`[bench] ${line}`) }),
  runShopScale: (options: Omit<ShopScaleOptions, 'log'>) => runShopScale({ ...options, log: (line) => console.log(`[bench] ${line}`) }),
};

export type ChordBenchApi = typeof api;
declare global {
  interface Window {
    chordBench: ChordBenchApi;
  }
}
window.chordBench = api;
document.body.dataset.ready = '1';
