/**
 * Loopback load benchmark of the strategy server: `npm run bench:server [-- --duration 10]`.
 *
 * Generates the SASRec-sized test model (12 layers, hidden 64, FFN 256, z dim 32, hypernet
 * hidden 64, rank 2), starts the server CLI as a child process on 127.0.0.1 (so the load
 * generator and the server do not share an event loop), drives it with autocannon and writes
 * results/bench-server.json. Every phase is bounded in time (--duration seconds) and in count
 * (--max-requests); only 127.0.0.1 is ever contacted.
 *
 * Phases (JSON bodies, POST /v1/models/sasrec-bench/strategy):
 *   uncached_max  every request a new z (never a cache hit), 64 connections, as fast as it goes
 *   cached_max    64 distinct z, primed first, so every request is a cache hit
 *   rate_1000     new z each request at a fixed 1,000 req/s (100 connections): the latency figures
 * Batch sizes and cache hits per phase are read from the server's /metrics, and the server's own
 * CPU time per request from /proc (a figure other load on the machine does not distort, unlike
 * req/s). `compute_only` is the batched hypernet alone, in this process, without HTTP.
 */
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SASREC_BENCH_OPTIONS, writeTestModel } from '../../tests/fixtures/artifacts.ts';
import { BatchedHypernet } from './batched-hypernet.ts';
import { snapZ } from './strategy-service.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MODEL_ID = 'sasrec-bench';
const Z_GRID_BITS = 16;

interface PhaseResult {
  requests: number;
  rps: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  errors: number;
  timeouts: number;
  non_2xx: number;
  batch_size_mean: number | null;
  batches: number;
  cache_hits: number;
  cache_misses: number;
  /** Server process CPU time per answered request: robust to other load on the machine. */
  server_cpu_ms_per_request: number | null;
}

/** Counter-seeded z in [-1, 1): distinct for every n, the same on every run. */
function zFor(n: number, dim: number): number[] {
  let s = (n * 2654435761 + 12345) >>> 0;
  const z: number[] = [];
  for (let i = 0; i < dim; i++) {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    z.push(Math.round(((s / 2 ** 32) * 2 - 1) * 1e6) / 1e6);
  }
  return z;
}

async function startServer(modelsDir: string, extra: string[]): Promise<{ child: ChildProcess; url: string; log: string[] }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cloud/serve.ts'), '--models', modelsDir, '--port', '0', '--host', '127.0.0.1', '--rate-limit', '0', ...extra],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const log: string[] = [];
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log.join('\n')}`)), 60_000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      for (const line of chunk.split('\n').filter(Boolean)) {
        log.push(line);
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolveUrl(m[1]!);
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${log.join('\n')}`)));
  });
  return { child, url, log };
}

