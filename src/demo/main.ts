/**
 * The demo shop page: a catalogue by category, a "recommended for you" row reranked in the page
 * on every click, and panels that show what CHORD does underneath (backend and latency, bytes of
 * strategy vs weights, bits per channel, a timeline, a device budget control).
 *
 * Query parameters: ?device=cpu|webgpu|auto (default auto), ?budget=sent|3|2.5|2 (default sent:
 * the strategy as the server sent it; a number: T to that many average bits).
 */
import { channelRangesFromWeights } from '../core/budget.ts';
import { parseManifest, resolveFrozenWeights } from '../core/manifest.ts';
import { loadTensorArtifact } from '../device/artifacts.ts';
import { createReranker } from '../device/index.ts';
import type { DevicePreference, Reranker, StrategyEvent } from '../device/index.ts';
import { strategyCacheName } from '../sw/version.ts';
import { categoryShare, selectCandidates } from './candidates.ts';
import { parseDemoCatalogue } from './catalogue.ts';
import type { DemoCatalogue, DemoItem } from './catalogue.ts';
import { DEMO_DRIFT } from './drift-settings.ts';
import { budgetLabel, formatBytes, formatMs, rankingChange } from './format.ts';
import { StrategyTap } from './strategy-tap.ts';
import { ShopView } from './shop-view.ts';
import { Panels } from './panels.ts';

/** The budget control's settings: null = the strategy as sent (no T), then T's targets in average bits. */
export const BUDGETS: readonly (number | null)[] = [null, 3, 2.5, 2];
const TOP_K = 10;

/** What the page exposes for its end-to-end test (read-only views of its state). */
export interface DemoHandle {
  readonly catalogue: DemoCatalogue;
  readonly reranker: Reranker;
  /** The recommended row, best first. */
  recommended(): string[];
  candidates(): string[];
  clicks(): string[];
}

declare global {
  interface Window {
    chordDemo?: DemoHandle;
  }
}

async function fetchJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

