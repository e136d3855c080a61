/**
 * The strategy service worker (a module worker). It serves page messages only and handles no
 * `fetch` events, so its scope does not matter and it never sits in the shop's page loads.
 *
 * Update flow: a new version installs and then waits (no skipWaiting on install, so a page is
 * never switched to a worker it was not written against); the page sends `skip-waiting` when it
 * is ready. On activate the worker deletes the caches of other SW versions and claims clients.
 */
import { StrategyFetchError } from './errors.ts';
import { isSwRequest } from './protocol.ts';
import type { SwRequest, SwResponse } from './protocol.ts';
import { CacheStorageStrategyCache, deleteOldStrategyCaches } from './strategy-cache.ts';
import { StrategyFetcher } from './strategy-fetcher.ts';
import { CACHE_PREFIX, SW_VERSION, strategyCacheName } from './version.ts';

// This file runs only as a service worker: src/sw/tsconfig.json loads the WebWorker lib (no DOM),
// whose `self` is a plain WorkerGlobalScope, so narrow it to the service-worker scope here.
declare const self: ServiceWorkerGlobalScope;
const cacheName = strategyCacheName(SW_VERSION);

const service = new StrategyFetcher({
  cache: new CacheStorageStrategyCache(self.caches, cacheName, self.registration.scope),
  fetch: (input, init) => self.fetch(input, init),
});

self.addEventListener('install', (event) => {
  event.waitUntil(self.caches.open(cacheName).then(() => undefined));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      await deleteOldStrategyCaches(self.caches, CACHE_PREFIX, cacheName);
      await self.clients.claim();
    })(),
  );
});

async function handle(request: SwRequest): Promise<SwResponse> {
  switch (request.kind) {
    case 'fetch-strategy':
      return { kind: 'strategy', id: request.id, content: await service.fetchStrategy(request.content) };
    case 'skip-waiting':
      await self.skipWaiting();
      return { kind: 'skip-waiting', id: request.id, content: { ok: true } };
    case 'version':
      return { kind: 'version', id: request.id, content: { version: SW_VERSION, cacheName } };
  }
}

function errorReply(id: string, e: unknown): SwResponse {
  if (e instanceof StrategyFetchError) {
    return { kind: 'error', id, content: { code: e.code, message: e.message, ...(e.status === undefined ? {} : { status: e.status }) } };
  }
  return { kind: 'error', id, content: { code: 'STRATEGY_SW_INTERNAL', message: e instanceof Error ? e.message : String(e) } };
}

self.addEventListener('message', (event: ExtendableMessageEvent) => {
  const data: unknown = event.data;
  if (!isSwRequest(data)) return;
  const reply = (response: SwResponse): void => {
    const port = event.ports[0];
    if (port) port.postMessage(response);
    else (event.source as Client | null)?.postMessage(response);
  };
  event.waitUntil(handle(data).then(reply, (e: unknown) => reply(errorReply(data.id, e))));
});