/** CPU seconds (user + system) the process has used so far; undefined off Linux. */
async function cpuSeconds(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** Linux's USER_HZ, the unit of /proc/<pid>/stat times (100 on every mainstream build). */
const CLOCK_TICKS = 100;

async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function delta(after: Map<string, number>, before: Map<string, number>, key: string): number {
  return (after.get(key) ?? 0) - (before.get(key) ?? 0);
}

interface PhaseOptions {
  connections: number;
  durationS: number;
  maxRequests: number;
  overallRate?: number;
  /** Body for the n-th request. */
  body: (n: number) => string;
}

async function phase(url: string, serverPid: number | undefined, o: PhaseOptions): Promise<PhaseResult> {
  const before = await scrape(url);
  const cpuBefore = await cpuSeconds(serverPid);
  let n = 0;
  const result = await new Promise<autocannon.Result>((resolveResult, reject) => {
    const instance = autocannon(
      {
        url,
        connections: o.connections,
        duration: o.durationS,
        maxOverallRequests: o.maxRequests,
        ...(o.overallRate ? { overallRate: o.overallRate } : {}),
        timeout: 10,
        requests: [
          {
            method: 'POST',
            path: `/v1/models/${MODEL_ID}/strategy`,
            headers: { 'content-type': 'application/json' },
            setupRequest: (req) => ({ ...req, body: o.body(n++) }),
          },
        ],
      },
      (error, res) => (error ? reject(error) : resolveResult(res)),
    );
    // A hard stop in case the count or duration bound is not reached cleanly.
    const guard = setTimeout(() => instance.stop(), (o.durationS + 15) * 1000);
    instance.on('done', () => clearTimeout(guard));
  });
  const after = await scrape(url);
  const cpuAfter = await cpuSeconds(serverPid);
  const batchSum = delta(after, before, `chord_strategy_batch_size_sum{model="${MODEL_ID}"}`);
  const batches = delta(after, before, `chord_strategy_batch_size_count{model="${MODEL_ID}"}`);
  const ok = result['2xx'];
  return {
    requests: result.requests.total,
    rps: Math.round(ok / result.duration),
    latency_ms: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    errors: result.errors,
    timeouts: result.timeouts,
    non_2xx: result.non2xx,
    batch_size_mean: batches > 0 ? Math.round((batchSum / batches) * 100) / 100 : null,
    batches,
    cache_hits: delta(after, before, 'chord_strategy_cache_total{result="hit"}'),
    cache_misses: delta(after, before, 'chord_strategy_cache_total{result="miss"}'),
    server_cpu_ms_per_request:
      cpuBefore !== undefined && cpuAfter !== undefined && result.requests.total > 0
        ? Math.round(((cpuAfter - cpuBefore) * 1e6) / result.requests.total) / 1000
        : null,
  };
}

/** Strategies per second of the batched hypernet alone (batches of 64, one thread, no HTTP). */
function computeOnly(hypernet: BatchedHypernet): { strategies_per_s: number; ms_per_strategy: number; kernel: string } {
  const dim = hypernet.config.zDim;
  const batch = 64;
  const zs = new Float32Array(batch * dim);
  let best = Infinity;
  for (let rep = 0; rep < 8; rep++) {
    for (let i = 0; i < batch; i++) zs.set(zFor(3e9 + rep * batch + i, dim), i * dim);
    const t = performance.now();
    for (let k = 0; k < 4; k++) hypernet.strategies(zs, batch);
    best = Math.min(best, (performance.now() - t) / (4 * batch));
  }
  return { strategies_per_s: Math.round(1000 / best), ms_per_strategy: Math.round(best * 1e4) / 1e4, kernel: hypernet.kernel };
}

/** How many of `samples` random z get a different strategy once snapped to the grid, and in how many channels. */
function measureGrid(hypernet: BatchedHypernet, samples: number): { strategies: number; channels: number } {
  const dim = hypernet.config.zDim;
  const zs = new Float32Array(samples * dim);
  for (let i = 0; i < samples; i++) zs.set(zFor(1e9 + i, dim), i * dim);
  const levels = (r: ReturnType<BatchedHypernet['strategies']>[number]) =>
    r.ok ? r.strategy.layers.flatMap((l) => Array.from(l.levels)) : [];
  const raw = hypernet.strategies(zs, samples).map(levels);
  const snapped = hypernet.strategies(snapZ(zs, Z_GRID_BITS), samples).map(levels);
  let strategies = 0;
  let channels = 0;
  raw.forEach((a, i) => {
    const b = snapped[i]!;
    const differing = a.filter((x, j) => x !== b[j]).length;
    if (differing > 0 || a.length !== b.length) strategies++;
    channels += differing;
  });
  return { strategies, channels };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      'max-requests': { type: 'string', default: '300000' },
      'batch-window-ms': { type: 'string', default: '1' },
      'max-batch': { type: 'string', default: '64' },
      out: { type: 'string', default: join(ROOT, 'results/bench-server.json') },
    },
  });
  const durationS = Number(values.duration);
  const maxRequests = Number(values['max-requests']);
  const modelsDir = await mkdtemp(join(os.tmpdir(), 'chord-bench-'));
  const server = { child: undefined as ChildProcess | undefined };
  try {
    const model = await writeTestModel(modelsDir, { ...SASREC_BENCH_OPTIONS, modelId: MODEL_ID });
    const dim = model.hypernetConfig.zDim;
    const gridSamples = 1000;
    const hypernet = new BatchedHypernet(model.hypernetConfig, model.hypernetTensors);
    const gridChanged = measureGrid(hypernet, gridSamples);
    const compute = computeOnly(hypernet);
    console.log(`compute only (best of 8): ${JSON.stringify(compute)}`);
    const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);

    const started = await startServer(modelsDir, ['--batch-window-ms', values['batch-window-ms']!, '--max-batch', values['max-batch']!]);
    server.child = started.child;
    const { url } = started;
    console.log(started.log.join('\n'));

    const fresh = (offset: number) => (n: number) => JSON.stringify({ z: zFor(offset + n, dim) });
    console.log('warm-up ...');
    await phase(url, started.child.pid, { connections: 16, durationS: Math.min(3, durationS), maxRequests: 20_000, body: fresh(5e8) });

    console.log(`uncached_max: ${durationS} s, 64 connections, a new z per request ...`);
    const uncached = await phase(url, started.child.pid, { connections: 64, durationS, maxRequests, body: fresh(0) });
    console.log(JSON.stringify(uncached));

    const pool = Array.from({ length: 64 }, (_, i) => JSON.stringify({ z: zFor(2e9 + i, dim) }));
    for (const body of pool) {
      await fetch(`${url}/v1/models/${MODEL_ID}/strategy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    }
    console.log(`cached_max: ${durationS} s, 64 connections, 64 primed z ...`);
    const cached = await phase(url, started.child.pid, { connections: 64, durationS, maxRequests, body: (n) => pool[n % pool.length]! });
    console.log(JSON.stringify(cached));

    console.log(`rate_1000: ${durationS} s at 1000 req/s, 100 connections, a new z per request ...`);
    const rate = await phase(url, started.child.pid, { connections: 100, durationS, maxRequests: 1000 * durationS, overallRate: 1000, body: fresh(1e8) });
    console.log(JSON.stringify(rate));

    const phases = { uncached_max: uncached, cached_max: cached, rate_1000: rate };
    const all = Object.values(phases);
    const report = {
      date: new Date().toISOString(),
      cores: os.availableParallelism(),
      cpu: os.cpus()[0]?.model ?? 'unknown',
      node: process.version,
      // Other processes on the machine compete for the same cores; these say how much.
      load_average_at_start: loadAtStart,
      load_average_at_end: os.loadavg().map((x) => Math.round(x * 100) / 100),
      model: {
        modelId: MODEL_ID,
        backbone: 'sasrec',
        layers: model.manifest.layers.length,
        dims: model.manifest.backbone === 'sasrec' ? model.manifest.dims : undefined,
        zDim: dim,
        hypernet: { method: model.hypernetConfig.method, hidden: model.hypernetConfig.hidden, rank: model.hypernetConfig.rank },
        channels: model.manifest.layers.reduce((s, l) => s + l.outChannels, 0),
      },
      server: { batch_window_ms: Number(values['batch-window-ms']), max_batch: Number(values['max-batch']), body: 'JSON {"z": [32 numbers]}' },
      max_rps: uncached.rps,
      max_rps_cached: cached.rps,
      latency_ms: { p50: rate.latency_ms.p50, p99: rate.latency_ms.p99 },
      achieved_rps_at_1000: rate.rps,
      errors: all.reduce((s, p) => s + p.errors, 0),
      non_2xx: all.reduce((s, p) => s + p.non_2xx, 0),
      batch_size_mean: uncached.batch_size_mean,
      server_cpu_ms_per_request: { uncached: uncached.server_cpu_ms_per_request, cached: cached.server_cpu_ms_per_request },
      compute_only: compute,
      z_grid: {
        bits: Z_GRID_BITS,
        samples: gridSamples,
        strategies_changed_by_snapping: gridChanged.strategies,
        channels_changed_by_snapping: gridChanged.channels,
        channels_per_strategy: model.manifest.layers.reduce((s, l) => s + l.outChannels, 0),
      },
      phases,
    };
    await mkdir(dirname(values.out!), { recursive: true });
    await writeFile(values.out!, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`wrote ${values.out}`);
    console.log(
      `uncached ${report.max_rps}/s, cached ${report.max_rps_cached}/s, at 1000/s p50 ${report.latency_ms.p50} ms p99 ${report.latency_ms.p99} ms, ` +
        `errors ${report.errors}, non-2xx ${report.non_2xx}, mean batch ${report.batch_size_mean}`,
    );
  } finally {
    if (server.child && server.child.exitCode === null) {
      const exited = new Promise((r) => server.child!.on('exit', r));
      server.child.kill('SIGTERM');
      await exited;
    }
    await rm(modelsDir, { recursive: true, force: true });
  }
}

await main();
