/**
 * The CHORD strategy server: the cloud half a shop runs next to its catalogue.
 *
 *   POST /v1/models/:model/strategy        z -> strategy bitstream (application/octet-stream)
 *        body JSON  {"z": [..], "budget"?: bits}            (Content-Type: application/json)
 *        or binary  little-endian float32 z, ?budget=bits    (Content-Type: application/octet-stream)
 *        answer headers: ETag (hash of the bytes), Cache-Control: private, max-age=…,
 *        X-Chord-Average-Bits (weight-weighted, after T), X-Chord-Cache (hit|miss|shared)
 *   GET  /v1/models                         the loaded models
 *   GET  /v1/models/:model/manifest         manifest.json
 *   GET  /v1/models/:model/files/:name      manifest.json, backbone.json|.bin, gru.json|.bin, item_emb.q8 (immutable, ETag)
 *   GET  /healthz                           liveness (no token, no rate limit)
 *   GET  /metrics                           Prometheus text (no rate limit; token if tokens are set)
 *
 * Every error is `{ "error": { "code", "message" } }` with a 4xx status for anything the client
 * sent (codes in errors.ts), including what Fastify's router and Node's HTTP parser reject
 * (bad percent-encoding, over-long parameters, malformed or oversized heads, timeouts). A 5xx
 * is a refusal under load (503 SERVER_BUSY, COMPUTE_UNAVAILABLE, SHUTTING_DOWN) or a bug
 * (500 INTERNAL). Timeouts, connection caps and the shutdown deadline: connections.ts. With
 * tokens configured, every route except /healthz and CORS preflights needs
 * `Authorization: Bearer <token>`.
 */
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Counter, Gauge } from 'prom-client';
import { loadServedModels, SERVED_FILES } from './artifacts.ts';
import type { ServedModel, ServedFileName } from './artifacts.ts';
import { ComputePool } from './compute-pool.ts';
import { ConnectionGuard, connectionsCheckingInterval, rawErrorResponse, resolveConnectionLimits } from './connections.ts';
import type { ConnectionLimits } from './connections.ts';
import { ApiError, errorBody } from './errors.ts';
import { createMetrics } from './metrics.ts';
import type { ServerMetrics } from './metrics.ts';
import { StrategyService } from './strategy-service.ts';
import type { StrategyServiceOptions } from './strategy-service.ts';

export interface ServerOptions {
  /** Directory of model directories (see artifacts.ts); or pass `models` already loaded. */
  modelsDir?: string;
  models?: ReadonlyMap<string, ServedModel>;
  /** Accepted bearer tokens; empty or absent = no authentication. */
  tokens?: readonly string[];
  /** Shop origins allowed by CORS (exact, e.g. "https://shop.example"); empty = no CORS headers. */
  origins?: readonly string[];
  /** Largest request body in bytes (default 64 KiB). */
  bodyLimit?: number;
  /** Requests per client IP per window; false disables (default 600 per minute). */
  rateLimit?: { max: number; timeWindowMs: number } | false;
  /** max-age (seconds) of strategy answers (default 300). */
  strategyMaxAgeS?: number;
  strategy?: Partial<StrategyServiceOptions>;
  /**
   * Worker threads that compute strategy batches (0 = on the main thread, between requests).
   * Default DEFAULT_WORKERS.
   */
  workers?: number;
  /** Timeouts, connection caps and the shutdown deadline (DEFAULT_CONNECTION_LIMITS in connections.ts). */
  limits?: Partial<ConnectionLimits>;
  /** Fastify's request logger (default off: the CLI prints its own start-up lines). */
  logger?: boolean;
  /** Where 5xx causes go (they are bugs); default: console.error. */
  onInternalError?: (error: unknown, route: string) => void;
}

