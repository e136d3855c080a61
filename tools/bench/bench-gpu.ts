/**
 * `npm run bench:gpu`: serves the repo with vite, opens tools/bench/gpu/pages/bench-gpu.html in
 * Chromium (WebGPU; SwiftShader where no GPU exists), runs window.chordBench.run() and writes
 * results/bench-gpu.json with the host's load.
 *
 *   npm run bench:gpu -- [--port 5197] [--out results/bench-gpu.json] [--reps 100] [--warmup 30] [--quick]
 *                        [--shop-items 18357] [--shop-reps 20] [--no-shop | --shop-only]
 *
 * Then, in a fresh page (tfjs cold again), the shop-scale section (gpu/shop-scale.ts) on a model
 * folder of --shop-items items that gpu/shop-model.ts writes under .cache/bench-gpu/models/ and
 * vite serves; its report goes under `shop_scale`. --shop-only runs that section alone and keeps
 * every other field of the existing --out file as it is.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import { createServer } from 'vite';
import type { BenchGpuReport } from './gpu/run.ts';
import type { ShopScaleReport } from './gpu/shop-scale.ts';
import { writeShopModel } from './gpu/shop-model.ts';
import { existsSync, readFileSync } from 'node:fs';
import { CHROMIUM_ARGS, findChromium } from '../../tests/harness/chromium.ts';
import { runCli, UsageError } from '../../src/cli/run-cli.ts';
import { benchChartSvg } from './chart.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const USAGE = `usage: npm run bench:gpu -- [--port 5197] [--out results/bench-gpu.json] [--reps N] [--warmup N] [--quick] [--timeout-s 420]
                          [--shop-items 18357] [--shop-reps 20] [--no-shop | --shop-only]
  Serves the repository with vite, runs tools/bench/gpu/pages/bench-gpu.html in Chromium (WebGPU) and writes --out;
  then the shop-scale section (--shop-items items) in a fresh page, under shop_scale (--shop-only: that alone,
  the other fields of --out kept as they are).`;

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
      'shop-items': { type: 'string', default: '18357' },
      'shop-reps': { type: 'string' },
      'no-shop': { type: 'boolean', default: false },
      'shop-only': { type: 'boolean', default: false },
    },
  });
  if (args['no-shop'] && args['shop-only']) throw new UsageError('--no-shop and --shop-only exclude each other');
  const port = positiveInt(args.port, 'port')!;
  const timeoutMs = positiveInt(args['timeout-s'], 'timeout-s')! * 1000;
  const quick = args.quick ? { warmup: 3, reps: 10, adaptReps: 3, finetuneWarmup: 1, finetuneReps: 2 } : {};
  const reps = positiveInt(args.reps, 'reps');
  const warmup = positiveInt(args.warmup, 'warmup');
  const benchOptions = { ...quick, ...(reps ? { reps } : {}), ...(warmup ? { warmup } : {}) };
  const shopItems = positiveInt(args['shop-items'], 'shop-items')!;
  const shopReps = positiveInt(args['shop-reps'], 'shop-reps');
  const shopOptions = args.quick ? { warmup: 2, reps: 5, adaptReps: 3, finetuneWarmup: 1, finetuneReps: 2 } : shopReps ? { reps: shopReps } : {};
  return { args, port, timeoutMs, benchOptions, shopItems, shopOptions };
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
  const { args, port, timeoutMs, benchOptions, shopItems, shopOptions } = parseOptions(argv);
  const outPath = resolve(root, args.out!);
  const SHOP_SEED = 7;
  const shopModel = args['no-shop'] ? null : await writeShopModel(resolve(root, '.cache/bench-gpu/models'), { numItems: shopItems, seed: SHOP_SEED });
  // The same model in the float32 layout (item_emb in backbone.bin): only its file sizes are reported, beside the 8-bit layout's.
  const shopModelFp32 = args['no-shop']
    ? null
    : await writeShopModel(resolve(root, '.cache/bench-gpu/models-fp32-layout'), { numItems: shopItems, seed: SHOP_SEED, itemTable: 'fp32' });
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
    const benchUrl = `http://127.0.0.1:${port}/tools/bench/gpu/pages/bench-gpu.html`;
    let report: BenchGpuReport;
    if (args['shop-only']) {
      if (!existsSync(outPath)) throw new UsageError(`--shop-only keeps the other fields of ${outPath}, which does not exist`);
      report = JSON.parse(readFileSync(outPath, 'utf8')) as BenchGpuReport;
    } else {
      await page.goto(benchUrl);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
      report = await withTimeout(page.evaluate((o) => window.chordBench.run(o), benchOptions), timeoutMs, 'the benchmark page');
    }
    let shop: ShopScaleReport | undefined;
    if (shopModel) {
      // A fresh page: tfjs and the SDK start cold, as on a shopper's first page view.
      const shopPage = await browser.newPage();
      shopPage.on('console', (msg) => {
        const text = msg.text();
        if (text.startsWith('[bench]')) console.log(text);
        else if (msg.type() === 'error' && !text.startsWith('Failed to load resource')) console.log(`[shop page error] ${text}`);
      });
      shopPage.on('pageerror', (err) => console.log(`[shop page error] ${err.message}`));
      await shopPage.goto(benchUrl);
      await shopPage.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
      const shopOpts = {
        ...shopOptions,
        modelUrl: `/.cache/bench-gpu/models/${shopModel.modelId}`,
        numItems: shopItems,
        seed: SHOP_SEED,
        pageFiles: shopModel.pageFiles,
        ...(shopModelFp32 ? { pageFilesFp32Layout: shopModelFp32.pageFiles } : {}),
      };
      shop = await withTimeout(shopPage.evaluate((o) => window.chordBench.runShopScale(o), shopOpts), timeoutMs, 'the shop-scale page');
      await shopPage.close();
    }
    const loadEnd = loadavg();
    const previous = report as BenchGpuReport & Partial<{ date: string; load_average: unknown; host: unknown; quick: boolean; wall_s: number }>;
    const shopRun = shop
      ? {
          shop_scale: {
            ...shop,
            date: new Date().toISOString(),
            load_average: { start: loadStart.map((x) => Math.round(x * 100) / 100), end: loadEnd.map((x) => Math.round(x * 100) / 100) },
            quick: args.quick,
          },
        }
      : {};
    const out = {
      date: args['shop-only'] ? previous.date : new Date().toISOString(),
      ...report,
      ...shopRun,
      note: NOTE,
      ...(args['shop-only']
        ? { load_average: previous.load_average, host: previous.host, quick: previous.quick, wall_s: previous.wall_s }
        : {
            load_average: { start: loadStart.map((x) => Math.round(x * 100) / 100), end: loadEnd.map((x) => Math.round(x * 100) / 100) },
            host: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, chromium: browser.version() },
            quick: args.quick,
            wall_s: Math.round((performance.now() - t0) / 100) / 10,
          }),
    };
    mkdirSync(dirname(outPath), { recursive: true });
    writeFileSync(outPath, JSON.stringify(out, null, 1) + '\n');
    // The chart is drawn here, not by a script after this one, so `npm run bench:gpu -- <flags>` reaches this program.
    const svgPath = outPath.replace(/\.json$/, '') + '.svg';
    writeFileSync(svgPath, benchChartSvg(out));
    if (!args['shop-only']) printSummary(out as never);
    if (shop) printShopSummary(shop);
    console.log(`wrote ${outPath}`);
  } finally {
    await browser.close();
    await server.close();
  }
}

function printShopSummary(r: ShopScaleReport): void {
  console.log(`shop scale: ${r.model.numItems} items; download ${r.download_bytes?.total ?? '?'} B (float32 layout ${r.download_bytes?.fp32_layout?.total ?? '?'} B); item table ${r.item_table.bytes_8bit} B (fp32 ${r.item_table.bytes_fp32} B)`);
  for (const [size, paths] of Object.entries(r.rerank_ms)) {
    console.log(`  ${size}: ${Object.entries(paths).map(([p, s]) => `${p} ${s.p50}`).join(', ')} (p50 ms)`);
  }
  console.log(`  speedup p50: ${JSON.stringify(r.speedup_p50)}`);
  console.log(`  cold start: ${JSON.stringify(r.cold_start_ms)}`);
  console.log(`  adapt: webgpu ${r.adapt_ms.webgpu.p50}, cpu quantize+pack ${r.adapt_ms.cpu_quantize_pack.p50}, cpu apply ${r.adapt_ms.cpu_backend_apply.p50}; fine-tune ${JSON.stringify(Object.fromEntries(Object.entries(r.finetune_step_ms).map(([b, s]) => [b, s.p50])))}`);
  console.log(`  resident: ${JSON.stringify(r.resident_weight_bytes)}`);
  console.log(`  ratios: ${JSON.stringify(r.ratios)}`);
  console.log(`  goals: ${JSON.stringify(r.goals)}`);
  console.log(`  checks: ${JSON.stringify(r.checks)}`);
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
