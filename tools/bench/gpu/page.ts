/**
 * Entry of tools/bench/gpu/pages/bench-gpu.html: exposes `window.chordBench.run(options)` to the Node
 * driver (tools/bench/bench-gpu.ts) and marks the page ready.
 */
import { type BenchOptions, runBenchGpu } from './run.ts';

const api = {
  run: (options: Omit<BenchOptions, 'log'> = {}) => runBenchGpu({ ...options, log: (line) => console.log(`[bench] ${line}`) }),
};

export type ChordBenchApi = typeof api;
declare global {
  interface Window {
    chordBench: ChordBenchApi;
  }
}
window.chordBench = api;
document.body.dataset.ready = '1';