export interface ChordServer {
  readonly app: FastifyInstance;
  readonly models: ReadonlyMap<string, ServedModel>;
  readonly service: StrategyService;
  readonly metrics: ServerMetrics;
  /** The compute workers (undefined with workers: 0). */
  readonly pool: ComputePool | undefined;
  readonly limits: ConnectionLimits;
  /** Open connections and refusals so far. */
  readonly connections: ConnectionGuard;
  /** Starts listening; resolves to the base URL (port 0 picks a free port). */
  listen(port: number, host?: string): Promise<string>;
  /**
   * Stops accepting connections and answers the requests already being handled (their batches
   * are flushed at once); then, or at limits.shutdownDeadlineMs at the latest, closes every
   * connection left (idle, or still sending a request), and stops the compute workers.
   */
  close(): Promise<void>;
}

const DEFAULT_BODY_LIMIT = 64 * 1024;

/**
 * One compute worker, for two cores. Measured server CPU per uncached request at saturation
 * (tools/bench/bench-server.ts): ~0.06 ms on the main thread (HTTP, JSON, cache) and ~0.15 ms on the worker
 * (hypernet, Γ/Λ, bitstream, ETag); one thread doing both used ~0.21 ms. So with a core each,
 * the worker alone bounds throughput (1 / 0.15 ms ≈ 6,500/s) where one thread stops at
 * 1 / 0.21 ms ≈ 4,700/s; a second worker would only compete with the main thread for the same
 * two cores. Small batches stay on the main thread while the worker is idle
 * (StrategyServiceOptions.inlineMaxBatch), which keeps low-load CPU and latency at the
 * workers: 0 level. On the shared benchmark machine, with two training jobs keeping both cores
 * busy, 0 and 1 worker both measured 3,550-3,800 uncached req/s (2 workers: 3,100-4,300, noisy):
 * there the CPU share, not parallelism, is the limit.
 */
export const DEFAULT_WORKERS = 1;
/** Model ids are at most 64 characters (manifest.ts); file names are shorter. */
const MAX_PARAM_LENGTH = 100;
const STRICT_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const EXPOSED_HEADERS = ['ETag', 'X-Chord-Average-Bits', 'X-Chord-Cache', 'Retry-After'];

const strategyBodySchema = {
  type: 'object',
  required: ['z'],
  additionalProperties: false,
  properties: {
    z: { type: 'array', minItems: 1, maxItems: 65536, items: { type: 'number' } },
    budget: { type: 'number' },
  },
} as const;

interface StrategyJsonBody {
  z: number[];
  budget?: number;
}

interface ModelParams {
  model: string;
}

function parseBudgetQuery(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !STRICT_NUMBER.test(value)) {
    throw new ApiError(400, 'BAD_BUDGET', `budget query ${JSON.stringify(value)} is not a decimal number`);
  }
  return Number(value);
}

/** Maps Fastify's own errors (routing, body parsing, validation) to our codes; anything else is a bug. */
function toApiError(error: FastifyError | ApiError | Error): ApiError {
  if (error instanceof ApiError) return error;
  const e = error as FastifyError;
  if (e.validation) return new ApiError(400, 'INVALID_REQUEST', e.message);
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'BODY_TOO_LARGE', e.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `${e.message}; send application/json or application/octet-stream`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'EMPTY_BODY', e.message);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, 'BAD_JSON', e.message);
    case 'FST_ERR_BAD_URL':
      return new ApiError(400, 'BAD_URL', 'the URL has a malformed percent-encoding');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ApiError(414, 'PARAM_TOO_LONG', `a path parameter is longer than ${MAX_PARAM_LENGTH} characters`);
    default:
      break;
  }
  if (e instanceof SyntaxError && e.statusCode === 400) return new ApiError(400, 'BAD_JSON', e.message);
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError(e.statusCode, 'INVALID_REQUEST', e.message);
  }
  return new ApiError(500, 'INTERNAL', 'internal server error', { cause: error });
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time check against every token (hashing first makes lengths equal). */
function tokenMatcher(tokens: readonly string[]): (header: string | undefined) => boolean {
  const digests = tokens.map(sha256);
  return (header) => {
    const m = /^Bearer ([^\s]+)$/.exec(header ?? '');
    if (!m) return false;
    const given = sha256(m[1]!);
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, given) || ok;
    return ok;
  };
}

