/**
 * The strategy server over real HTTP: each server listens on an ephemeral loopback port and is
 * driven with fetch.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { averageBits } from '../../src/core/allocation.ts';
import { decodeStrategy } from '../../src/core/bitstream.ts';
import { applyBudget, channelRangesFromWeights } from '../../src/core/budget.ts';
import { generateFrozenWeights } from '../../src/core/frozen.ts';
import { Hypernet } from '../../src/core/hypernet.ts';
import type { Strategy } from '../../src/core/strategy.ts';
import { encodeTensorFile } from '../../src/core/tensor-file.ts';
import { etagOf } from '../../src/cloud/artifacts.ts';
import { createServer } from '../../src/cloud/server.ts';
import type { ChordServer, ServerOptions } from '../../src/cloud/server.ts';
import { snapZ } from '../../src/cloud/strategy-service.ts';
import { writeTestModel } from '../fixtures/artifacts.ts';
import type { TestModel } from '../fixtures/artifacts.ts';

let modelsDir: string;
let tiny: TestModel;
const servers: ChordServer[] = [];

async function start(options: Omit<ServerOptions, 'modelsDir'> = {}): Promise<{ server: ChordServer; url: string }> {
  const server = await createServer({ modelsDir, rateLimit: false, ...options });
  servers.push(server);
  return { server, url: await server.listen(0, '127.0.0.1') };
}

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'chord-cloud-'));
  tiny = await writeTestModel(modelsDir, { modelId: 'tiny', seed: 3 });
  await writeTestModel(modelsDir, { modelId: 'tiny-custom', seed: 4, method: 'custom' });
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await rm(modelsDir, { recursive: true, force: true });
});

const JSON_TYPE = { 'content-type': 'application/json' };
const BIN_TYPE = { 'content-type': 'application/octet-stream' };

function userZ(seed: number, dim = 8): number[] {
  let s = seed + 1;
  return Array.from({ length: dim }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
}

function f32Bytes(values: ArrayLike<number>): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i]!, true);
  return bytes;
}

async function postJson(url: string, body: unknown, model = 'tiny', headers: Record<string, string> = {}) {
  return fetch(`${url}/v1/models/${model}/strategy`, {
    method: 'POST',
    headers: { ...JSON_TYPE, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function bytesOf(res: Response): Promise<Uint8Array> {
  return new Uint8Array(await res.arrayBuffer());
}

const levels = (s: Strategy) => s.layers.map((l) => Array.from(l.levels));

function coreStrategy(z: ArrayLike<number>): Strategy {
  return new Hypernet(tiny.hypernetConfig, tiny.hypernetTensors).strategy(Float32Array.from(z));
}

function frozenInfo() {
  return generateFrozenWeights(tiny.manifest).map((l) => ({
    rowLength: l.spec.rowLength,
    ranges: channelRangesFromWeights(l.weights, l.spec.outChannels, l.spec.rowLength),
  }));
}

function decode(bytes: Uint8Array) {
  const m = tiny.manifest;
  return decodeStrategy(bytes, { modelId: m.modelId, frozenWeightsHash: m.frozenWeightsHash, layers: m.layers });
}

describe('strategy endpoint: happy path', () => {
  let url: string;
  beforeAll(async () => ({ url } = await start()));

  it("answers a bitstream that core decodes and that equals Hypernet.strategy(z)", async () => {
    // z on the 2^-16 grid is answered for exactly this z.
    const z = userZ(1).map((x) => Math.round(x * 65536) / 65536);
    const res = await postJson(url, { z });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const bytes = await bytesOf(res);
    const decoded = decode(bytes);
    const want = coreStrategy(z);
    expect(levels(decoded.strategy)).toEqual(levels(want));
    expect(decoded.strategy.levelTable).toEqual([2, 4, 6, 8]);
    expect(res.headers.get('etag')).toBe(etagOf(bytes));
    expect(res.headers.get('cache-control')).toBe('private, max-age=300');
    const rowLengths = tiny.manifest.layers.map((l) => l.rowLength);
    expect(res.headers.get('x-chord-average-bits')).toBe(averageBits(want, rowLengths).toFixed(4));
  });

  it('answers an off-grid z with the strategy of its snapped z, and different users differently', async () => {
    const answers = new Set<string>();
    for (let u = 0; u < 4; u++) {
      const z = userZ(100 + u);
      const bytes = await bytesOf(await postJson(url, { z }));
      expect(levels(decode(bytes).strategy)).toEqual(levels(coreStrategy(snapZ(Float32Array.from(z), 16))));
      answers.add(Buffer.from(bytes).toString('hex'));
    }
    expect(answers.size).toBe(4);
  });

  it('applies the budget through T with the frozen-weight ranges', async () => {
    const z = userZ(2);
    const base = coreStrategy(snapZ(Float32Array.from(z), 16));
    for (const budget of [2.5, 2]) {
      const res = await postJson(url, { z, budget });
      expect(res.status).toBe(200);
      const want = applyBudget(base, frozenInfo(), budget);
      expect(want.demotions).toBeGreaterThan(0);
      expect(levels(decode(await bytesOf(res)).strategy)).toEqual(levels(want.strategy));
      expect(Number(res.headers.get('x-chord-average-bits'))).toBeCloseTo(want.averageBits, 4);
      expect(want.averageBits).toBeLessThanOrEqual(budget);
    }
  });

  it('accepts binary little-endian float32 z with ?budget= and answers the same bytes as JSON', async () => {
    const z = userZ(3);
    const json = await bytesOf(await postJson(url, { z, budget: 2.5 }));
    const res = await fetch(`${url}/v1/models/tiny/strategy?budget=2.5`, { method: 'POST', headers: BIN_TYPE, body: f32Bytes(z) });
    expect(res.status).toBe(200);
    expect(Buffer.from(await bytesOf(res)).equals(Buffer.from(json))).toBe(true);
  });

  it('serves a repeated z from the cache with identical bytes and ETag', async () => {
    const z = userZ(4);
    const first = await postJson(url, { z });
    const second = await postJson(url, { z });
    expect(first.headers.get('x-chord-cache')).toBe('miss');
    expect(second.headers.get('x-chord-cache')).toBe('hit');
    expect(second.headers.get('etag')).toBe(first.headers.get('etag'));
    expect(Buffer.from(await bytesOf(second)).equals(Buffer.from(await bytesOf(first)))).toBe(true);
  });

  it('serves a model without E/L heads (custom method)', async () => {
    const res = await postJson(url, { z: userZ(5) }, 'tiny-custom');
    expect(res.status).toBe(200);
    expect(decodeStrategy(await bytesOf(res)).modelId).toBe('tiny-custom');
  });
});

describe('strategy endpoint: bad input is a 4xx naming the problem, never a 500', () => {
  let url: string;
  beforeAll(async () => ({ url } = await start({ bodyLimit: 4096 })));

  const z = userZ(9);
  const cases: { name: string; init: RequestInit; path?: string; status: number; code: string; message: RegExp }[] = [
    { name: 'short z', init: { headers: JSON_TYPE, body: JSON.stringify({ z: [0.1, 0.2] }) }, status: 400, code: 'BAD_Z_LENGTH', message: /2 values.*expects 8/ },
    { name: 'long z', init: { headers: JSON_TYPE, body: JSON.stringify({ z: [...z, 0] }) }, status: 400, code: 'BAD_Z_LENGTH', message: /9 values/ },
    { name: 'binary z of 7 floats', init: { headers: BIN_TYPE, body: f32Bytes(z.slice(1)) }, status: 400, code: 'BAD_Z_LENGTH', message: /7 values/ },
    { name: 'binary z not a multiple of 4 bytes', init: { headers: BIN_TYPE, body: new Uint8Array(30) }, status: 400, code: 'BAD_Z_LENGTH', message: /30 bytes/ },
    { name: 'binary NaN', init: { headers: BIN_TYPE, body: f32Bytes([...z.slice(0, 5), NaN, ...z.slice(6)]) }, status: 400, code: 'NON_FINITE_Z', message: /z\[5\] is NaN/ },
    { name: 'binary -Infinity', init: { headers: BIN_TYPE, body: f32Bytes([-Infinity, ...z.slice(1)]) }, status: 400, code: 'NON_FINITE_Z', message: /z\[0\] is -Infinity/ },
    { name: 'JSON NaN (not JSON at all)', init: { headers: JSON_TYPE, body: `{"z":[NaN,${z.slice(1).join(',')}]}` }, status: 400, code: 'BAD_JSON', message: /not valid JSON/ },
    { name: 'JSON 1e39 (Infinity as float32)', init: { headers: JSON_TYPE, body: `{"z":[1e39,${z.slice(1).join(',')}]}` }, status: 400, code: 'Z_OUT_OF_RANGE', message: /z\[0\] = 1e\+39/ },
    { name: 'string z values', init: { headers: JSON_TYPE, body: JSON.stringify({ z: z.map(String) }) }, status: 400, code: 'INVALID_REQUEST', message: /z\/0 must be number/ },
    { name: 'z missing', init: { headers: JSON_TYPE, body: JSON.stringify({ budget: 3 }) }, status: 400, code: 'INVALID_REQUEST', message: /required property 'z'/ },
    { name: 'unknown body key', init: { headers: JSON_TYPE, body: JSON.stringify({ z, zz: 1 }) }, status: 400, code: 'INVALID_REQUEST', message: /additional properties/ },
    { name: 'broken JSON', init: { headers: JSON_TYPE, body: '{"z": [0.1, 0.2' }, status: 400, code: 'BAD_JSON', message: /not valid JSON/ },
    { name: 'empty JSON body', init: { headers: JSON_TYPE, body: '' }, status: 400, code: 'EMPTY_BODY', message: /empty/ },
    { name: 'empty binary body', init: { headers: BIN_TYPE, body: new Uint8Array(0) }, status: 400, code: 'EMPTY_BODY', message: /empty/ },
    { name: 'no body, no content type', init: {}, status: 400, code: 'EMPTY_BODY', message: /no body/ },
    { name: 'oversized body', init: { headers: JSON_TYPE, body: JSON.stringify({ z: new Array(2000).fill(0.125) }) }, status: 413, code: 'BODY_TOO_LARGE', message: /too large/ },
    { name: 'text/plain', init: { headers: { 'content-type': 'text/plain' }, body: z.join(',') }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: /application\/octet-stream/ },
    { name: 'form encoding', init: { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'z=1' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: /Unsupported Media Type/ },
    { name: 'budget above 8', init: { headers: JSON_TYPE, body: JSON.stringify({ z, budget: 9 }) }, status: 400, code: 'BAD_BUDGET', message: /\[2, 8\]/ },
    { name: 'budget below 2', init: { headers: JSON_TYPE, body: JSON.stringify({ z, budget: 1.5 }) }, status: 400, code: 'BAD_BUDGET', message: /budget 1.5/ },
    { name: 'budget as a string', init: { headers: JSON_TYPE, body: JSON.stringify({ z, budget: '3' }) }, status: 400, code: 'INVALID_REQUEST', message: /budget must be number/ },
    { name: 'query budget not a number', path: '/v1/models/tiny/strategy?budget=NaN', init: { headers: BIN_TYPE, body: f32Bytes(z) }, status: 400, code: 'BAD_BUDGET', message: /"NaN" is not a decimal/ },
    { name: 'query budget hex', path: '/v1/models/tiny/strategy?budget=0x3', init: { headers: BIN_TYPE, body: f32Bytes(z) }, status: 400, code: 'BAD_BUDGET', message: /not a decimal/ },
    { name: 'budget in body and query', path: '/v1/models/tiny/strategy?budget=3', init: { headers: JSON_TYPE, body: JSON.stringify({ z, budget: 3 }) }, status: 400, code: 'BAD_BUDGET', message: /both/ },
    { name: 'unknown model', path: '/v1/models/nope/strategy', init: { headers: JSON_TYPE, body: JSON.stringify({ z }) }, status: 404, code: 'UNKNOWN_MODEL', message: /no model "nope"/ },
    { name: 'unknown route', path: '/v1/modelz', init: { headers: JSON_TYPE, body: JSON.stringify({ z }) }, status: 404, code: 'NOT_FOUND', message: /POST \/v1\/modelz/ },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const res = await fetch(`${url}${c.path ?? '/v1/models/tiny/strategy'}`, { method: 'POST', ...c.init });
      expect(res.status).toBe(c.status);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe(c.code);
      expect(body.error.message).toMatch(c.message);
    });
  }

  it('answers extreme but valid input (|z| at the limit, budgets at the bounds) with 200', async () => {
    const extreme = z.map((_, i) => (i % 2 ? 1e4 : -1e4));
    for (const budget of [undefined, 2, 8]) {
      const res = await postJson(url, budget === undefined ? { z: extreme } : { z: extreme, budget });
      expect(res.status).toBe(200);
      decode(await bytesOf(res));
    }
  });
});

describe('a z whose sensitivities overflow', () => {
  it('is answered 422 unprocessable-z for that z alone, never 500', async () => {
    // A deliberately fragile model: h = tanh(z) on the first 8 hidden units, and one α_F row so
    // steep that Σ tanh(z) beyond ~±1.1 overflows float32.
    const dir = await mkdtemp(join(tmpdir(), 'chord-fragile-'));
    try {
      const m = await writeTestModel(dir, { modelId: 'fragile', seed: 6 });
      const t = m.hypernetTensors;
      const { hidden, zDim } = m.hypernetConfig;
      const trunk = new Float32Array(hidden * zDim);
      for (let c = 0; c < zDim; c++) trunk[c * zDim + c] = 1;
      t.set('hyper.trunk.w', { shape: [hidden, zDim], data: trunk });
      t.set('hyper.trunk.b', { shape: [hidden], data: new Float32Array(hidden) });
      const first = m.hypernetConfig.layers[0]!;
      const fw = new Float32Array(first.outChannels * hidden);
      fw.fill(3e38, 0, hidden);
      t.set(`hyper.F.${first.name}.w`, { shape: [first.outChannels, hidden], data: fw });
      const { index, bin } = encodeTensorFile(t);
      await writeFile(join(m.dir, 'hyper.json'), JSON.stringify(index));
      await writeFile(join(m.dir, 'hyper.bin'), bin);
      const server = await createServer({ modelsDir: dir, rateLimit: false, strategy: { batchWindowMs: 20 } });
      servers.push(server);
      const url = await server.listen(0);
      const [ok, high, low] = await Promise.all([
        postJson(url, { z: new Array(8).fill(0) }, 'fragile'),
        postJson(url, { z: new Array(8).fill(0.5) }, 'fragile'),
        postJson(url, { z: new Array(8).fill(-0.5) }, 'fragile'),
      ]);
      expect([ok.status, high.status, low.status]).toEqual([200, 422, 422]);
      const body = (await high.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('UNPROCESSABLE_Z');
      expect(body.error.message).toMatch(/alphaF\[0\] is Infinity/);
      expect(((await low.json()) as { error: { message: string } }).error.message).toMatch(/alphaF\[0\] is -Infinity/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('micro-batching', () => {
  it('answers 50 concurrent requests exactly as 50 single requests, in batches larger than 1', async () => {
    // No cache anywhere, so every answer below is computed. The single requests go to a second
    // server that runs each batch as soon as the event loop turns (window 0).
    const { url } = await start({ strategy: { batchWindowMs: 50, maxBatch: 64, cacheEntries: 0 } });
    const { url: singleUrl } = await start({ strategy: { batchWindowMs: 0, cacheEntries: 0 } });
    const zs = Array.from({ length: 50 }, (_, i) => userZ(1000 + i));
    const concurrent = await Promise.all(zs.map(async (z) => bytesOf(await postJson(url, { z, budget: i2b(z) }))));
    expect(await metricValue(url, 'chord_strategy_batch_size_sum{model="tiny"}')).toBe(50);
    expect(await metricValue(url, 'chord_strategy_batch_size_count{model="tiny"}')).toBeLessThan(50); // some batch held several
    for (let i = 0; i < zs.length; i++) {
      const single = await bytesOf(await postJson(singleUrl, { z: zs[i]!, budget: i2b(zs[i]!) }));
      expect(Buffer.from(concurrent[i]!).equals(Buffer.from(single))).toBe(true);
    }
    expect(await metricValue(singleUrl, 'chord_strategy_batch_size_count{model="tiny"}')).toBe(50); // one batch each
  });

  it('fails one bad request without touching the others in its batch', async () => {
    const { url } = await start({ strategy: { batchWindowMs: 20, cacheEntries: 0 } });
    const good = [userZ(1), userZ(2), userZ(3)];
    const responses = await Promise.all([
      postJson(url, { z: good[0] }),
      postJson(url, { z: [1, 2, 3] }),
      postJson(url, { z: good[1] }),
      fetch(`${url}/v1/models/tiny/strategy`, { method: 'POST', headers: BIN_TYPE, body: f32Bytes([NaN, ...good[2]!.slice(1)]) }),
      postJson(url, { z: good[2] }),
    ]);
    expect(responses.map((r) => r.status)).toEqual([200, 400, 200, 400, 200]);
    for (const [i, zi] of [[0, 0], [2, 1], [4, 2]] as const) {
      const bytes = await bytesOf(responses[i]!);
      expect(levels(decode(bytes).strategy)).toEqual(levels(coreStrategy(snapZ(Float32Array.from(good[zi]!), 16))));
    }
  });
});

/** Budgets that differ between neighbouring requests (all below the ~3.1 bits T starts from), so batches mix them. */
const BUDGETS = [undefined, 2.25, 2.5, 2.75, 3];
function i2b(z: number[]): number | undefined {
  return BUDGETS[Math.floor((z[0]! + 1) * 1000) % BUDGETS.length];
}

