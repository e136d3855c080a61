import { expect, test } from '@playwright/test';
import type { Page, Request } from '@playwright/test';
import { FROZEN_HASH, LAYERS, MODEL_ID, StrategyTestServer, startSwAllowedProxy } from './pages/sdk.server.ts';
import { openSdkPage, reloadSdkPage } from './sdk-page.ts';

/**
 * Short timeouts and backoff so the failure paths run in seconds. After the k-th failure the
 * network rests for [cap/2, cap], cap = min(1000, 500 * 2^(k-1)).
 */
const POLICY = { timeoutMs: 1000, backoffBaseMs: 500, backoffMaxMs: 1000 };
const Z_POS = Array.from({ length: 32 }, (_, i) => (i === 0 ? 0.5 : 0.01 * i));
const Z_NEG = Z_POS.map((v, i) => (i === 0 ? -0.5 : v));

const server = new StrategyTestServer();
test.beforeAll(async () => server.start(0));
test.afterAll(async () => server.stop());
test.beforeEach(async () => {
  server.mode = { kind: 'ok' };
  await server.start(); // a test may have stopped it
});

async function init(page: Page, useServiceWorker: boolean, extra: Record<string, unknown> = {}) {
  return page.evaluate(
    (o) => window.chordSdk.strategyInit(o),
    { endpoint: server.endpoint, modelId: MODEL_ID, frozenWeightsHash: FROZEN_HASH, layers: LAYERS, policy: POLICY, useServiceWorker, ...extra },
  );
}

const fetchZ = (page: Page, z: number[], budget?: number) =>
  page.evaluate(([zz, b]) => window.chordSdk.strategyFetch(zz, b ?? undefined), [z, budget ?? null] as const);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const useServiceWorker of [true, false]) {
  const transport = useServiceWorker ? 'service-worker' : 'direct';

  test(`${transport}: fresh, then last good (stale) on 500 / backoff / HTML 200 / timeout / wrong model / offline, then fresh`, async ({
    page,
    context,
  }) => {
    const swRequests: Request[] = [];
    context.on('request', (r) => {
      if (r.serviceWorker()) swRequests.push(r);
    });
    await openSdkPage(page);
    expect(await init(page, useServiceWorker)).toMatchObject({ transport, fallbackReason: useServiceWorker ? null : expect.any(String) });

    const fresh = await fetchZ(page, Z_POS, 3);
    expect(fresh).toMatchObject({ ok: true, stale: false, source: 'network', transport, failure: null, firstLevel: 3 });
    expect(fresh.ok && fresh.layerNames).toEqual(LAYERS.map((l) => l.name));
    expect(JSON.parse(server.strategyPosts.at(-1)!.body)).toEqual({ z: Z_POS, budget: 3 });
    const good = fresh.ok ? fresh.revision : '';
    // Requests made by the worker show up as such (and the direct mode makes none there).
    expect(swRequests.some((r) => r.url().endsWith('/strategy'))).toBe(useServiceWorker);

    const posts = () => server.strategyPosts.length;
    const expectStale = async (code: string, z = Z_NEG) => {
      const r = await fetchZ(page, z);
      expect(r).toMatchObject({ ok: true, stale: true, source: 'cache', revision: good, failure: code, firstLevel: 3, transport });
      return r;
    };

    server.mode = { kind: 'status', status: 500 };
    const n500 = posts();
    const s500 = await expectStale('STRATEGY_SERVER_ERROR');
    expect(posts()).toBe(n500 + 1);
    expect(s500.ok && s500.retryInMs).toBeGreaterThan(0);
    // Backing off: the network is not touched.
    await expectStale('STRATEGY_BACKOFF');
    expect(posts()).toBe(n500 + 1);

    await sleep(550); // > cap 500 after 1 failure
    server.mode = { kind: 'html' };
    await expectStale('STRATEGY_BAD_CONTENT');
    await sleep(1050); // cap 1000 (max) from now on
    server.mode = { kind: 'delay', ms: 2500 };
    await expectStale('STRATEGY_TIMEOUT');
    await sleep(1050);
    server.mode = { kind: 'wrong-hash' };
    await expectStale('STRATEGY_INVALID');
    await sleep(1050);
    server.mode = { kind: 'garbage' };
    await expectStale('STRATEGY_INVALID');
    await sleep(1050);
    await server.stop();
    await expectStale('STRATEGY_OFFLINE');

    await server.start();
    server.mode = { kind: 'ok' };
    await sleep(1050);
    const back = await fetchZ(page, Z_NEG);
    expect(back).toMatchObject({ ok: true, stale: false, source: 'network', firstLevel: 1 });
    const newest = back.ok ? back.revision : '';
    expect(newest).not.toBe(good);

    // The last good strategy survives a reload (Cache Storage), for worker and page alike.
    await reloadSdkPage(page);
    await init(page, useServiceWorker);
    await server.stop();
    const afterReload = await fetchZ(page, Z_POS);
    expect(afterReload).toMatchObject({ ok: true, stale: true, revision: newest, firstLevel: 1, failure: 'STRATEGY_OFFLINE' });
  });

  test(`${transport}: no last good strategy -> typed error; bad input is refused before sending`, async ({ page }) => {
    await openSdkPage(page);
    await init(page, useServiceWorker, { modelVersion: `empty-${transport}` });
    server.mode = { kind: 'status', status: 503 };
    expect(await fetchZ(page, Z_POS)).toMatchObject({ ok: false, code: 'STRATEGY_SERVER_ERROR' });
    server.mode = { kind: 'status', status: 404 };
    await sleep(550);
    expect(await fetchZ(page, Z_POS)).toMatchObject({ ok: false, code: 'STRATEGY_REJECTED' });
    const before = server.strategyPosts.length;
    expect(await fetchZ(page, [Number.NaN])).toMatchObject({ ok: false, code: 'STRATEGY_BAD_REQUEST' });
    expect(await fetchZ(page, Z_POS, -1)).toMatchObject({ ok: false, code: 'STRATEGY_BAD_REQUEST' });
    expect(server.strategyPosts.length).toBe(before);
  });
}