export async function createServer(options: ServerOptions): Promise<ChordServer> {
  const models = options.models ?? (options.modelsDir !== undefined ? await loadServedModels(options.modelsDir) : undefined);
  if (!models) throw new TypeError('createServer needs modelsDir or models');
  const workers = options.workers ?? DEFAULT_WORKERS;
  if (!Number.isInteger(workers) || workers < 0) throw new RangeError(`workers must be a non-negative integer, got ${workers}`);
  const reportInternal = options.onInternalError ?? ((error: unknown, route: string) => console.error(`internal error on ${route}:`, error));
  const metrics = createMetrics();
  const pool =
    workers > 0
      ? await ComputePool.start(
          [...models.values()].map((m) => m.computeSpec),
          workers,
          (error) => reportInternal(error, 'compute worker'),
        )
      : undefined;
  const service = new StrategyService(
    models,
    {
      ...options.strategy,
      onBatch: (model, size) => metrics.batchSize.observe({ model }, size),
      onCache: (result) => metrics.cache.inc({ result }),
    },
    pool,
  );
  const maxAge = options.strategyMaxAgeS ?? 300;
  const limits = resolveConnectionLimits(options.limits);

  let guard: ConnectionGuard | undefined;
  const sendError = (reply: FastifyReply, api: ApiError) =>
    reply.code(api.statusCode).type('application/json').send(errorBody(api.code, api.message));
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Strict types: "1" is not a number, unknown body keys are rejected rather than dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionTimeout: limits.idleSocketTimeoutMs,
    http: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: connectionsCheckingInterval(limits),
      // Node would answer a missing Host with an empty 400 of its own; the onRequest hook below
      // answers it with the envelope.
      requireHostHeader: false,
    },
    // Fastify's own 503 during close() has its own body shape; the onRequest hook answers instead.
    return503OnClosing: false,
    // Bad percent-encoding and over-long parameters, found before routing.
    frameworkErrors: (error, _request, reply) => void sendError(reply, toApiError(error)),
    // Errors of Node's HTTP parser and its timeouts: no request exists, the answer goes to the socket.
    clientErrorHandler: (error: Error & { code?: string }, socket: Socket) => {
      if (guard) guard.onClientError(error, socket);
      else socket.destroy();
    },
  });
  const refused = new Counter({
    name: 'chord_refused_connections_total',
    help: 'Connections refused at a cap: busy (global) or per-address',
    labelNames: ['reason'],
    registers: [metrics.registry],
  });
  const connections = new ConnectionGuard(app.server, limits, (reason) => refused.inc({ reason }));
  guard = connections;
  new Gauge({
    name: 'chord_open_connections',
    help: 'Open client connections',
    registers: [metrics.registry],
    collect() {
      this.set(connections.counts.open);
    },
  });
  // An Expect other than 100-continue: Node would answer an empty 417 of its own.
  app.server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) => {
    const body = JSON.stringify(errorBody('EXPECTATION_FAILED', 'only "Expect: 100-continue" is supported'));
    response.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
    response.end(body);
  });
  // CONNECT (proxy tunnels): Node would drop the socket without an answer.
  app.server.on('connect', (_request: IncomingMessage, socket: Socket) => {
    socket.on('error', () => socket.destroy());
    socket.end(rawErrorResponse(405, 'METHOD_NOT_ALLOWED', 'CONNECT is not supported', { Allow: 'GET, POST, OPTIONS' }));
  });

  // Only JSON and binary z are accepted; Fastify's built-in text/plain parser would let a string through.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const api = toApiError(error);
    // A 500 is a bug; a 503 (a compute worker died) was reported once by the pool, not per request.
    if (api.statusCode === 500) reportInternal(error, `${request.method} ${request.routeOptions.url ?? request.url}`);
    void sendError(reply, api);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.latency.observe({ route }, reply.elapsedTime / 1000);
  });
  // In-flight strategy requests waiting for a batch window need not wait for it at shutdown.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    service.flush();
  });
  // Registered before the plugins' hooks, so it runs first.
  app.addHook('onRequest', async (request) => {
    if (closing) throw new ApiError(503, 'SHUTTING_DOWN', 'the server is shutting down; retry on another replica');
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw new ApiError(400, 'INVALID_REQUEST', 'an HTTP/1.1 request needs a Host header');
    }
  });
  // Requests whose body has arrived and that are being answered: close() waits for these.
  const inFlight = new Set<FastifyRequest>();
  let drained: (() => void) | undefined;
  app.addHook('preHandler', async (request, reply) => {
    inFlight.add(request);
    reply.raw.once('close', () => {
      inFlight.delete(request);
      if (inFlight.size === 0) drained?.();
    });
  });
  // A response finished after close() began (a worker was still computing it) closes its
  // keep-alive connection; otherwise the server would wait for the client to hang up.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) void reply.header('connection', 'close');
    done(null, payload);
  });
  // After the last response: let batches still running finish, then stop the workers.
  app.addHook('onClose', async () => pool?.close());

  await app.register(cors, {
    origin: options.origins && options.origins.length > 0 ? [...options.origins] : false,
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['Content-Type', 'Authorization'],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });

  if (options.rateLimit !== false) {
    const { max, timeWindowMs } = options.rateLimit ?? { max: 600, timeWindowMs: 60_000 };
    await app.register(rateLimit, {
      global: true,
      max,
      timeWindow: timeWindowMs,
      errorResponseBuilder: (_request, context) =>
        new ApiError(429, 'RATE_LIMITED', `more than ${context.max} requests in ${context.after}; retry later`),
    });
  }

  const tokens = options.tokens?.filter((t) => t.length > 0) ?? [];
  if (tokens.length > 0) {
    const matches = tokenMatcher(tokens);
    app.addHook('onRequest', async (request, reply) => {
      if (request.method === 'OPTIONS' || request.routeOptions.url === '/healthz') return;
      if (!matches(request.headers.authorization)) {
        void reply.header('WWW-Authenticate', 'Bearer');
        throw new ApiError(401, 'UNAUTHORIZED', 'missing or unknown bearer token');
      }
    });
  }

  const noLimit = { rateLimit: false } as const;

  app.get('/healthz', { config: noLimit }, async () => ({ status: 'ok', models: models.size }));

  app.get('/metrics', { config: noLimit }, async (_request, reply) => {
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/v1/models', async () => ({
    models: [...models.values()].map((m) => ({
      modelId: m.modelId,
      backbone: m.manifest.backbone,
      method: m.hypernetConfig.method,
      zDim: m.hypernetConfig.zDim,
      layers: m.manifest.layers.length,
      channels: m.totalChannels,
      levelTable: m.hypernetConfig.levelTable,
      frozenWeightsHash: m.manifest.frozenWeightsHash,
      files: Object.fromEntries(SERVED_FILES.filter((f) => m.files.has(f)).map((f) => [f, `/v1/models/${m.modelId}/files/${f}`])),
    })),
  }));

  const sendFile = (model: ServedModel, name: ServedFileName, request: FastifyRequest, reply: FastifyReply) => {
    const file = model.files.get(name)!;
    void reply
      .header('ETag', file.etag)
      .header('Cache-Control', 'public, max-age=31536000, immutable')
      .type(file.contentType);
    const inm = request.headers['if-none-match'];
    if (inm !== undefined && inm.split(',').some((t) => t.trim() === file.etag || t.trim() === '*')) {
      return reply.code(304).send();
    }
    return reply.send(file.bytes);
  };

  app.get<{ Params: ModelParams }>('/v1/models/:model/manifest', async (request, reply) =>
    sendFile(service.model(request.params.model), 'manifest.json', request, reply),
  );

  app.get<{ Params: ModelParams & { name: string } }>('/v1/models/:model/files/:name', async (request, reply) => {
    const model = service.model(request.params.model);
    const name = request.params.name;
    // A version-1 model has no item_emb.q8: that name is then as unknown as any other.
    if (!(SERVED_FILES as readonly string[]).includes(name) || !model.files.has(name as ServedFileName)) {
      const served = SERVED_FILES.filter((f) => model.files.has(f));
      throw new ApiError(404, 'NOT_FOUND', `model files are ${served.join(', ')}; "${name}" is not served`);
    }
    return sendFile(model, name as ServedFileName, request, reply);
  });

  app.post<{ Params: ModelParams; Body: StrategyJsonBody | Buffer | undefined; Querystring: Record<string, unknown> }>(
    '/v1/models/:model/strategy',
    {
      schema: {
        body: {
          content: {
            'application/json': { schema: strategyBodySchema },
            'application/octet-stream': { schema: {} },
          },
        },
      },
    },
    async (request, reply) => {
      const model = service.model(request.params.model);
      const body = request.body;
      let z: Float32Array;
      let budget = parseBudgetQuery(request.query.budget);
      if (Buffer.isBuffer(body)) {
        if (body.length === 0) throw new ApiError(400, 'EMPTY_BODY', 'binary body is empty; send zDim little-endian float32 values');
        if (body.length % 4 !== 0) {
          throw new ApiError(400, 'BAD_Z_LENGTH', `binary z has ${body.length} bytes, not a whole number of float32 values`);
        }
        const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
        z = new Float32Array(body.length / 4);
        for (let i = 0; i < z.length; i++) z[i] = view.getFloat32(4 * i, true);
      } else if (body !== undefined && body !== null && typeof body === 'object') {
        if (body.budget !== undefined) {
          if (budget !== undefined) throw new ApiError(400, 'BAD_BUDGET', 'budget given both in the body and in the query');
          budget = body.budget;
        }
        if (body.z.length !== model.hypernetConfig.zDim) {
          throw new ApiError(400, 'BAD_Z_LENGTH', `z has ${body.z.length} values, model "${model.modelId}" expects ${model.hypernetConfig.zDim}`);
        }
        const limit = service.maxAbsZ;
        body.z.forEach((x, i) => {
          // Checked before the float32 conversion, which would turn 1e39 into Infinity.
          if (Math.abs(x) > limit) throw new ApiError(400, 'Z_OUT_OF_RANGE', `z[${i}] = ${x} is outside ±${limit}`);
        });
        z = Float32Array.from(body.z);
      } else {
        throw new ApiError(400, 'EMPTY_BODY', 'no body; send {"z": [...]} as application/json or float32 z as application/octet-stream');
      }
      const answer = await service.strategy(model.modelId, z, budget);
      void reply
        .header('ETag', answer.etag)
        .header('Cache-Control', `private, max-age=${maxAge}`)
        .header('X-Chord-Average-Bits', answer.averageBits.toFixed(4))
        .header('X-Chord-Cache', answer.cache)
        .type('application/octet-stream');
      return reply.send(Buffer.from(answer.bytes.buffer, answer.bytes.byteOffset, answer.bytes.byteLength));
    },
  );

  await app.ready();

  const shutdown = async (): Promise<void> => {
    const deadline = performance.now() + limits.shutdownDeadlineMs;
    const closed = app.close(); // preClose (flush the batches), then no new connections; idle ones close
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      inFlight.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (drained = resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, limits.shutdownDeadlineMs))),
    ]);
    clearTimeout(timer);
    // Left now: idle connections, clients still sending a request, answers still being written.
    await connections.closeAll(Math.max(0, deadline - performance.now()));
    await closed;
  };
  let closing$: Promise<void> | undefined;
  return {
    app,
    models,
    service,
    metrics,
    pool,
    limits,
    connections,
    async listen(port, host = '127.0.0.1') {
      return app.listen({ port, host });
    },
    close: () => (closing$ ??= shutdown()),
  };
}
