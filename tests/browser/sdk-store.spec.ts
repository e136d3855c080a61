import { expect, test } from '@playwright/test';
import { StrategyTestServer } from './pages/sdk.server.ts';
import { openSdkPage, reloadSdkPage } from './sdk-page.ts';

const KEY = { modelId: 'sasrec-test', version: 'v1', name: 'backbone' };
const K3: [string, string, string] = ['sasrec-test', 'v1', 'backbone'];

test('stored tensors persist across reloads and verify on load', async ({ page }) => {
  await openSdkPage(page);
  const put = await page.evaluate(([k]) => window.chordSdk.storePut('chord-test', k, 100, 3), [KEY] as const);
  expect(put).toMatchObject({ stored: 'indexeddb', mode: 'indexeddb', pruned: 0 });
  await reloadSdkPage(page);
  const got = await page.evaluate(([k]) => window.chordSdk.storeGet('chord-test', k), [KEY] as const);
  expect(got).toMatchObject({ status: 'hit', from: 'indexeddb', bytes: 100 * 64 * 4 + 64 * 4, first: [3, 3.25, 3.5] });
  expect(got.sha256).toMatch(/^[0-9a-f]{64}$/);
  // A pinned hash that differs marks the entry stale: it is deleted.
  const stale = await page.evaluate(([k]) => window.chordSdk.storeGet('chord-test', k, '00'.repeat(32)), [KEY] as const);
  expect(stale).toMatchObject({ status: 'dropped', reason: 'stale', code: 'STORE_STALE' });
  expect(await page.evaluate(([k]) => window.chordSdk.storeGet('chord-test', k), [KEY] as const)).toEqual({ status: 'miss' });
});

test('a new version of an artifact replaces the old one', async ({ page }) => {
  await openSdkPage(page);
  await page.evaluate(([k]) => window.chordSdk.storePut('chord-test', k, 10, 1), [KEY] as const);
  const v2 = await page.evaluate(([k]) => window.chordSdk.storePut('chord-test', { ...k, version: 'v2' }, 10, 2), [KEY] as const);
  expect(v2).toMatchObject({ stored: 'indexeddb', pruned: 1 });
  expect(await page.evaluate(() => window.chordSdk.storeCount('chord-test', 'artifacts'))).toBe(1);
  expect(await page.evaluate(([k]) => window.chordSdk.storeGet('chord-test', k), [KEY] as const)).toEqual({ status: 'miss' });
});

for (const [how, reason] of [
  ['flip-byte', 'corrupt'],
  ['truncate', 'truncated'],
  ['old-format', 'stale'],
  ['garbage', 'corrupt'],
] as const) {
  test(`artifact integrity: ${how} -> dropped as ${reason} after reload, then a miss`, async ({ page }) => {
    await openSdkPage(page);
    await page.evaluate(([k]) => window.chordSdk.storePut('chord-test', k, 50, 7), [KEY] as const);
    await page.evaluate(([k3, h]) => window.chordSdk.storeCorrupt('chord-test', 'artifacts', k3, h), [K3, how] as const);
    await reloadSdkPage(page);
    const got = await page.evaluate(([k]) => window.chordSdk.storeGet('chord-test', k), [KEY] as const);
    expect(got).toMatchObject({ status: 'dropped', reason, code: `STORE_${reason.toUpperCase()}` });
    expect(await page.evaluate(() => window.chordSdk.storeCount('chord-test', 'artifacts'))).toBe(0);
    expect(await page.evaluate(([k]) => window.chordSdk.storeGet('chord-test', k), [KEY] as const)).toEqual({ status: 'miss' });
    const issues = await page.evaluate(() => window.chordSdk.issues());
    expect(issues.map((i) => i.code)).toEqual([`STORE_${reason.toUpperCase()}`]);
  });
}

test('a version-1 database loses its unused packed-weights store on open; artifacts work as before', async ({ page }) => {
  await openSdkPage(page);
  await page.evaluate(() => window.chordSdk.storeVersion1('chord-test'));
  expect(await page.evaluate(() => window.chordSdk.storeSchema('chord-test'))).toEqual({ version: 1, stores: ['artifacts', 'packed'] });
  const put = await page.evaluate(([k]) => window.chordSdk.storePut('chord-test', k, 10, 4), [KEY] as const);
  expect(put).toMatchObject({ stored: 'indexeddb', mode: 'indexeddb' });
  expect(await page.evaluate(() => window.chordSdk.storeSchema('chord-test'))).toEqual({ version: 3, stores: ['artifacts', 'itemTables'] });
  await reloadSdkPage(page);
  expect(await page.evaluate(([k]) => window.chordSdk.storeGet('chord-test', k), [KEY] as const)).toMatchObject({ status: 'hit', first: [4, 4.25, 4.5] });
});

