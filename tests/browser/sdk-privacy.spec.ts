import { expect, test } from '@playwright/test';
import { FROZEN_HASH, LAYERS, MODEL_ID, StrategyTestServer } from './pages/sdk.server.ts';
import { SDK_PAGE } from './sdk-page.ts';

// A click history that shifts interest twice (catalogue seed 3: items p0001..p0400 in 8 categories).
const CLICKS = ['p0007', 'p0015', 'p0023', 'p0031', 'p0039', 'p0047', 'p0055', 'p0063', 'p0002', 'p0010', 'p0018', 'p0026', 'p0034', 'p0042', 'p0050', 'p0058', 'p0066', 'p0074'];

const server = new StrategyTestServer();
test.beforeAll(async () => server.start(0));
test.afterAll(async () => server.stop());

interface Seen {
  readonly from: 'page' | 'service-worker' | 'server';
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

for (const useServiceWorker of [true, false]) {
  test(`privacy (${useServiceWorker ? 'service worker' : 'direct'}): only z, the budget and the model id leave the page`, async ({ page, context }) => {
    const seen: Seen[] = [];
    context.on('request', (r) => {
      seen.push({
        from: r.serviceWorker() ? 'service-worker' : 'page',
        method: r.method(),
        url: r.url(),
        headers: r.headers(),
        body: r.postData() ?? '',
      });
    });
    const logStart = server.log.length;
    await page.goto(SDK_PAGE);
    await page.waitForSelector('body[data-ready="1"]');
    await page.evaluate(
      (o) => window.chordSdk.strategyInit(o),
      { endpoint: server.endpoint, modelId: MODEL_ID, frozenWeightsHash: FROZEN_HASH, layers: LAYERS, useServiceWorker },
    );
    const session = await page.evaluate((ids) => window.chordSdk.shopperSession(ids, 3), CLICKS);
    expect(session.requests.length).toBeGreaterThanOrEqual(1);
    expect(session.requests.every((r) => (r as { ok: boolean }).ok)).toBe(true);
    expect(session.history.length).toBe(CLICKS.length);

    const received: Seen[] = server.log.slice(logStart).map((r) => ({
      from: 'server',
      method: r.method,
      url: r.url,
      headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, String(v)])),
      body: r.body,
    }));
    const posts = received.filter((r) => r.method === 'POST');
    expect(posts.length).toBe(session.requests.length);
    // The recording covers the worker: its strategy requests are seen from the context.
    const strategyFromContext = seen.filter((s) => s.url.startsWith(server.endpoint) && s.method === 'POST');
    expect(strategyFromContext.length).toBe(posts.length);
    expect(strategyFromContext.every((s) => s.from === (useServiceWorker ? 'service-worker' : 'page'))).toBe(true);

    for (const p of posts) {
      expect(p.url).toBe(`/v1/models/${MODEL_ID}/strategy`);
      const body = JSON.parse(p.body) as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(['budget', 'z']);
      expect(body.budget).toBe(3);
      const z = body.z as number[];
      expect(z).toHaveLength(32);
      // z is a GRU state (tanh-bounded), not a list of item indices.
      expect(z.every((v) => typeof v === 'number' && Math.abs(v) < 1)).toBe(true);
      expect(p.headers.cookie).toBeUndefined();
      expect(p.headers.referer).toBeUndefined();
    }

    // Nothing anywhere (URLs, headers, bodies of every request the page, the worker or the server saw)
    // carries an item id, the click history or the page's stored history.
    const indices = session.history.join(',');
    for (const r of [...seen, ...received]) {
      const text = `${r.url}\n${JSON.stringify(r.headers)}\n${r.body}`;
      for (const id of CLICKS) expect(text, `${r.from} ${r.method} ${r.url}`).not.toContain(id);
      expect(text).not.toContain('recentlyViewed');
      expect(text).not.toContain(indices);
    }
    // The page did hold them (the test would be vacuous otherwise).
    expect(await page.evaluate(() => document.cookie)).toContain(CLICKS[0]!);
  });
}
