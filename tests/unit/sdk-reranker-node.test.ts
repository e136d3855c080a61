// The Reranker on the CPU backend in Node, against the real strategy server (src/cloud) over the
// demo artifact: load, rerank vs. an independent core computation, drift -> one request, budget.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createForward, scoreCandidates, topK } from '../../src/core/forward/index.ts';
import { generateFrozenWeights } from '../../src/core/frozen.ts';
import { dequantizeItemTable, quantizeItemTable } from '../../src/core/item-table.ts';
import { fakeQuantize } from '../../src/core/quantize.ts';
import type { Strategy } from '../../src/core/strategy.ts';
import { createReranker } from '../../src/device/index.ts';
import type { Reranker, StrategyEvent } from '../../src/device/index.ts';
import { quantizedLayerWeights } from '../../src/device/backend-cpu.ts';
import { defaultStrategy } from '../../src/device/strategy-state.ts';
import { RerankerTestServers } from '../browser/pages/reranker.server.ts';

let servers: RerankerTestServers;
beforeAll(async () => {
  servers = await RerankerTestServers.start([]);
});
afterAll(async () => servers?.close());

function open(extra: Record<string, unknown> = {}): Promise<Reranker> {
  return createReranker({ model: servers.modelUrl, strategyEndpoint: servers.endpoint, device: 'cpu', budget: null, persist: false, ...extra });
}

function nextStrategy(r: Reranker): Promise<StrategyEvent> {
  return new Promise((resolve) => {
    const off = r.on('strategy', (e) => {
      off();
      resolve(e);
    });
  });
}

describe('Reranker (CPU, Node)', () => {
  it('loads with the default strategy and ranks like core does', async () => {
    // No strategy request (warm-up never ends): the default strategy stays in use.
    const r = await open({ drift: { warmupClicks: 1000 } });
    try {
      expect(r.backend).toBe('cpu');
      expect(r.strategy).toMatchObject({ source: 'default', stale: false, averageBits: 4, budget: null, levelTable: [2, 4, 6, 8] });
      const a = servers.artifact;
      const history = a.itemsOfTheme(1).slice(0, 4);
      for (const id of history) r.observe(id);
      const candidates = a.items.slice(1, 31);
      const ranked = await r.rerank(candidates);
      expect(ranked).toHaveLength(30);
      expect(new Set(ranked.map((x) => x.id))).toEqual(new Set(candidates));
      for (let i = 1; i < ranked.length; i++) expect(ranked[i - 1]!.score).toBeGreaterThanOrEqual(ranked[i]!.score);

      // Independent: core forward on the frozen weights quantized to the strategy in use, and on the
      // values of the 8-bit item table the page keeps (core/item-table.ts).
      const m = a.manifest;
      const emb = a.backbone.get('item_emb')!;
      const table = quantizeItemTable(emb.data, emb.shape[0]!, emb.shape[1]!);
      const backbone = new Map(a.backbone).set('item_emb', { shape: emb.shape, data: dequantizeItemTable(table) });
      const fwd = createForward(m, backbone, quantizedLayerWeights(generateFrozenWeights(m), defaultStrategy(m).strategy));
      const ids = candidates.map((id) => a.items.indexOf(id));
      const rep = fwd.represent(history.map((id) => a.items.indexOf(id)));
      const scores = scoreCandidates(rep, fwd.scoring, ids);
      const order = topK(scores, 30);
      expect(r.strategy!.source).toBe('default');
      expect(ranked.map((x) => x.id)).toEqual(Array.from(order, (i) => candidates[i]));
      expect(ranked.map((x) => x.score)).toEqual(Array.from(order, (i) => scores[i]));
      expect(await r.rerank(candidates)).toEqual(ranked);
      expect(await r.rerank(candidates, { k: 5 })).toEqual(ranked.slice(0, 5));
    } finally {
      r.dispose();
    }
  });

  it('one drift -> exactly one strategy request; the strategy arrives and applies', async () => {
    const r = await open({ drift: { high: 1e-9, low: 0, confirmClicks: 1, minIntervalClicks: 1 } });
    try {
      const before = servers.strategyPosts.length;
      const drifts: string[] = [];
      r.on('drift', (e) => drifts.push(e.reason));
      const applied = nextStrategy(r);
      const items = servers.artifact.itemsOfTheme(0);
      const results = items.slice(0, 5).map((id) => r.observe(id));
      expect(results.map((x) => x.requested)).toEqual([true, false, false, false, false]);
      const e = await applied;
      expect(e.reason).toBe('initial');
      expect(e.strategy).toMatchObject({ source: 'network', stale: false });
      expect(e.strategy.averageBits).toBeGreaterThan(2);
      expect(e.strategy.averageBits).toBeLessThan(8);
      expect(servers.strategyPosts.length - before).toBe(1);

      const second = nextStrategy(r);
      const more = servers.artifact.itemsOfTheme(2).slice(0, 5).map((id) => r.observe(id));
      expect(more.filter((x) => x.requested)).toHaveLength(1);
      expect((await second).reason).toBe('drift');
      expect(servers.strategyPosts.length - before).toBe(2);
      expect(drifts).toEqual(['initial', 'drift']);

      const lowered = await r.setBudget(2.5);
      expect(lowered.averageBits).toBeLessThanOrEqual(2.5);
      expect(lowered.budget).toBe(2.5);
      expect(lowered.revision).toBe(r.strategy!.revision);
      const raised = await r.setBudget(null);
      expect(raised.averageBits).toBe(lowered.receivedAverageBits);
      expect(servers.strategyPosts.length - before).toBe(2);
    } finally {
      r.dispose();
    }
  });

  it('history replay equals observing the same clicks; off() removes a handler; offline keeps the strategy', async () => {
    const a = servers.artifact;
    const clicks = [...a.itemsOfTheme(3).slice(0, 3), 'not-an-item', a.itemsOfTheme(0)[0]!];
    const quiet = { drift: { warmupClicks: 1000 } };
    const replayed = await open({ ...quiet, history: clicks });
    const observed = await open(quiet);
    try {
      const accepted = clicks.map((id) => observed.observe(id).accepted);
      expect(accepted).toEqual([true, true, true, false, true]);
      expect(replayed.history).toEqual(clicks.filter((id) => id !== 'not-an-item'));
      expect(observed.history).toEqual(replayed.history);
      const candidates = a.items.slice(1);
      expect(await replayed.rerank(candidates)).toEqual(await observed.rerank(candidates));
    } finally {
      replayed.dispose();
      observed.dispose();
    }

    const r = await open({ drift: { high: 1e-9, low: 0, confirmClicks: 1, minIntervalClicks: 1 }, strategyPolicy: { backoffBaseMs: 10, backoffMaxMs: 20 } });
    try {
      const seen: string[] = [];
      const handler = (e: StrategyEvent) => seen.push(e.reason);
      r.on('strategy', handler);
      const first = nextStrategy(r);
      r.observe(a.itemsOfTheme(1)[0]!);
      const applied = (await first).strategy;
      expect(seen).toEqual(['initial']);
      r.off('strategy', handler);

      await servers.stopStrategy();
      const failed = new Promise<string>((resolve) => r.on('error', (e) => resolve(`${e.during}:${e.recovered}:${(e.error as { code?: string }).code}`)));
      expect(r.observe(a.itemsOfTheme(2)[0]!).requested).toBe(true);
      expect(await failed).toBe('strategy-fetch:last-good:STRATEGY_OFFLINE');
      expect(r.strategy).toEqual(applied);
      expect(await r.rerank(a.items.slice(1, 11))).toHaveLength(10);
      expect(seen).toEqual(['initial']);
    } finally {
      await servers.startStrategy();
      r.dispose();
    }
  });
});