async function boot(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const device = (params.get('device') ?? 'auto') as DevicePreference;
  const asked = params.get('budget');
  let budget: number | null = asked === null || asked === 'sent' ? null : Number(asked);
  if (!BUDGETS.includes(budget)) budget = null;

  const view = new ShopView(document);
  const panels = new Panels(document, BUDGETS, budget);
  view.setStatus('loading the catalogue…');

  const catalogue = parseDemoCatalogue(await fetchJson('/catalogue.json'));
  const modelUrl = `/models/${catalogue.modelId}`;
  const manifest = parseManifest(await fetchJson(`${modelUrl}/manifest.json`));
  // T's input (the frozen weights' channel ranges), for the heatmap; see strategy-tap.ts. A
  // frozen-pretrained model (the demo's) ships them in backbone.bin: read with the SDK's loader
  // (no store: the reranker keeps its own copy) and checked against the manifest's hash.
  const backbone = await loadTensorArtifact({ key: { modelId: manifest.modelId, version: 'heatmap', name: 'backbone' }, baseUrl: modelUrl });
  const frozen = (await resolveFrozenWeights(manifest, backbone.tensors)).map(({ spec, weights }) => ({
    rowLength: spec.rowLength,
    ranges: channelRangesFromWeights(weights, spec.outChannels, spec.rowLength),
  }));
  const tap = new StrategyTap(manifest, frozen);
  const zDim = document.querySelector('#z-dim');
  if (zDim) zDim.textContent = String(manifest.userDim); // the length of z: all that leaves the page
  // Each visit is a new shopper: no strategy carried over from an earlier visit.
  await globalThis.caches?.delete(strategyCacheName()).catch(() => false);

  view.renderCatalogue(catalogue);
  const clicks: string[] = [];
  let candidates: string[] = [];
  let recommended: string[] = [];
  let refreshChain: Promise<void> = Promise.resolve();

  const reranker = await createReranker({
    model: modelUrl,
    strategyEndpoint: location.origin, // /v1 is proxied to the strategy server (src/demo/start.ts)
    device,
    budget,
    drift: DEMO_DRIFT,
    fetch: tap.wrap(globalThis.fetch.bind(globalThis)),
    onProgress: ({ stage, item, loaded, total }) =>
      view.setStatus(`loading: ${stage} ${item}${total ? ` ${Math.round((100 * loaded) / total)}%` : ''}`),
    on: {
      drift: (e) => panels.timeline.add('drift', e.reason === 'initial' ? `First ${e.clicks} clicks: asking for a personal strategy` : `Interest drift (distance ${e.distance.toFixed(2)}): asking for a new strategy`),
      fallback: (e) => panels.timeline.add('error', `WebGPU unavailable (${e.reason}): reranking on the CPU`),
      error: (e) =>
        panels.timeline.add(
          'error',
          e.during === 'strategy-fetch'
            ? `Strategy server unreachable: ${e.recovered === 'last-good' ? 'using the last good strategy' : 'keeping the strategy in use'}`
            : `Strategy not applied: ${e.error.message}`,
        ),
    },
  });

  const showStrategy = (e: StrategyEvent | null): void => {
    const info = reranker.strategy!;
    // info.budget is the target T was run with (null: none), so the heatmap repeats the SDK's T exactly.
    panels.showStrategy(info, tap.levelsFor(info, info.budget), tap.bytesReceived, tap.requests.length);
    // Budget changes get their own timeline entry, with the ranking change (see onBudget below).
    if (e && e.reason !== 'load' && e.reason !== 'budget') {
      panels.timeline.add(
        'strategy',
        `Strategy ${info.revision ?? ''} applied (${e.reason}): ${formatBytes(info.bytes)}, ${info.averageBits.toFixed(2)} bits avg, ${formatMs(e.applyMs)}`,
      );
    }
  };

  /** Re-selects candidates and reranks; serialised so the row always shows the latest state. */
  const refresh = (): Promise<void> => {
    const run = async (): Promise<void> => {
      candidates = selectCandidates(catalogue, clicks);
      const t0 = performance.now();
      const ranked = await reranker.rerank(candidates, { k: TOP_K });
      const ms = performance.now() - t0;
      recommended = ranked.map((r) => r.id);
      view.renderRecommended(catalogue, recommended, clicks.length);
      const focus = view.lastClickedCategory(catalogue, clicks);
      view.setRecommendationNote(
        `${candidates.length} candidates reranked on ${reranker.backend === 'webgpu' ? 'WebGPU' : 'the CPU'} in ${formatMs(ms)}` +
          (focus === null
            ? ''
            : ` · ${catalogue.categories[focus]}: ${Math.round(100 * categoryShare(catalogue, candidates, focus))}% of candidates, ` +
              `${Math.round(100 * categoryShare(catalogue, recommended, focus))}% of the top ${TOP_K}`),
      );
      panels.showLatency(reranker.backend, reranker.backendName, ms, candidates.length);
    };
    // A failed rerank is shown and does not block the next one.
    refreshChain = refreshChain.then(run).catch((e: unknown) => panels.timeline.add('error', `Rerank failed: ${e instanceof Error ? e.message : String(e)}`));
    return refreshChain;
  };

  reranker.on('strategy', (e) => {
    showStrategy(e);
    if (e.reason !== 'budget') void refresh(); // the budget control reranks itself, to compare
  });

  view.onProductClick((item: DemoItem) => {
    // The click goes on the timeline first: observe() emits a drift it causes synchronously.
    panels.timeline.add('click', `Clicked ${item.title} (${catalogue.categories[item.category]})`, item.category, catalogue.categories.length);
    if (!reranker.observe(item.id).accepted) return;
    clicks.push(item.id);
    void refresh();
  });

  panels.onBudget(async (next) => {
    await refreshChain;
    const before = recommended;
    await reranker.setBudget(next);
    await refresh();
    const { moved, replaced } = rankingChange(before, recommended);
    const line = `${moved + replaced} of the top ${TOP_K} changed (${replaced} replaced, ${moved} moved)`;
    panels.showBudgetResult(`${budgetLabel(next)}: ${line}`);
    panels.timeline.add('budget', `Budget ${budgetLabel(next)} (${reranker.strategy!.averageBits.toFixed(2)} bits avg, applied here): ${line}`);
  });

  showStrategy(null);
  await refresh();
  view.setStatus(`ready · ${catalogue.items.length} products · model ${reranker.modelId}`);
  panels.timeline.add('strategy', `Model loaded: default strategy, ${reranker.strategy!.averageBits.toFixed(2)} bits avg; click products to personalise`);
  window.chordDemo = {
    catalogue,
    reranker,
    recommended: () => [...recommended],
    candidates: () => [...candidates],
    clicks: () => [...clicks],
  };
  document.body.dataset.ready = '1';
}

boot().catch((e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  const status = document.querySelector('#status');
  if (status) status.textContent = `failed to start: ${message}`;
  document.body.dataset.ready = 'error';
  console.error(e);
});