async function metricValue(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`metric ${series} not found`);
  return Number(line.slice(series.length + 1));
}

describe('rate limiting', () => {
  it('answers 429 with Retry-After past the limit, and leaves /healthz alone', async () => {
    const { url } = await start({ rateLimit: { max: 3, timeWindowMs: 60_000 } });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await postJson(url, { z: userZ(i) })).status);
    expect(statuses).toEqual([200, 200, 200]);
    const limited = await postJson(url, { z: userZ(9) });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    expect((await fetch(`${url}/v1/models`)).status).toBe(429);
    for (let i = 0; i < 5; i++) expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });
});

describe('bearer tokens', () => {
  let url: string;
  beforeAll(async () => ({ url } = await start({ tokens: ['t0k3n-a', 'another-token'], origins: ['https://shop.example'] })));

  it('rejects missing and unknown tokens with 401, accepts each configured token', async () => {
    const z = userZ(7);
    const none = await postJson(url, { z });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    expect((await postJson(url, { z }, 'tiny', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await postJson(url, { z }, 'tiny', { authorization: 't0k3n-a' })).status).toBe(401);
    expect((await postJson(url, { z }, 'tiny', { authorization: 'Bearer t0k3n-a' })).status).toBe(200);
    expect((await postJson(url, { z }, 'tiny', { authorization: 'Bearer another-token' })).status).toBe(200);
    expect((await fetch(`${url}/v1/models`)).status).toBe(401);
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
  });

  it('lets /healthz and CORS preflights through without a token', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const pre = await fetch(`${url}/v1/models/tiny/strategy`, {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://shop.example');
  });
});

describe('CORS', () => {
  let url: string;
  beforeAll(async () => ({ url } = await start({ origins: ['https://shop.example', 'https://other.example'] })));

  it('allows configured shop origins and exposes the strategy headers', async () => {
    const res = await postJson(url, { z: userZ(8) }, 'tiny', { origin: 'https://other.example' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://other.example');
    const exposed = res.headers.get('access-control-expose-headers')!.toLowerCase();
    for (const h of ['etag', 'x-chord-average-bits']) expect(exposed).toContain(h);
  });

  it('does not allow other origins', async () => {
    const res = await postJson(url, { z: userZ(8) }, 'tiny', { origin: 'https://evil.example' });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers preflights with the allowed method and headers', async () => {
    const pre = await fetch(`${url}/v1/models/tiny/strategy`, {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    expect(pre.headers.get('access-control-allow-headers')!.toLowerCase()).toContain('content-type');
    expect(pre.headers.get('access-control-max-age')).toBe('600');
  });

  it('sends no CORS headers when no origin is configured', async () => {
    const { url: plain } = await start();
    const res = await postJson(plain, { z: userZ(8) }, 'tiny', { origin: 'https://shop.example' });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('models, files, health and metrics', () => {
  let url: string;
  beforeAll(async () => ({ url } = await start()));

  it('lists the models', async () => {
    const body = (await (await fetch(`${url}/v1/models`)).json()) as { models: { modelId: string; method: string; zDim: number; layers: number; channels: number }[] };
    expect(body.models.map((m) => [m.modelId, m.method, m.zDim, m.layers])).toEqual([
      ['tiny', 'chord', 8, 6],
      ['tiny-custom', 'custom', 8, 6],
    ]);
    expect(body.models[0]!.channels).toBe(tiny.manifest.layers.reduce((s, l) => s + l.outChannels, 0));
  });

  it('serves the manifest and the page files with ETag and immutable caching, and 304 on a match', async () => {
    const manifest = await fetch(`${url}/v1/models/tiny/manifest`);
    expect(manifest.status).toBe(200);
    expect(await manifest.json()).toEqual(tiny.manifest);
    for (const name of ['manifest.json', 'items.json', 'backbone.json', 'backbone.bin', 'gru.json', 'gru.bin']) {
      const res = await fetch(`${url}/v1/models/tiny/files/${name}`);
      expect(res.status).toBe(200);
      const bytes = await bytesOf(res);
      expect(Buffer.from(bytes).equals(await readFile(join(tiny.dir, name)))).toBe(true);
      expect(res.headers.get('etag')).toBe(etagOf(bytes));
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      const again = await fetch(`${url}/v1/models/tiny/files/${name}`, { headers: { 'if-none-match': res.headers.get('etag')! } });
      expect(again.status).toBe(304);
    }
  });

  it('never serves the hypernet or anything else', async () => {
    for (const name of ['hyper.bin', 'hyper.json', 'hypernet.json', '..%2Fhyper.bin', '..%2F..%2Fetc%2Fpasswd']) {
      const res = await fetch(`${url}/v1/models/tiny/files/${name}`);
      expect(res.status).toBe(404);
    }
    expect((await fetch(`${url}/v1/models/nope/files/gru.bin`)).status).toBe(404);
  });

  it('reports health', async () => {
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok', models: 2 });
  });

  it('exports Prometheus metrics: requests by route and status, latency, batch sizes, cache', async () => {
    const z = userZ(42);
    await postJson(url, { z });
    await postJson(url, { z });
    await postJson(url, { z: [1] });
    const res = await fetch(`${url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/chord_http_requests_total\{route="\/v1\/models\/:model\/strategy",method="POST",status="200"\} 2/);
    expect(text).toMatch(/chord_http_requests_total\{route="\/v1\/models\/:model\/strategy",method="POST",status="400"\} 1/);
    expect(text).toMatch(/chord_http_request_duration_seconds_count\{route="\/v1\/models\/:model\/strategy"\} 3/);
    expect(text).toMatch(/chord_strategy_batch_size_count\{model="tiny"\} 1/);
    expect(text).toMatch(/chord_strategy_cache_total\{result="hit"\} 1/);
    expect(text).toMatch(/chord_strategy_cache_total\{result="miss"\} 1/);
  });
});

describe('graceful shutdown', () => {
  for (const workers of [1, 0]) {
    it(`finishes an in-flight request, then refuses new connections (workers: ${workers})`, async () => {
      // A long batch window keeps the request in flight until close() flushes it; with a
      // worker, the batch goes to it (inlineMaxBatch 0), so close() has to wait for the thread.
      const { server, url } = await start({ workers, strategy: { batchWindowMs: 10_000, inlineMaxBatch: 0 } });
      const z = userZ(77);
      const inflight = postJson(url, { z });
      while (server.service.pending === 0) await new Promise((r) => setTimeout(r, 5));
      const closed = server.close();
      const res = await inflight;
      expect(res.status).toBe(200);
      expect(levels(decode(await bytesOf(res)).strategy)).toEqual(levels(coreStrategy(snapZ(Float32Array.from(z), 16))));
      await closed;
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
      expect(server.pool?.threads ?? []).toHaveLength(0);
    });
  }
});

describe('compute workers', () => {
  it('computes on worker threads by default and answers exactly as the main thread does (workers: 0)', async () => {
    const { server, url } = await start({ strategy: { batchWindowMs: 20, cacheEntries: 0, inlineMaxBatch: 0 } });
    const { server: inline, url: inlineUrl } = await start({ workers: 0, strategy: { batchWindowMs: 20, cacheEntries: 0 } });
    expect(server.pool?.size).toBe(1);
    expect(inline.pool).toBeUndefined();
    const before = server.pool!.batches;
    const zs = Array.from({ length: 12 }, (_, i) => userZ(500 + i));
    const [a, b] = await Promise.all(
      [url, inlineUrl].map((u) => Promise.all(zs.map(async (z) => postJson(u, { z, budget: i2b(z) })))),
    );
    for (let i = 0; i < zs.length; i++) {
      expect([a![i]!.status, b![i]!.status]).toEqual([200, 200]);
      expect(a![i]!.headers.get('etag')).toBe(b![i]!.headers.get('etag'));
      expect(a![i]!.headers.get('x-chord-average-bits')).toBe(b![i]!.headers.get('x-chord-average-bits'));
      expect(Buffer.from(await bytesOf(a![i]!)).equals(Buffer.from(await bytesOf(b![i]!)))).toBe(true);
    }
    expect(server.pool!.batches).toBeGreaterThan(before);
  });

  it('computes small batches on the main thread while the workers are idle, larger ones on the workers', async () => {
    // A long window, so each group of concurrent requests surely forms one batch.
    const { server, url } = await start({ strategy: { batchWindowMs: 1000, cacheEntries: 0, inlineMaxBatch: 3 } });
    const pool = server.pool!;
    const small = await Promise.all([0, 1, 2].map((i) => postJson(url, { z: userZ(700 + i) })));
    expect(small.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(pool.batches).toBe(0);
    const large = await Promise.all([0, 1, 2, 3, 4].map((i) => postJson(url, { z: userZ(710 + i) })));
    expect(large.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(pool.batches).toBe(1);
    for (const [i, r] of large.entries()) {
      expect(levels(decode(await bytesOf(r)).strategy)).toEqual(levels(coreStrategy(snapZ(Float32Array.from(userZ(710 + i)), 16))));
    }
  });

  it('answers the requests of a batch whose worker dies with 503 compute-unavailable JSON, then serves again', async () => {
    const reported: unknown[] = [];
    // The window is long enough for both requests to share the batch that crashes.
    const { server, url } = await start({
      strategy: { batchWindowMs: 300, cacheEntries: 0, inlineMaxBatch: 0 },
      onInternalError: (e) => reported.push(e),
    });
    server.pool!.crashNextBatch();
    const [r1, r2] = await Promise.all([postJson(url, { z: userZ(60) }), postJson(url, { z: userZ(61) })]);
    for (const r of [r1!, r2!]) {
      expect(r.status).toBe(503);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      const body = (await r.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('COMPUTE_UNAVAILABLE');
      expect(body.error.message).toMatch(/retry/);
    }
    // The pool reported the death once (not once per request) and replaced the worker.
    expect(reported).toHaveLength(1);
    const again = await postJson(url, { z: userZ(60) });
    expect(again.status).toBe(200);
    expect(levels(decode(await bytesOf(again)).strategy)).toEqual(levels(coreStrategy(snapZ(Float32Array.from(userZ(60)), 16))));
  });
});
