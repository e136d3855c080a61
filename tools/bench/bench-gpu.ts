/**
 * `npm run bench:gpu`: serves the repo with vite, opens tools/bench/gpu/pages/bench-gpu.html in
 * Chromium (WebGPU; SwiftShader where no GPU exists), runs window.chordBench.run() and writes
 * results/bench-gpu.json with the host's load.
 *
 *   npm run bench:gpu -- [--port 5197] [--out results/bench-gpu.json] [--reps 100] [--warmup 30] [--quick]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import { createServer } from 'vite';
import type { BenchGpuReport } from './gpu/run.ts';
import { CHROMIUM_ARGS, findChromium } from '../../tests/harness/chromium.ts';
import { runCli, UsageError } from '../../src/cli/run-cli.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const USAGE = `usage: npm run bench:gpu -- [--port 5197] [--out results/bench-gpu.json] [--reps N] [--warmup N] [--quick] [--timeout-s 420]
  Serves the repository with vite, runs tools/bench/gpu/pages/bench-gpu.html in Chromium (WebGPU) and writes --out.`;

function parseOptions(argv: readonly string[]) {
  const { values: args } = parseArgs({
    args: [...argv],
    options: {
      port: { type: 'string', default: '5197' },
      out: { type: 'string', default: 'results/bench-gpu.json' },
      reps: { type: 'string' },
      warmup: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'timeout-s': { type: 'string', default: '420' },
    },
  });
  const port = positiveInt(args.port, 'port')!;
  const timeoutMs = positiveInt(args['timeout-s'], 'timeout-s')! * 1000;
  const quick = args.quick ? { warmup: 3, reps: 10, adaptReps: 3, finetuneWarmup: 1, finetuneReps: 2 } : {};
  const reps = positiveInt(args.reps, 'reps');
  const warmup = positiveInt(args.warmup, 'warmup');
  const benchOptions = { ...quick, ...(reps ? { reps } : {}), ...(warmup ? { warmup } : {}) };
  return { args, port, timeoutMs, benchOptions };
}

function positiveInt(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${what} must be a positive integer, got ${text}`);
  return n;
}

const NOTE =
  'SwiftShader is a CPU implementation of WebGPU (and tfjs-wasm runs on the same CPU cores), so absolute ' +
  'milliseconds say little about a shopper\'s GPU: read the ratios between paths measured side by side in the ' +
  'same page. The machine is shared (see load_average); p95 is noisier than p50. resident_weight_bytes counts ' +
  'GPU buffers actually allocated for the quantizable weights (packed words + per-channel min/max and u16 ' +
  'channel index; widths, word offsets and steps are derived on the GPU; plus frozen f32 weights where kept); ' +
  'fp32 = 4 bytes x frozen params.';

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

async function main(argv: string[]): Promise<void> {
  const { args, port, timeoutMs, benchOptions } = parseOptions(argv);
  const chromiumPath = findChromium();
  if (!chromiumPath.path) throw new Error(`no Chromium found (tried: ${chromiumPath.tried.join(', ')})`);
  const loadStart = loadavg();
  const t0 = performance.now();
  const server = await createServer({
    root,
    configFile: resolve(root, 'vite.config.ts'),
    // Own dependency cache: other vite servers in this checkout must not rewrite it mid-run, and
    // pre-bundling tfjs up front avoids a reload of the page while it runs.
    cacheDir: resolve(root, 'node_modules/.vite-bench-gpu'),
    optimizeDeps: {
      entries: ['tools/bench/gpu/pages/bench-gpu.html'],
      include: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu', '@tensorflow/tfjs-backend-wasm'],
    },
    server: { host: '127.0.0.1', port, strictPort: true },
    logLevel: 'warn',
  });
  await server.listen();
  const browser = await chromium.launch({ executablePath: chromiumPath.path, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    page.on('console', (msg) => {
      const text = msg.text();
      if (text.startsWith('[bench]')) console.log(text);
      // Failed loads are reported with their URL by the response handler below.
      else if (text.startsWith('Failed to load resource')) return;
      else if (msg.type() === 'error' || msg.type() === 'warning') console.log(`[page ${msg.type()}] ${text}`);
    });
    page.on('response', (res) => {
      if (res.status() >= 400 && !res.url().endsWith('/favicon.ico')) console.log(`[page] HTTP ${res.status()} ${res.url()}`);
    });
    page.on('pageerror', (err) => console.log(`[page error] ${err.message}`));
    await page.goto(`http://127.0.0.1:${port}/tools/bench/gpu/pages/bench-gpu.html`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
    const report: BenchGpuReport = await withTimeout(
      page.evaluate((o) => window.chordBench.run(o), benchOptions),
      timeoutMs,
      'the benchmark page',
    );
    const loadEnd = loadavg();
    const out = {
      date: new Date().toISOString(),
      ...report,
      note: NOTE,
      load_average: { start: loadStart.map((x) => Math.round(x * 100) / 100), end: loadEnd.map((x) => Math.round(x * 100) / 100) },
      host: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, chromium: browser.version() },
      quick: args.quick,
      wall_s: Math.round((performance.now() - t0) / 100) / 10,
    };
    const path = resolve(root, args.out!);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify(out, null, 1) + '\n');
    printSummary(out);
    console.log(`wrote ${path}`);
  } finally {
    await browser.close();
    await server.close();
  }
}

function printSummary(r: BenchGpuReport & { load_average: { start: number[]; end: number[] } }): void {
  const line = (name: string, s: { p50: number; p95: number }) => `  ${name.padEnd(18)} p50 ${s.p50.toFixed(2).padStart(8)} ms   p95 ${s.p95.toFixed(2).padStart(8)} ms`;
  console.log(`device: ${r.device}; load ${r.load_average.start.join('/')} -> ${r.load_average.end.join('/')}`);
  console.log(`rerank (${r.candidates} candidates, history ${r.seq_len}, top ${r.k}):`);
  for (const [name, s] of Object.entries(r.rerank_ms)) console.log(line(name, s));
  console.log(`adapt p50 ${r.adapt_ms.p50} ms; fine-tune step p50 ${r.finetune_step_ms.p50} ms (${r.finetune_step_ms.backend})`);
  console.log(`cold start: chord ${r.cold_start_ms.chord_wgsl} ms, tfjs webgpu ${r.cold_start_ms.tfjs_webgpu_fp32} ms`);
  console.log(`resident weights: chord ${r.resident_weight_bytes.chord} B (fit ${r.resident_weight_bytes.chord_fit} B), fp32 ${r.resident_weight_bytes.fp32} B`);
  console.log(`ratios: ${JSON.stringify(r.ratios)}`);
  console.log(`goals: ${JSON.stringify(r.goals)}`);
  console.log(`checks: ${JSON.stringify(r.checks)}`);
}

await runCli({ program: 'bench:gpu', usage: USAGE, main });
