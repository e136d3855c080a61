/**
 * Prometheus metrics of one server instance, on its own registry (so several servers in one
 * process, as in the tests, do not collide).
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export interface ServerMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly latency: Histogram<'route'>;
  readonly batchSize: Histogram<'model'>;
  readonly cache: Counter<'result'>;
}

export function createMetrics(): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'chord_' });
  return {
    registry,
    requests: new Counter({
      name: 'chord_http_requests_total',
      help: 'HTTP requests by route template, method and status code',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'chord_http_request_duration_seconds',
      help: 'Time from request start to response end, by route template',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'chord_strategy_batch_size',
      help: 'Number of z per hypernet forward (micro-batch size)',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    }),
    cache: new Counter({
      name: 'chord_strategy_cache_total',
      help: 'Strategy cache lookups by result (hit or miss)',
      labelNames: ['result'],
      registers: [registry],
    }),
  };
}
