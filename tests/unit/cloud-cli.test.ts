/**
 * `npm run serve`'s entry point as a real process: start-up log, serving, and SIGTERM finishing
 * an in-flight request before exiting 0.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestModel } from '../fixtures/artifacts.ts';
import { rawExchange } from '../fixtures/raw-http.ts';

const ROOT = resolve(import.meta.dirname, '../..');
let modelsDir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'chord-cli-'));
  await writeTestModel(modelsDir, { modelId: 'cli-model', seed: 5 });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await rm(modelsDir, { recursive: true, force: true });
});

interface Cli {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

function runCli(args: string[]): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cloud/serve.ts'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: string[] = [];
  const collect = (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, lines, exited };
}

async function waitFor(cli: Cli, pattern: RegExp): Promise<RegExpExecArray> {
  for (let t = 0; t < 600; t++) {
    for (const line of cli.lines) {
      const m = pattern.exec(line);
      if (m) return m;
    }
    if (cli.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no line matching ${pattern}:\n${cli.lines.join('\n')}`);
}

describe('serve CLI', () => {
  it('logs the models and URL, serves, and on SIGTERM finishes the in-flight request then exits 0', async () => {
    const cli = runCli(['--models', modelsDir, '--port', '0', '--host', '127.0.0.1', '--batch-window-ms', '3000', '--origin', 'https://shop.example']);
    const url = (await waitFor(cli, /listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
    expect(cli.lines.join('\n')).toMatch(/cli-model: sasrec, hypernet method chord, 6 layers, 112 channels, z dim 8/);
    expect(cli.lines.join('\n')).toMatch(/auth: none; CORS: https:\/\/shop.example; rate limit: 600\/min per IP; batch window 3000 ms/);
    expect(cli.lines.join('\n')).toMatch(/compute 1 worker thread\(s\)/);
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok', models: 1 });

    // Held by the 3 s batch window until shutdown flushes it.
    const inflight = fetch(`${url}/v1/models/cli-model/strategy`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ z: [0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8] }),
    });
    await new Promise((r) => setTimeout(r, 300));
    const sent = Date.now();
    cli.child.kill('SIGTERM');
    const res = await inflight;
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(59);
    expect(Date.now() - sent).toBeLessThan(2500); // flushed at shutdown, not after the window
    expect(await cli.exited).toBe(0);
    expect(cli.lines.join('\n')).toMatch(/SIGTERM: finishing in-flight requests, then exiting/);
  });

  it('on SIGTERM with idle, partial-head and partial-body clients left open, exits 0 at once (default limits)', async () => {
    const cli = runCli(['--models', modelsDir, '--port', '0', '--host', '127.0.0.1']);
    const url = (await waitFor(cli, /listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
    const port = Number(new URL(url).port);
    const head = 'POST /v1/models/cli-model/strategy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';
    const clients = [
      rawExchange({ port, send: 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', deadlineMs: 8_000 }), // idle keep-alive after its answer
      rawExchange({ port, send: `${head}Content-Length: 100\r\n\r\n{"z":[`, deadlineMs: 8_000 }),
      rawExchange({ port, send: 'GET /healthz HTTP/1.1\r\nHost: x\r\n', deadlineMs: 8_000 }),
    ];
    await new Promise((r) => setTimeout(r, 300));
    const sent = Date.now();
    cli.child.kill('SIGTERM');
    const code = await Promise.race([cli.exited, new Promise((r) => setTimeout(() => r('still running after 5 s'), 5_000))]);
    const ms = Date.now() - sent;
    const ended = await Promise.all(clients.map((c) => c.done.then((r) => r.ended)));
    console.log(`SIGTERM with 3 hanging clients: exit ${String(code)} after ${ms} ms; clients ${ended.join(', ')}`);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(3_000);
    expect(ended).toEqual(['server-closed', 'server-closed', 'server-closed']);
    expect(cli.lines.join('\n')).toMatch(/limits: head 10000 ms, request 15000 ms, keep-alive 5000 ms, idle 30000 ms; 512 connections, 64 per address; shutdown deadline 10000 ms/);
  });

  it('refuses bad arguments (exit 2) and broken model directories (exit 1) with one line and its code', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'chord-cli-empty-'));
    const cases: [string[], number, RegExp][] = [
      [['--port', '0'], 2, /^serve: USAGE: --models is required \(--help for usage\)$/],
      [['--models', modelsDir, '--port', 'abc'], 2, /^serve: USAGE: --port must be an integer/],
      [['--models', modelsDir, '--origin', 'shop.example'], 2, /^serve: USAGE: --origin must be a scheme and host/],
      [['--models', modelsDir, '--workers', 'two'], 2, /^serve: USAGE: --workers must be an integer/],
      [['--models', modelsDir, '--max-connections', '0'], 2, /^serve: USAGE: --max-connections must be an integer >= 1/],
      [['--models', modelsDir, '--headers-timeout-ms', '20000', '--request-timeout-ms', '1000'], 2, /^serve: USAGE: limits.headersTimeoutMs \(20000\) must not exceed requestTimeoutMs/],
      [['--models', modelsDir, '--colour', 'red'], 2, /^serve: ERR_PARSE_ARGS_UNKNOWN_OPTION: /],
      [['--models', empty, '--port', '0'], 1, /^serve: MODEL_LOAD_FAILED: .*no model directory/],
    ];
    const clis = cases.map(([args]) => runCli(args));
    for (const [i, cli] of clis.entries()) {
      const [, status, line] = cases[i]!;
      expect(await cli.exited).toBe(status);
      expect(cli.lines).toHaveLength(1); // one line, no stack trace
      expect(cli.lines[0]).toMatch(line);
    }
    await rm(empty, { recursive: true, force: true });
  });

  it('answers --help with the usage, even without the required options', async () => {
    const cli = runCli(['--help']);
    expect(await cli.exited).toBe(0);
    expect(cli.lines[0]).toMatch(/^usage: npm run serve -- --models <dir>/);
  });
});