test('a worker that does not answer in time: the page fetches by itself', async ({ page }) => {
  await openSdkPage(page);
  // The page waits timeoutMs + slack = 150 ms for the worker; the server takes 400 ms.
  await init(page, true, { messageSlackMs: -850, modelVersion: 'slow' });
  server.mode = { kind: 'delay', ms: 400 };
  const before = server.strategyPosts.length;
  expect(await fetchZ(page, Z_POS)).toMatchObject({ ok: true, stale: false, transport: 'direct' });
  // Both asked: the worker (whose late answer is ignored) and the page.
  await expect.poll(() => server.strategyPosts.length).toBe(before + 2);
});

test.describe('service workers blocked', () => {
  test.use({ serviceWorkers: 'block' });
  test('the client falls back to fetching from the page', async ({ page }) => {
    await openSdkPage(page);
    const r = await init(page, true);
    expect(r.transport).toBe('direct');
    expect(r.fallbackReason).toMatch(/service worker/);
    expect(await fetchZ(page, Z_POS)).toMatchObject({ ok: true, stale: false, transport: 'direct' });
  });
});

test('worker version: cache names carry it, older caches are deleted on activate', async ({ page }) => {
  await openSdkPage(page);
  await page.evaluate(() => window.chordSdk.seedCache('chord-strategy-v0'));
  await page.evaluate(() => window.chordSdk.seedCache('some-other-app'));
  await init(page, true);
  const info = await page.evaluate(() => window.chordSdk.strategyWorkerInfo());
  expect(info).toMatchObject({ transport: 'service-worker', updateWaiting: false, version: { version: '1', cacheName: 'chord-strategy-v1' } });
  await fetchZ(page, Z_POS);
  expect(await page.evaluate(() => window.chordSdk.cacheNames())).toEqual(['chord-strategy-v1']);
  expect(await page.evaluate(() => caches.has('some-other-app'))).toBe(true);
});

test('worker update: a new version waits until the page sends skip-waiting, then takes over', async ({ page, baseURL }) => {
  // Let the worker (served from /src/sw/) control pages at "/", so that a new version has to wait.
  const proxy = await startSwAllowedProxy(Number(new URL(baseURL!).port));
  try {
    await openSdkPage(page, proxy.origin);
    const first = await init(page, true, { serviceWorkerScope: '/' });
    expect(first.transport).toBe('service-worker');
    // activate -> clients.claim(): the page is now controlled.
    await expect.poll(() => page.evaluate(() => window.chordSdk.controllerUrl())).toContain('strategy-sw.ts');
    const oldUrl = await page.evaluate(() => window.chordSdk.controllerUrl());
    expect(await fetchZ(page, Z_POS)).toMatchObject({ ok: true, transport: 'service-worker', stale: false });

    // "Ship" a new worker: a different script URL for the same scope.
    await init(page, true, { serviceWorkerScope: '/', swUrl: `${first.swUrl}&release=2` });
    await expect.poll(async () => (await page.evaluate(() => window.chordSdk.strategyWorkerInfo())).updateWaiting).toBe(true);
    // The old worker keeps serving while the new one waits.
    expect(await page.evaluate(() => window.chordSdk.controllerUrl())).toBe(oldUrl);
    expect(await fetchZ(page, Z_NEG)).toMatchObject({ ok: true, transport: 'service-worker', firstLevel: 1 });

    expect(await page.evaluate(() => window.chordSdk.strategyActivateUpdate())).toBe(true);
    await expect.poll(() => page.evaluate(() => window.chordSdk.controllerUrl())).toContain('release=2');
    expect(await page.evaluate(() => window.chordSdk.strategyWorkerInfo())).toMatchObject({ updateWaiting: false });
    // The new worker answers, and sees the last good strategy the old one cached (same SW version).
    server.mode = { kind: 'status', status: 500 };
    expect(await fetchZ(page, Z_POS)).toMatchObject({ ok: true, transport: 'service-worker', stale: true, firstLevel: 1 });
  } finally {
    await proxy.close();
  }
});
