/**
 * CLI: npm run serve -- --models <dir> [--port 8080] [--host 127.0.0.1] [--token T]... [--origin URL]...
 *                       [--rate-limit N] [--body-limit BYTES] [--batch-window-ms MS] [--max-batch N]
 *                       [--cache-entries N] [--workers N] [--inline-max-batch N]
 *                       [--headers-timeout-ms MS] [--request-timeout-ms MS] [--keep-alive-timeout-ms MS]
 *                       [--idle-timeout-ms MS] [--max-connections N] [--max-connections-per-address N]
 *                       [--shutdown-deadline-ms MS]
 * The installed package runs the same command as `npx chord-rerank serve ...` (src/cloud/bin.ts).
 *
 * Tokens may also come from CHORD_TOKENS (comma-separated), which keeps them out of `ps`.
 * SIGINT/SIGTERM: stop accepting connections, finish in-flight requests, close what is left
 * (at the shutdown deadline at the latest), exit 0; a second signal exits at once with 1, and so
 * does a shutdown still running 5 s past its deadline. Under a process manager run `node --import tsx src/cloud/serve.ts`
 * (or `node node_modules/chord-rerank/dist/bin.js serve`) directly: npm 11 exits on SIGTERM
 * without passing it on, which would orphan the server.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCli, UsageError } from '../cli/run-cli.ts';
import { DEFAULT_CONNECTION_LIMITS, resolveConnectionLimits } from './connections.ts';
import type { ConnectionLimits } from './connections.ts';
import { createServer, DEFAULT_WORKERS } from './server.ts';
import { DEFAULT_STRATEGY_OPTIONS } from './strategy-service.ts';

const D = DEFAULT_STRATEGY_OPTIONS;
const C = DEFAULT_CONNECTION_LIMITS;

export function serveUsage(command: string): string {
  return `usage: ${command} --models <dir> [--port 8080] [--host 127.0.0.1]
       [--token T]... [--origin https://shop.example]... [--rate-limit REQS_PER_MIN_PER_IP (0 = off, default 600)]
       [--body-limit BYTES (65536)] [--batch-window-ms MS (${D.batchWindowMs})] [--max-batch N (${D.maxBatch})] [--cache-entries N (${D.cacheEntries})]
       [--workers N (compute worker threads; 0 = compute on the main thread; default ${DEFAULT_WORKERS})]
       [--inline-max-batch N (batches up to N computed on the main thread while the workers are idle; ${D.inlineMaxBatch})]
       [--headers-timeout-ms MS (${C.headersTimeoutMs})] [--request-timeout-ms MS (${C.requestTimeoutMs})]
       [--keep-alive-timeout-ms MS (${C.keepAliveTimeoutMs})] [--idle-timeout-ms MS (${C.idleSocketTimeoutMs})]
       [--max-connections N (${C.maxConnections})] [--max-connections-per-address N (0 = no cap; ${C.maxConnectionsPerAddress})]
       [--shutdown-deadline-ms MS (${C.shutdownDeadlineMs})]
  <dir> holds one folder per model (<modelId>/manifest.json, items.json, backbone.*, gru.*, [item_emb.q8,] hypernet.json, hyper.*).
  Only manifest.json, items.json, backbone.*, gru.* and item_emb.q8 are ever served to pages (GET /v1/models/<id>/files/<name>).`;
}

function fail(message: string): never {
  throw new UsageError(message);
}

function intOption(value: string | undefined, name: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min) fail(`--${name} must be an integer >= ${min}, got "${value}"`);
  return Number(value);
}

/** Parses the options, loads the models and serves until SIGINT/SIGTERM. */
export async function serveCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs({
    args: [...argv],
    options: {
      models: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      token: { type: 'string', multiple: true },
      origin: { type: 'string', multiple: true },
      'rate-limit': { type: 'string' },
      'body-limit': { type: 'string' },
      'batch-window-ms': { type: 'string' },
      'max-batch': { type: 'string' },
      'cache-entries': { type: 'string' },
      workers: { type: 'string' },
      'inline-max-batch': { type: 'string' },
      'headers-timeout-ms': { type: 'string' },
      'request-timeout-ms': { type: 'string' },
      'keep-alive-timeout-ms': { type: 'string' },
      'idle-timeout-ms': { type: 'string' },
      'max-connections': { type: 'string' },
      'max-connections-per-address': { type: 'string' },
      'shutdown-deadline-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
  if (!args.models) fail('--models is required');
  const port = intOption(args.port, 'port', 8080);
  if (port > 65535) fail(`--port ${port} is not a TCP port`);
  const host = args.host ?? '127.0.0.1';
  const tokens = [...(args.token ?? []), ...(process.env.CHORD_TOKENS ?? '').split(',')].map((t) => t.trim()).filter(Boolean);
  const origins = args.origin ?? [];
  for (const o of origins) {
    if (!/^https?:\/\/[^/]+$/.test(o)) fail(`--origin must be a scheme and host like https://shop.example, got "${o}"`);
  }
  const perMinute = intOption(args['rate-limit'], 'rate-limit', 600);
  const windowMs = intOption(args['batch-window-ms'], 'batch-window-ms', D.batchWindowMs);
  const workers = intOption(args.workers, 'workers', DEFAULT_WORKERS);
  const limits: ConnectionLimits = {
    headersTimeoutMs: intOption(args['headers-timeout-ms'], 'headers-timeout-ms', C.headersTimeoutMs, 1),
    requestTimeoutMs: intOption(args['request-timeout-ms'], 'request-timeout-ms', C.requestTimeoutMs, 1),
    keepAliveTimeoutMs: intOption(args['keep-alive-timeout-ms'], 'keep-alive-timeout-ms', C.keepAliveTimeoutMs, 1),
    idleSocketTimeoutMs: intOption(args['idle-timeout-ms'], 'idle-timeout-ms', C.idleSocketTimeoutMs, 1),
    maxConnections: intOption(args['max-connections'], 'max-connections', C.maxConnections, 1),
    maxConnectionsPerAddress: intOption(args['max-connections-per-address'], 'max-connections-per-address', C.maxConnectionsPerAddress),
    shutdownDeadlineMs: intOption(args['shutdown-deadline-ms'], 'shutdown-deadline-ms', C.shutdownDeadlineMs, 1),
  };
  try {
    resolveConnectionLimits(limits);
  } catch (error) {
    fail((error as Error).message);
  }
  const server = await createServer({
    modelsDir: args.models,
    tokens,
    origins,
    bodyLimit: intOption(args['body-limit'], 'body-limit', 64 * 1024, 64),
    rateLimit: perMinute === 0 ? false : { max: perMinute, timeWindowMs: 60_000 },
    workers,
    limits,
    strategy: {
      batchWindowMs: windowMs,
      maxBatch: intOption(args['max-batch'], 'max-batch', D.maxBatch, 1),
      cacheEntries: intOption(args['cache-entries'], 'cache-entries', D.cacheEntries),
      inlineMaxBatch: intOption(args['inline-max-batch'], 'inline-max-batch', D.inlineMaxBatch),
    },
  });

  console.log(`chord strategy server: ${server.models.size} model(s) from ${args.models}`);
  for (const m of server.models.values()) {
    const c = m.hypernetConfig;
    console.log(
      `  ${m.modelId}: ${m.manifest.backbone}, hypernet method ${c.method}, ${c.layers.length} layers, ` +
        `${m.totalChannels} channels, z dim ${c.zDim}, hidden ${c.hidden}, rank ${c.rank}, levels ${c.levelTable.join('/')}`,
    );
  }
  const url = await server.listen(port, host);
  console.log(
    `  auth: ${tokens.length > 0 ? `${tokens.length} bearer token(s)` : 'none'}; CORS: ${origins.length > 0 ? origins.join(', ') : 'off'}; ` +
      `rate limit: ${perMinute === 0 ? 'off' : `${perMinute}/min per IP`}; batch window ${windowMs} ms; ` +
      `compute ${workers === 0 ? 'on the main thread' : `${workers} worker thread(s)`}`,
  );
  const l = server.limits;
  console.log(
    `  limits: head ${l.headersTimeoutMs} ms, request ${l.requestTimeoutMs} ms, keep-alive ${l.keepAliveTimeoutMs} ms, ` +
      `idle ${l.idleSocketTimeoutMs} ms; ${l.maxConnections} connections, ` +
      `${l.maxConnectionsPerAddress === 0 ? 'no cap' : l.maxConnectionsPerAddress} per address; shutdown deadline ${l.shutdownDeadlineMs} ms`,
  );
  console.log(`listening on ${url}`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      console.log(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    console.log(`${signal}: finishing in-flight requests, then exiting`);
    // close() ends at the deadline; this only fires if something still hangs after it.
    setTimeout(() => {
      console.error('shutdown still running 5 s past its deadline: exiting now');
      process.exit(1);
    }, server.limits.shutdownDeadlineMs + 5_000).unref();
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`shutdown failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runCli({ program: 'serve', usage: serveUsage('npm run serve --'), main: serveCommand });
}
