/**
 * The strategy server under hostile traffic, over real loopback sockets: clients that never
 * finish their request, more connections than the caps, a table of malformed requests (each
 * non-2xx must be the `{"error": {"code", "message"}}` envelope), and close() with clients left
 * hanging. Timeouts are short here so every case is bounded; each table prints its count of
 * cases and failures.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../src/cloud/server.ts';
import type { ChordServer, ServerOptions } from '../../src/cloud/server.ts';
import { writeTestModel } from '../fixtures/artifacts.ts';
import { envelopeProblem, rawExchange } from '../fixtures/raw-http.ts';
import type { RawExchange } from '../fixtures/raw-http.ts';

let modelsDir: string;
const servers: ChordServer[] = [];

async function start(options: Omit<ServerOptions, 'modelsDir'> = {}): Promise<{ server: ChordServer; url: string; port: number }> {
  const server = await createServer({ modelsDir, rateLimit: false, workers: 0, ...options });
  servers.push(server);
  const url = await server.listen(0, '127.0.0.1');
  return { server, url, port: Number(new URL(url).port) };
}

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'chord-hostile-'));
  await writeTestModel(modelsDir, { modelId: 'tiny', seed: 3 });
});

afterAll(async () => {
  await Promise.all(servers.map((s) => Promise.race([s.close(), new Promise((r) => setTimeout(r, 2000))])));
  await rm(modelsDir, { recursive: true, force: true });
});

const Z = JSON.stringify({ z: [0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8] });
const STRATEGY_HEAD = 'POST /v1/models/tiny/strategy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';

function strategyRequest(body = Z, extraHeaders = ''): string {
  return `${STRATEGY_HEAD}Content-Length: ${Buffer.byteLength(body, 'latin1')}\r\n${extraHeaders}\r\n${body}`;
}

/** Prints "<name>: N cases, F failures" and fails the test with the failures listed. */
function report(name: string, cases: number, failures: string[]): void {
  console.log(`${name}: ${cases} cases, ${failures.length} failures`);
  expect(failures).toEqual([]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Short limits: the check interval is a quarter of the shorter timeout, so a slow client is
// closed at most ~1.25x its timeout after it connected.
const SHORT = { headersTimeoutMs: 400, requestTimeoutMs: 800, keepAliveTimeoutMs: 300, idleSocketTimeoutMs: 5_000 };
/** How long the tests wait for the server to close a slow client before calling it held. */
const HELD_AFTER_MS = 3_000;

describe('slow clients', () => {
  it('closes partial-header, partial-body and silent clients with a 408 envelope while a healthy request is served', async () => {
    const { url, port } = await start({ limits: SHORT });
    const slow: { name: string; done: Promise<RawExchange> }[] = [];
    for (let i = 0; i < 6; i++) {
      // Full head, 10 of 200 body bytes, then nothing.
      slow.push({ name: `partial body ${i}`, done: rawExchange({ port, send: `${STRATEGY_HEAD}Content-Length: 200\r\n\r\n{"z":[0.1,`, deadlineMs: HELD_AFTER_MS }).done });
      slow.push({ name: `partial head ${i}`, done: rawExchange({ port, send: 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ', deadlineMs: HELD_AFTER_MS }).done });
    }
    slow.push({ name: 'silent', done: rawExchange({ port, deadlineMs: HELD_AFTER_MS }).done });
    // One that trickles a byte every 100 ms: never idle, never finished.
    const trickle = rawExchange({ port, send: `${STRATEGY_HEAD}Content-Length: 500\r\n\r\n`, deadlineMs: HELD_AFTER_MS });
    const drip = setInterval(() => trickle.socket.writable && trickle.socket.write(' '), 100);
    slow.push({ name: 'trickling body', done: trickle.done.finally(() => clearInterval(drip)) });

    await sleep(100);
    const healthy = await fetch(`${url}/v1/models/tiny/strategy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Z });
    const failures: string[] = [];
    if (healthy.status !== 200) failures.push(`healthy request answered ${healthy.status} while slow clients were open`);
    await healthy.arrayBuffer();

    for (const { name, done } of slow) {
      const r = await done;
      if (r.ended !== 'server-closed') failures.push(`${name}: still open after ${HELD_AFTER_MS} ms`);
      else if (r.response?.status !== 408) failures.push(`${name}: closed with ${r.response?.status ?? 'no answer'}`);
      else {
        const problem = envelopeProblem(r.response);
        if (problem) failures.push(`${name}: ${problem}`);
        else if (JSON.parse(r.response.body).error.code !== 'REQUEST_TIMEOUT') failures.push(`${name}: ${r.response.body}`);
      }
    }
    report('slow clients', slow.length + 1, failures);
  });

  it('closes an idle keep-alive connection after keepAliveTimeoutMs', async () => {
    const { port } = await start({ limits: SHORT });
    const r = await rawExchange({ port, send: 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', deadlineMs: HELD_AFTER_MS }).done;
    expect(r.response?.status).toBe(200);
    expect(r.ended).toBe('server-closed');
    expect(r.ms).toBeLessThan(HELD_AFTER_MS);
  });
});

describe('connection caps', () => {
  it('refuses connections over the per-address cap with 429 and over the global cap with 503, both enveloped', async () => {
    const { port, server } = await start({ limits: { ...SHORT, requestTimeoutMs: 20_000, headersTimeoutMs: 20_000, maxConnections: 6, maxConnectionsPerAddress: 4 } });
    const failures: string[] = [];
    let cases = 0;
    const hold = (localAddress: string) => rawExchange({ port, localAddress, deadlineMs: 10_000 });
    const held = [hold('127.0.0.1'), hold('127.0.0.1'), hold('127.0.0.1'), hold('127.0.0.1')];
    await sleep(150);
    const check = async (what: string, localAddress: string, status: number, code: string) => {
      cases++;
      const r = await rawExchange({ port, localAddress, send: 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', deadlineMs: 2_000 }).done;
      const problem = status === 200 ? null : envelopeProblem(r.response);
      if (r.response?.status !== status) failures.push(`${what}: expected ${status}, got ${r.response?.status ?? r.ended}`);
      else if (problem) failures.push(`${what}: ${problem}`);
      else if (status !== 200 && JSON.parse(r.response.body).error.code !== code) failures.push(`${what}: ${r.response.body}`);
    };
    await check('5th from one address', '127.0.0.1', 429, 'TOO_MANY_CONNECTIONS');
    await check('another address', '127.0.0.2', 200, '');
    held.push(hold('127.0.0.2'), hold('127.0.0.3'));
    await sleep(150);
    await check('7th in all', '127.0.0.4', 503, 'SERVER_BUSY');
    cases++;
    if (server.connections.counts.open !== 6) failures.push(`open connections ${server.connections.counts.open}, expected 6`);
    for (const h of held) h.socket.destroy();
    await sleep(150);
    await check('after the held ones closed', '127.0.0.1', 200, '');
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    cases++;
    if (!/chord_refused_connections_total\{reason="per-address"\} 1/.test(metrics)) failures.push('refusals missing from /metrics');
    report('connection caps', cases, failures);
  });
});

interface EnvelopeCase {
  readonly name: string;
  readonly send: string;
  readonly status: number;
  readonly code: string;
}

const H = 'Host: x\r\n';
const get = (path: string, headers = '') => `GET ${path} HTTP/1.1\r\n${H}${headers}\r\n`;

const ENVELOPE_CASES: readonly EnvelopeCase[] = [
  // Bad percent-encoding (Fastify's router).
  { name: 'bad %-encoding in model', send: get('/v1/models/%ff/manifest'), status: 400, code: 'BAD_URL' },
  { name: 'truncated %-escape', send: `POST /v1/models/%E0%A4%A/strategy HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`, status: 400, code: 'BAD_URL' },
  { name: 'bad %-encoding in file name', send: get('/v1/models/tiny/files/%c3%28'), status: 400, code: 'BAD_URL' },
  { name: 'bad %-encoding in budget query', send: strategyRequest(Z).replace('/strategy', '/strategy?budget=%ff'), status: 400, code: 'BAD_BUDGET' },
  // Long parameters and heads.
  { name: 'model id of 101 characters', send: get(`/v1/models/${'a'.repeat(101)}/manifest`), status: 414, code: 'PARAM_TOO_LONG' },
  { name: 'file name of 150 characters', send: get(`/v1/models/tiny/files/${'b'.repeat(150)}`), status: 414, code: 'PARAM_TOO_LONG' },
  { name: 'model id of 100 characters', send: get(`/v1/models/${'a'.repeat(100)}/manifest`), status: 404, code: 'UNKNOWN_MODEL' },
  { name: '20 KB URL', send: get(`/v1/models?q=${'x'.repeat(20_000)}`), status: 431, code: 'HEADERS_TOO_LARGE' },
  { name: '2,000 headers', send: get('/healthz', Array.from({ length: 2000 }, (_, i) => `X-Header-${i}: value-${i}\r\n`).join('')), status: 431, code: 'HEADERS_TOO_LARGE' },
  { name: 'one 20 KB header', send: get('/healthz', `X-Big: ${'y'.repeat(20_000)}\r\n`), status: 431, code: 'HEADERS_TOO_LARGE' },
  // NUL bytes.
  { name: 'NUL in the path', send: get('/v1/mo\0dels'), status: 400, code: 'MALFORMED_REQUEST' },
  { name: 'NUL in a header value', send: get('/healthz', 'X-A: a\0b\r\n'), status: 400, code: 'MALFORMED_REQUEST' },
  { name: 'NUL in a header name', send: get('/healthz', 'X-\0A: b\r\n'), status: 400, code: 'MALFORMED_REQUEST' },
  { name: '%00 in the model id', send: get('/v1/models/ti%00ny/manifest'), status: 404, code: 'UNKNOWN_MODEL' },
  { name: 'NUL inside the JSON body', send: strategyRequest('{"z":"\\u0000"}'), status: 400, code: 'INVALID_REQUEST' },
  { name: 'raw NUL byte in the JSON body', send: strategyRequest('{"z":[0\0]}'), status: 400, code: 'BAD_JSON' },
  // Wrong methods.
  { name: 'PUT on a GET route', send: `PUT /v1/models HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`, status: 404, code: 'NOT_FOUND' },
  { name: 'DELETE a manifest', send: `DELETE /v1/models/tiny/manifest HTTP/1.1\r\n${H}\r\n`, status: 404, code: 'NOT_FOUND' },
  { name: 'GET the strategy route', send: get('/v1/models/tiny/strategy'), status: 404, code: 'NOT_FOUND' },
  { name: 'PATCH /healthz', send: `PATCH /healthz HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`, status: 404, code: 'NOT_FOUND' },
  { name: 'PROPFIND', send: `PROPFIND /v1/models HTTP/1.1\r\n${H}\r\n`, status: 404, code: 'NOT_FOUND' },
  { name: 'TRACE', send: `TRACE / HTTP/1.1\r\n${H}\r\n`, status: 404, code: 'NOT_FOUND' },
  { name: 'unknown method token', send: `FOO / HTTP/1.1\r\n${H}\r\n`, status: 400, code: 'MALFORMED_REQUEST' },
  { name: 'CONNECT', send: `CONNECT example.com:443 HTTP/1.1\r\n${H}\r\n`, status: 405, code: 'METHOD_NOT_ALLOWED' },
  { name: 'asterisk target', send: `OPTIONS * HTTP/1.1\r\n${H}\r\n`, status: 404, code: 'NOT_FOUND' },
  // Malformed heads and framing (Node's parser).
  { name: 'HTTP/1.1 without Host', send: 'GET /healthz HTTP/1.1\r\n\r\n', status: 400, code: 'INVALID_REQUEST' },
  { name: 'HTTP/3.0 request line', send: `GET /healthz HTTP/3.0\r\n${H}\r\n`, status: 400, code: 'MALFORMED_REQUEST' },
  { name: 'HTTP/2 preface', send: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', status: 400, code: 'MALFORMED_REQUEST' },
  { name: 'bare LF line endings', send: 'GET /healthz HTTP/1.1\nHost: x\n\n', status: 400, code: 'MALFORMED_REQUEST' },
  { name: 'space in a header name', send: get('/healthz', 'Bad Header: x\r\n'), status: 400, code: 'MALFORMED_REQUEST' },
  { name: 'bad chunk size', send: `${STRATEGY_HEAD}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, status: 400, code: 'MALFORMED_REQUEST' },
  { name: 'Content-Length and chunked', send: `${STRATEGY_HEAD}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, status: 400, code: 'MALFORMED_REQUEST' },
  { name: 'Content-Length not a number', send: `${STRATEGY_HEAD}Content-Length: abc\r\n\r\n`, status: 400, code: 'MALFORMED_REQUEST' },
  { name: 'two different Content-Lengths', send: `${STRATEGY_HEAD}Content-Length: 4\r\nContent-Length: 5\r\n\r\n12345`, status: 400, code: 'MALFORMED_REQUEST' },
  { name: 'Expect other than 100-continue', send: get('/healthz', 'Expect: bogus\r\n'), status: 417, code: 'EXPECTATION_FAILED' },
  // Bodies.
  { name: 'body over the limit', send: strategyRequest(JSON.stringify({ z: Array(20_000).fill(0.123) })), status: 413, code: 'BODY_TOO_LARGE' },
  { name: 'broken JSON', send: strategyRequest('{"z": [1, 2'), status: 400, code: 'BAD_JSON' },
  { name: 'invalid UTF-8 in JSON', send: strategyRequest('{"z":[\xff]}'), status: 400, code: 'BAD_JSON' },
  { name: 'text/plain body', send: strategyRequest(Z).replace('application/json', 'text/plain'), status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'z of 1e39', send: strategyRequest(JSON.stringify({ z: [1e39, 0, 0, 0, 0, 0, 0, 0] })), status: 400, code: 'Z_OUT_OF_RANGE' },
  { name: 'unknown route', send: get('/v2/anything'), status: 404, code: 'NOT_FOUND' },
  { name: 'unknown model', send: get('/v1/models/nope/manifest'), status: 404, code: 'UNKNOWN_MODEL' },
];

describe('error envelope', () => {
  it('answers every malformed request of the table with its status and {"error": {"code", "message"}}', async () => {
    const { port } = await start({ limits: SHORT });
    const failures: string[] = [];
    for (const c of ENVELOPE_CASES) {
      const r = await rawExchange({ port, send: Buffer.from(c.send, 'latin1'), deadlineMs: 2_000, closeOnResponse: true }).done;
      const problem = envelopeProblem(r.response);
      if (r.response?.status !== c.status) failures.push(`${c.name}: expected ${c.status}, got ${r.response?.status ?? `no answer (${r.ended})`}: ${r.raw.slice(0, 120)}`);
      else if (problem) failures.push(`${c.name}: ${problem}`);
      else if (JSON.parse(r.response.body).error.code !== c.code) failures.push(`${c.name}: expected ${c.code}, got ${r.response.body}`);
    }
    report('error envelope', ENVELOPE_CASES.length, failures);
  });

});

describe('close() with clients left hanging', () => {
  it('answers the in-flight request, then closes partial-body, partial-head (503 SHUTTING_DOWN) and idle clients within the deadline', async () => {
    const { url, port, server } = await start({
      limits: { headersTimeoutMs: 30_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 30_000, shutdownDeadlineMs: 1_500 },
      strategy: { batchWindowMs: 5_000 },
    });
    const partialBody = rawExchange({ port, send: `${STRATEGY_HEAD}Content-Length: 200\r\n\r\n{"z":`, deadlineMs: 6_000 });
    const partialHead = rawExchange({ port, send: 'GET /healthz HTTP/1.1\r\nHost: x\r\n', deadlineMs: 6_000 });
    const idle = rawExchange({ port, send: 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', deadlineMs: 6_000 });
    // Held by the 5 s batch window until close() flushes it.
    const inFlight = fetch(`${url}/v1/models/tiny/strategy`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Z });
    await sleep(300);
    const t0 = performance.now();
    const closed = await Promise.race([server.close().then(() => 'closed'), sleep(5_000).then(() => 'still open after 5 s')]);
    const ms = performance.now() - t0;
    const failures: string[] = [];
    if (closed !== 'closed') failures.push(`close(): ${closed}`);
    else if (ms > 1_500 + 500) failures.push(`close() took ${ms.toFixed(0)} ms, deadline 1500`);
    const answer = await inFlight;
    if (answer.status !== 200) failures.push(`in-flight request answered ${answer.status}`);
    for (const [name, c] of [['partial body', partialBody], ['partial head', partialHead], ['idle keep-alive', idle]] as const) {
      const r = await c.done;
      if (r.ended !== 'server-closed') failures.push(`${name}: not closed by the server`);
      if (name === 'idle keep-alive') continue;
      // A client still sending its request is told why before the connection closes.
      if (r.response?.status !== 503 || envelopeProblem(r.response) || !r.response.body.includes('"SHUTTING_DOWN"')) {
        failures.push(`${name}: ${r.raw.slice(0, 160)}`);
      }
    }
    report('close with hanging clients', 7, failures);
  });
});