describe('Reranker (CPU, Node): the off level', () => {
  it('quantizedLayerWeights: off channels (level 0 of [0, 3, 4, 5]) are +0 rows, the rest core fakeQuantize', () => {
    const m = servers.artifact.manifest;
    const frozen = generateFrozenWeights(m);
    const strategy: Strategy = {
      levelTable: [0, 3, 4, 5],
      beta: 0.375,
      layers: m.layers.map((l) => ({ name: l.name, levels: Uint8Array.from({ length: l.outChannels }, (_, j) => (j * 7) % 4) })),
    };
    const weights = quantizedLayerWeights(frozen, strategy);
    frozen.forEach(({ spec, weights: w }, l) => {
      const bits = Uint8Array.from(strategy.layers[l]!.levels, (v) => strategy.levelTable[v]!);
      const got = weights.get(spec.name)!;
      expect(Array.from(new Uint32Array(got.buffer))).toEqual(Array.from(new Uint32Array(fakeQuantize(w, spec, bits).buffer)));
      for (let j = 0; j < spec.outChannels; j++) {
        const row = got.subarray(j * spec.rowLength, (j + 1) * spec.rowLength);
        if (bits[j] === 0) expect(row.every((x) => Object.is(x, 0))).toBe(true);
        else expect(row.some((x) => x !== 0)).toBe(true);
      }
    });
  });

  it('applies strategies from a server whose hypernet switches channels off', async () => {
    const gate = await RerankerTestServers.start([], { modelId: 'sasrec-gate', levelTable: [0, 3, 4, 5], beta: 0.375 });
    const r = await createReranker({
      model: gate.modelUrl, strategyEndpoint: gate.endpoint, device: 'cpu', budget: null, persist: false,
      drift: { high: 1e-9, low: 0, confirmClicks: 1, minIntervalClicks: 1 },
    });
    try {
      const next = nextStrategy(r);
      r.observe(gate.artifact.itemsOfTheme(2)[0]!);
      const { strategy } = await next;
      expect(strategy).toMatchObject({ source: 'network', levelTable: [0, 3, 4, 5] });
      expect(strategy.channelsPerLevel[0]).toBeGreaterThan(0);
      const ranked = await r.rerank(gate.artifact.items.slice(1, 21));
      expect(ranked).toHaveLength(20);
      expect(ranked.every((x) => Number.isFinite(x.score))).toBe(true);
      const t = await r.setBudget(1);
      expect(t.averageBits).toBeLessThanOrEqual(1);
      expect(t.channelsPerLevel[0]).toBeGreaterThan(strategy.channelsPerLevel[0]);
      expect(await r.rerank(gate.artifact.items.slice(1, 21))).toHaveLength(20);
    } finally {
      r.dispose();
      await gate.close();
    }
  });
});
