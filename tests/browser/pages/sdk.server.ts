// A stand-in strategy + artifact server for the SDK browser specs (Node side, node:http).
// Runs in the Playwright test process, never in the page.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { encodeStrategy } from '../../../src/core/bitstream.ts';
import type { Strategy } from '../../../src/core/strategy.ts';
import { encodeTensorFile } from '../../../src/core/tensor-file.ts';

export type ServerMode =
  | { kind: 'ok' }
  | { kind: 'status'; status: number }
  /** An HTML page with 200, as a captive portal or CDN error page sends. */
  | { kind: 'html' }
  | { kind: 'delay'; ms: number }
  /** A valid bitstream for other frozen weights. */
  | { kind: 'wrong-hash' }
  | { kind: 'garbage' };

export interface LoggedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export const MODEL_ID = 'sasrec-test';
export const FROZEN_HASH = 'ab'.repeat(32);
export const LAYERS = [
  { name: 'block0.attn.q', outChannels: 8 },
  { name: 'block0.ffn.in', outChannels: 5 },
];

/** The strategy the server derives from z: level index of every channel = z[0] > 0 ? 3 : 1. */
export function strategyFor(z: number[], budget: number | undefined, hash = FROZEN_HASH): Uint8Array {
  const level = (z[0] ?? 0) > 0 ? 3 : 1;
  const strategy: Strategy = {
    levelTable: [2, 4, 6, 8],
    beta: budget === undefined ? 0.125 : Math.min(1, budget / 8),
    layers: LAYERS.map((l) => ({ name: l.name, levels: new Uint8Array(l.outChannels).fill(level) })),
  };
  return encodeStrategy(strategy, { modelId: MODEL_ID, frozenWeightsHash: hash });
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, GET, OPTIONS',
  'access-control-allow-headers': 'content-type',
};

export class StrategyTestServer {
  mode: ServerMode = { kind: 'ok' };
  readonly log: LoggedRequest[] = [];
  /** Artifacts served at /artifacts/<name>.json|.bin */
  readonly artifacts = new Map<string, { json: string; bin: Uint8Array }>();
  private server: Server | null = null;
  private sockets = new Set<Socket>();
  port = 0;

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get strategyPosts(): LoggedRequest[] {
    return this.log.filter((r) => r.method === 'POST');
  }

  addArtifact(name: string, rows: number, seed: number): void {
    const data = new Float32Array(rows * 64).map((_, i) => seed + i * 0.25);
    const { index, bin } = encodeTensorFile(new Map([['item_emb', { shape: [rows, 64], data }]]));
    this.artifacts.set(name, { json: JSON.stringify(index), bin });
  }

  /** Starts on `port` (0 = any free port; by default the last one, to come back "online"); no-op if running. */
  async start(port = this.port): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => void this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and drops open connections: the endpoint is now unreachable. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    this.log.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers }, body });
    if (req.method === 'OPTIONS') {
      res.writeHead(204, CORS).end();
      return;
    }
    const artifact = /^\/artifacts\/([a-z]+)\.(json|bin)$/.exec(req.url ?? '');
    if (req.method === 'GET' && artifact) {
      const a = this.artifacts.get(artifact[1]!);
      if (!a) {
        res.writeHead(404, CORS).end();
        return;
      }
      const payload = artifact[2] === 'json' ? Buffer.from(a.json) : Buffer.from(a.bin);
      res.writeHead(200, {
        ...CORS,
        'content-type': artifact[2] === 'json' ? 'application/json' : 'application/octet-stream',
        'content-length': String(payload.byteLength),
      });
      res.end(payload);
      return;
    }
    if (req.method !== 'POST' || req.url !== `/v1/models/${MODEL_ID}/strategy`) {
      res.writeHead(404, CORS).end();
      return;
    }
    const { z, budget } = JSON.parse(body) as { z: number[]; budget?: number };
    const mode = this.mode;
    if (mode.kind === 'delay') await new Promise((r) => setTimeout(r, mode.ms));
    if (mode.kind === 'status') {
      res.writeHead(mode.status, { ...CORS, 'content-type': 'application/json' }).end('{"error":"boom"}');
      return;
    }
    if (mode.kind === 'html') {
      res.writeHead(200, { ...CORS, 'content-type': 'text/html' }).end('<!doctype html><title>Sign in to Wi-Fi</title>');
      return;
    }
    let bytes: Uint8Array = strategyFor(z, budget, mode.kind === 'wrong-hash' ? 'cd'.repeat(32) : FROZEN_HASH);
    if (mode.kind === 'garbage') bytes = bytes.map((b, i) => (i === 20 ? b ^ 0xff : b));
    if (res.destroyed) return;
    res.writeHead(200, { ...CORS, 'content-type': 'application/octet-stream' }).end(Buffer.from(bytes));
  }
}

/**
 * A reverse proxy in front of the Vite dev server that adds `Service-Worker-Allowed: /` to every
 * response, so the worker script under /src/sw/ may control pages at "/". (Playwright's
 * context.route could add the header too, but while routing is on, Chromium's worker fetches
 * fail, which would hide the very behaviour under test.)
 */
export async function startSwAllowedProxy(targetPort: number): Promise<{ origin: string; close: () => Promise<void> }> {
  const { request } = await import('node:http');
  const sockets = new Set<Socket>();
  const proxy = createServer((req, res) => {
    const upstream = request(
      { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: { ...req.headers, host: `127.0.0.1:${targetPort}` } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, { ...up.headers, 'service-worker-allowed': '/' });
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  proxy.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}