test.describe('artifact loader', () => {
  const server = new StrategyTestServer();
  test.beforeAll(async () => {
    server.addArtifact('backbone', 300, 5);
    await server.start(0);
  });
  test.afterAll(async () => server.stop());

  test('downloads with progress, then loads from the store; recovers from a corrupt entry', async ({ page }) => {
    await openSdkPage(page);
    const base = `${server.endpoint}/artifacts`;
    const first = await page.evaluate(([b, k]) => window.chordSdk.loadArtifact('chord-test', b, k), [base, KEY] as const);
    expect(first).toMatchObject({ source: 'network', dropped: null, put: { stored: 'indexeddb' }, shape: [300, 64], first: [5, 5.25, 5.5] });
    expect(first.stages).toEqual(['download', 'verify', 'store-write']);
    expect(first.lastDownload).toMatchObject({ loaded: 300 * 64 * 4, total: 300 * 64 * 4 });
    const downloads = server.log.length;

    await reloadSdkPage(page);
    const second = await page.evaluate(([b, k]) => window.chordSdk.loadArtifact('chord-test', b, k), [base, KEY] as const);
    expect(second).toMatchObject({ source: 'store', sha256: first.sha256, first: [5, 5.25, 5.5] });
    expect(second.stages).toEqual(['store-read', 'verify']);
    expect(server.log.length).toBe(downloads);

    await page.evaluate(([k3]) => window.chordSdk.storeCorrupt('chord-test', 'artifacts', k3, 'flip-byte'), [K3] as const);
    await reloadSdkPage(page);
    const third = await page.evaluate(([b, k]) => window.chordSdk.loadArtifact('chord-test', b, k), [base, KEY] as const);
    expect(third).toMatchObject({ source: 'network', dropped: 'corrupt', sha256: first.sha256, put: { stored: 'indexeddb' } });
    expect(server.log.length).toBe(downloads + 2);
  });
});

test('quota exceeded: typed StorageQuotaError, session continues from memory', async ({ page, context }) => {
  await openSdkPage(page);
  // A real quota: Chromium's DevTools protocol lowers this origin's storage quota to 256 KiB.
  const cdp = await context.newCDPSession(page);
  const origin = new URL(page.url()).origin;
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 256 * 1024 });
  const small = await page.evaluate(([k]) => window.chordSdk.storePut('chord-test', { ...k, name: 'gru' }, 10, 1), [KEY] as const);
  expect(small).toMatchObject({ stored: 'indexeddb' });
  const big = await page.evaluate(([k]) => window.chordSdk.storePut('chord-test', k, 4096, 9), [KEY] as const);
  expect(big).toMatchObject({ stored: 'memory', code: 'STORE_QUOTA', mode: 'memory', bytes: 4096 * 256 + 256 });
  expect(await page.evaluate(() => window.chordSdk.issues())).toEqual([expect.objectContaining({ code: 'STORE_QUOTA' })]);
  // Same session: served from memory, verified like any other entry. Earlier IndexedDB entries still load.
  expect(await page.evaluate(([k]) => window.chordSdk.storeGet('chord-test', k), [KEY] as const)).toMatchObject({
    status: 'hit',
    from: 'memory',
    first: [9, 9.25, 9.5],
  });
  expect(await page.evaluate(([k]) => window.chordSdk.storeGet('chord-test', { ...k, name: 'gru' }), [KEY] as const)).toMatchObject({
    status: 'hit',
    from: 'indexeddb',
  });
  // Later writes of the session go to memory without trying IndexedDB again.
  expect(await page.evaluate(([k]) => window.chordSdk.storePut('chord-test', { ...k, name: 'x' }, 1, 1), [KEY] as const)).toMatchObject({
    stored: 'memory',
    code: 'STORE_UNAVAILABLE',
  });
  await reloadSdkPage(page);
  expect(await page.evaluate(([k]) => window.chordSdk.storeGet('chord-test', k), [KEY] as const)).toEqual({ status: 'miss' });
  await cdp.send('Storage.overrideQuotaForOrigin', { origin });
});

test('frozen weights: regeneration time in the browser (documents the no-store decision)', async ({ page }) => {
  await openSdkPage(page);
  const bench = await page.evaluate(() => window.chordSdk.frozenBench(5));
  console.log(`frozen regeneration (median of 5): ${JSON.stringify(bench)}`);
  expect(bench.sasrec!.params).toBe(98304);
  expect(bench.caser!.params).toBe(36884);
  // Same hashes as Node computes for seed 42 (src/core is bit-identical in both).
  expect(bench.sasrec!.sha256).toMatch(/^9dbff14c6a3f/);
  expect(bench.caser!.sha256).toMatch(/^e0f018e17686/);
  // Generous bound for SwiftShader CI machines; the measured value is logged above.
  expect(bench.sasrec!.generateMs + bench.sasrec!.hashMs).toBeLessThan(500);
});
