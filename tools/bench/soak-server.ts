/**
 * Soak benchmark of the strategy server (`npm run bench:soak`; not a test): the real serve CLI
 * as a child process over public/models, fed mixed traffic on loopback for --duration-s
 * (default 600 s):
 *
 *   good  (from 127.0.0.1)  strategy requests for a pool of users (the LRU fills, then hits),
 *                           manifest, file and health GETs, at a steady target rate
 *   bad   (from 127.0.0.2)  malformed requests over raw sockets (bad percent-encoding, long
 *                           parameters, 2,000 headers, NUL bytes, wrong methods, broken JSON, ...):
 *                           every answer must be the JSON error envelope
 *   slow  (from 127.0.0.3)  more connections than the per-address cap, each never finishing its
 *                           request (partial head, partial body, silent, a byte every 2 s) or
 *                           idling after one request; the server must time out or refuse each
 *
 * Writes results/soak-server.json: requests and outcomes by class, the 5xx count (goal 0), the
 * good requests' latency percentiles, the server's open connections and RSS at start, every
 * 30 s, and at the end (goal: flat once the cache is full), and the shutdown time on SIGTERM.
 *
 *   npm run bench:soak -- [--duration-s 600] [--good-rps 150] [--slow-connections 80] [--out results/soak-server.json]
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runCli, UsageError } from '../../src/cli/run-cli.ts';
import { envelopeProblem, rawExchange } from '../../tests/fixtures/raw-http.ts';
import type { RawExchange } from '../../tests/fixtures/raw-http.ts';

const ROOT = resolve(import.meta.dirname, '../..');

const USAGE = `usage: npm run bench:soak -- [--duration-s 600] [--good-rps 150] [--good-concurrency 8] [--bad-rps 20]
       [--slow-connections 80] [--users 5000] [--models public/models] [--out results/soak-server.json]
  Starts npm run serve over --models with default limits (rate limit off) and sends good, malformed and slow traffic on
  loopback (from 127.0.0.1, .2 and .3; Linux routes all of 127/8 to the loopback interface) for --duration-s seconds.`;

function positive(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got "${value}"`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const { values: args } = parseArgs({
    args: argv,
    options: {
      'duration-s': { type: 'string', default: '600' },
      'good-rps': { type: 'string', default: '150' },
      'good-concurrency': { type: 'string', default: '8' },
      'bad-rps': { type: 'string', default: '20' },
      'slow-connections': { type: 'string', default: '80' },
      users: { type: 'string', default: '5000' },
      models: { type: 'string', default: join(ROOT, 'public/models') },
      out: { type: 'string', default: join(ROOT, 'results/soak-server.json') },
    },
    strict: true,
  });
  const DURATION_MS = positive(args['duration-s'], 'duration-s') * 1000;
  const GOOD_RPS = positive(args['good-rps'], 'good-rps');
  const GOOD_CONCURRENCY = positive(args['good-concurrency'], 'good-concurrency');
  const BAD_RPS = positive(args['bad-rps'], 'bad-rps');
  const SLOW_CONNECTIONS = positive(args['slow-connections'], 'slow-connections');
  const USERS = positive(args.users, 'users');
  const SAMPLE_EVERY_MS = 30_000;
  const GOOD_FROM = '127.0.0.1';
  const BAD_FROM = '127.0.0.2';
  const SLOW_FROM = '127.0.0.3';

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const count = (map: Record<string, number>, key: string) => void (map[key] = (map[key] ?? 0) + 1);

  // ---- the server ----

  const serverArgs = ['--models', args.models, '--port', '0', '--host', '127.0.0.1', '--rate-limit', '0'];
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cloud/serve.ts'), ...serverArgs], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const serverLog: string[] = [];
  const listening = new Promise<string>((resolveUrl, reject) => {
    const onLine = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        serverLog.push(line);
        const m = /listening on (http:\/\/\S+)/.exec(line);
        if (m) resolveUrl(m[1]!);
      }
    };
    child.stdout!.on('data', onLine);
    child.stderr!.on('data', onLine);
    child.on('exit', (code) => reject(new Error(`server exited ${code}:\n${serverLog.join('\n')}`)));
  });
  const url = await listening;
  const port = Number(new URL(url).port);

  function rssMiB(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : NaN;
  }

  /** The server's open client connections, read over a raw socket from a fourth address (it counts itself). */
  async function openConnections(): Promise<number> {
    const r = await rawExchange({ port, localAddress: '127.0.0.9', send: 'GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n', deadlineMs: 10_000 }).done;
    const m = /^chord_open_connections (\d+)/m.exec(r.response?.body ?? '');
    return m ? Number(m[1]) - 1 : NaN;
  }

  interface Sample {
    readonly atS: number;
    readonly rssMiB: number;
    readonly openConnections: number;
  }
  const t0 = performance.now();
  const samples: Sample[] = [];
  const sample = async () => samples.push({ atS: Math.round((performance.now() - t0) / 1000), rssMiB: rssMiB(), openConnections: await openConnections() });

  // Over a connection that closes, so the start sample counts no connection of the soak's own.
  const listed = await rawExchange({ port, send: 'GET /v1/models HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n', deadlineMs: 10_000 }).done;
  const { modelId, zDim } = (JSON.parse(listed.response!.body) as { models: { modelId: string; zDim: number }[] }).models[0]!;
  await sample();
  const stopAt = performance.now() + DURATION_MS;
  const running = () => performance.now() < stopAt;

  // ---- good traffic ----

  const good = { sent: 0, byStatus: {} as Record<string, number>, byKind: {} as Record<string, number> };
  const goodLatencyMs: number[] = [];
  let fiveXX = 0;

  function userZ(user: number): number[] {
    let s = (user + 1) * 2654435761;
    return Array.from({ length: zDim }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
  }

  async function goodRequest(n: number): Promise<void> {
    const pick = n % 20;
    const kind = pick < 16 ? 'strategy' : pick < 18 ? 'manifest' : pick < 19 ? 'file' : 'healthz';
    const t = performance.now();
    let status: string;
    try {
      const res =
        kind === 'strategy'
          ? await fetch(`${url}/v1/models/${modelId}/strategy`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ z: userZ(Math.floor(Math.random() * USERS)) }),
            })
          : await fetch(kind === 'manifest' ? `${url}/v1/models/${modelId}/manifest` : kind === 'file' ? `${url}/v1/models/${modelId}/files/gru.json` : `${url}/healthz`);
      await res.arrayBuffer();
      status = String(res.status);
      if (res.status >= 500) fiveXX++;
    } catch (e) {
      status = `error ${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name}`;
    }
    goodLatencyMs.push(performance.now() - t);
    good.sent++;
    count(good.byStatus, status);
    count(good.byKind, kind);
  }

  async function goodWorker(w: number): Promise<void> {
    const interval = (1000 * GOOD_CONCURRENCY) / GOOD_RPS;
    for (let n = w; running(); n += GOOD_CONCURRENCY) {
      const t = performance.now();
      await goodRequest(n);
      await sleep(Math.max(0, interval - (performance.now() - t)));
    }
  }

  // ---- bad traffic ----

  const Z = () => JSON.stringify({ z: userZ(1) });
  const post = (path: string, body: string, type = 'application/json', extra = '') =>
    `POST ${path} HTTP/1.1\r\nHost: soak\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n${extra}\r\n${body}`;
  const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: soak\r\n${extra}\r\n`;
  const BAD: readonly [string, () => string][] = [
    ['bad-percent-encoding', () => get(`/v1/models/%ff/manifest`)],
    ['long-parameter', () => get(`/v1/models/${'a'.repeat(150)}/manifest`)],
    ['2000-headers', () => get('/healthz', Array.from({ length: 2000 }, (_, i) => `X-Header-${i}: value-${i}\r\n`).join(''))],
    ['nul-in-header', () => get('/healthz', 'X-A: a\0b\r\n')],
    ['nul-in-path', () => get('/v1/mo\0dels')],
    ['wrong-method', () => `DELETE /v1/models/${modelId}/manifest HTTP/1.1\r\nHost: soak\r\n\r\n`],
    ['invalid-method', () => 'FOO / HTTP/1.1\r\nHost: soak\r\n\r\n'],
    ['broken-json', () => post(`/v1/models/${modelId}/strategy`, '{"z": [1, 2')],
    ['wrong-z-length', () => post(`/v1/models/${modelId}/strategy`, JSON.stringify({ z: [0.1, 0.2] }))],
    ['z-out-of-range', () => post(`/v1/models/${modelId}/strategy`, JSON.stringify({ z: userZ(2).map(() => 1e39) }))],
    ['string-z', () => post(`/v1/models/${modelId}/strategy`, JSON.stringify({ z: userZ(3).map(String) }))],
    ['text-plain', () => post(`/v1/models/${modelId}/strategy`, Z(), 'text/plain')],
    ['oversized-body', () => post(`/v1/models/${modelId}/strategy`, JSON.stringify({ z: Array(20_000).fill(0.5) }))],
    ['bad-chunked', () => `POST /v1/models/${modelId}/strategy HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`],
    ['unknown-model', () => post('/v1/models/no-such-model/strategy', Z())],
    ['no-host', () => 'GET /healthz HTTP/1.1\r\n\r\n'],
  ];
  const bad = { sent: 0, byStatus: {} as Record<string, number>, byCase: {} as Record<string, string>, envelopeViolations: [] as string[] };

  async function badWorker(): Promise<void> {
    for (let n = 0; running(); n++) {
      const t = performance.now();
      const [name, make] = BAD[n % BAD.length]!;
      const r = await rawExchange({ port, localAddress: BAD_FROM, send: Buffer.from(make(), 'latin1'), deadlineMs: 30_000, closeOnResponse: true }).done;
      bad.sent++;
      const status = r.response ? String(r.response.status) : `no answer (${r.ended})`;
      count(bad.byStatus, status);
      bad.byCase[name] = status;
      if (r.response && r.response.status >= 500) fiveXX++;
      const problem = envelopeProblem(r.response);
      if (problem && bad.envelopeViolations.length < 20) bad.envelopeViolations.push(`${name}: ${problem}`);
      await sleep(Math.max(0, 1000 / BAD_RPS - (performance.now() - t)));
    }
  }

  // ---- slow clients ----

  const SLOW_KINDS = ['partial-body', 'partial-head', 'silent', 'trickle-body', 'idle-keep-alive'] as const;
  const slow = { opened: 0, byKindOutcome: {} as Record<string, number>, heldMs: { max: 0 } };

  function slowOutcome(r: RawExchange, kind: (typeof SLOW_KINDS)[number]): string {
    if (r.ended === 'deadline') return 'still open at 60 s';
    const status = r.response?.status;
    if (kind === 'idle-keep-alive') return status === 200 && !r.raw.includes('HTTP/1.1 408') ? 'answered, then closed idle' : `other ${status ?? 'no answer'}`;
    if (status === undefined) return 'closed without an answer';
    if (status >= 500) fiveXX++;
    const problem = envelopeProblem(r.response);
    return problem ? `${status} not enveloped` : String(status);
  }

  async function slowClient(slot: number): Promise<void> {
    for (let n = slot; running(); n += SLOW_CONNECTIONS) {
      const kind = SLOW_KINDS[n % SLOW_KINDS.length]!;
      const head = `POST /v1/models/${modelId}/strategy HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n`;
      const send =
        kind === 'partial-body' ? `${head}Content-Length: 400\r\n\r\n{"z":[0.1,`
        : kind === 'partial-head' ? 'GET /healthz HTTP/1.1\r\nHost: soak\r\nX-Slow: '
        : kind === 'trickle-body' ? `${head}Content-Length: 400\r\n\r\n`
        : kind === 'idle-keep-alive' ? 'GET /healthz HTTP/1.1\r\nHost: soak\r\n\r\n'
        : undefined;
      const c = rawExchange({ port, localAddress: SLOW_FROM, ...(send === undefined ? {} : { send }), deadlineMs: 60_000 });
      slow.opened++;
      const drip = kind === 'trickle-body' ? setInterval(() => c.socket.writable && c.socket.write(' '), 2_000) : undefined;
      const r = await c.done;
      clearInterval(drip);
      slow.heldMs.max = Math.max(slow.heldMs.max, Math.round(r.ms));
      const outcome = r.response?.status === 429 ? '429 refused (per-address cap)' : slowOutcome(r, kind);
      count(slow.byKindOutcome, `${kind}: ${outcome}`);
      // A refused client waits a little before it tries again, as a misbehaving crawler would.
      if (r.response?.status === 429) await sleep(1_000);
    }
  }

  // ---- run ----

  console.log(`soak: ${url}, model ${modelId} (z dim ${zDim}), ${DURATION_MS / 1000} s; good ${GOOD_RPS}/s over ${GOOD_CONCURRENCY} connections, bad ${BAD_RPS}/s, ${SLOW_CONNECTIONS} slow connections`);
  const sampler = setInterval(() => {
    void sample().then(() => {
      const s = samples.at(-1)!;
      console.log(`  ${s.atS} s: good ${good.sent}, bad ${bad.sent}, slow opened ${slow.opened}; RSS ${s.rssMiB} MiB, ${s.openConnections} open connections, 5xx ${fiveXX}`);
    });
  }, SAMPLE_EVERY_MS);
  await Promise.all([
    ...Array.from({ length: GOOD_CONCURRENCY }, (_, w) => goodWorker(w)),
    badWorker(),
    ...Array.from({ length: SLOW_CONNECTIONS }, (_, s) => slowClient(s)),
  ]);
  clearInterval(sampler);
  // Every client has finished; idle keep-alive connections of the good traffic close after the keep-alive timeout.
  await sleep(7_000);
  await sample();

  const sorted = Float64Array.from(goodLatencyMs).sort();
  const pct = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 100) / 100;
  const metricsText = (await rawExchange({ port, localAddress: '127.0.0.9', send: 'GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n', deadlineMs: 10_000 }).done).response?.body ?? '';
  const refusedOnServer = Object.fromEntries([...metricsText.matchAll(/^chord_refused_connections_total\{reason="([^"]+)"\} (\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
  const cacheOnServer = Object.fromEntries([...metricsText.matchAll(/^chord_strategy_cache_total\{result="([^"]+)"\} (\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));

  const stopT = performance.now();
  child.kill('SIGTERM');
  const exitCode = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.on('exit', (code) => r(code))));
  const shutdownMs = Math.round(performance.now() - stopT);

  const git = (...a: string[]) => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trim();
  const result = {
    benchmark: 'soak-server',
    commit: git('rev-parse', 'HEAD'),
    uncommittedTrackedChanges: git('status', '--porcelain', '--untracked-files=no') !== '',
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      note: 'shared machine: two CPU cores shared with long training runs and other work, so latency includes CPU contention; client and server on the same cores',
    },
    config: {
      durationS: DURATION_MS / 1000,
      server: `npm run serve -- ${serverArgs.join(' ').replace(args.models, 'public/models')} (rate limit off: all good traffic comes from one address; every other limit at its default)`,
      serverLimits: serverLog.find((l) => l.includes('limits:'))?.trim(),
      good: { targetRps: GOOD_RPS, connections: GOOD_CONCURRENCY, users: USERS, mix: '80% strategy (random user of the pool), 10% manifest, 5% gru.json, 5% healthz', from: GOOD_FROM },
      bad: { targetRps: BAD_RPS, cases: BAD.map(([n]) => n), from: BAD_FROM },
      slow: { connections: SLOW_CONNECTIONS, kinds: SLOW_KINDS, from: SLOW_FROM, note: 'more than the per-address cap (64): the rest are refused with 429 and retry after 1 s' },
    },
    requests: {
      good: { ...good, latencyMs: { p50: pct(50), p90: pct(90), p99: pct(99), max: pct(100) } },
      bad,
      slow,
    },
    fiveXX,
    connections: { start: samples[0]!.openConnections, end: samples.at(-1)!.openConnections, refusedOnServer },
    rssMiB: { start: samples[0]!.rssMiB, end: samples.at(-1)!.rssMiB },
    strategyCache: cacheOnServer,
    samples,
    shutdown: { signal: 'SIGTERM', exitCode, ms: shutdownMs },
  };
  writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `good ${good.sent} (p99 ${pct(99)} ms), bad ${bad.sent}, slow ${slow.opened}; 5xx ${fiveXX}; envelope violations ${bad.envelopeViolations.length}; ` +
      `RSS ${result.rssMiB.start} -> ${result.rssMiB.end} MiB; open connections ${result.connections.start} -> ${result.connections.end}; ` +
      `shutdown ${shutdownMs} ms (exit ${exitCode}) -> ${args.out}`,
  );
}

await runCli({ program: 'bench:soak', usage: USAGE, main });
