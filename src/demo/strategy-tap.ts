/**
 * The per-channel levels of the strategy in use, for the heatmap. The SDK describes the strategy
 * in use (StrategyInfo: sizes, average bits, channels per level) but not channel by channel, so
 * the demo passes createReranker a `fetch` that keeps a copy of each strategy answer, decodes it
 * with core's decoder and indexes it by revision (the first 16 hex digits of the bitstream's
 * SHA-256, as the SDK names it). T is then applied here the same way the SDK applies it, so the
 * heatmap shows the bits the weights really have under the current budget.
 */
import { decodeStrategy } from '../core/bitstream.ts';
import type { FrozenLayerInfo } from '../core/budget.ts';
import type { ModelManifest } from '../core/manifest.ts';
import type { Strategy } from '../core/strategy.ts';
import { defaultStrategy, effectiveStrategy } from '../device/strategy-state.ts';
import type { ReceivedStrategy } from '../device/strategy-state.ts';
import type { StrategyInfo } from '../device/index.ts';
import { strategyRevision } from '../sw/strategy-cache.ts';

export interface StrategyRequestRecord {
  readonly at: number;
  /** HTTP status, or 0 when the request failed (offline). */
  readonly status: number;
  readonly bytes: number;
  readonly revision: string | null;
}

export class StrategyTap {
  readonly #manifest: ModelManifest;
  readonly #frozen: readonly FrozenLayerInfo[];
  readonly #byRevision = new Map<string, ReceivedStrategy>();
  /** Every strategy request the page made, in order. */
  readonly requests: StrategyRequestRecord[] = [];

  constructor(manifest: ModelManifest, frozen: readonly FrozenLayerInfo[]) {
    this.#manifest = manifest;
    this.#frozen = frozen;
  }

  /** Bytes of strategy bitstreams received so far. */
  get bytesReceived(): number {
    return this.requests.reduce((sum, r) => sum + r.bytes, 0);
  }

  /** A fetch for createReranker: passes everything through, and decodes strategy answers on the side. */
  wrap(inner: typeof fetch): typeof fetch {
    return async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const isStrategy = (init?.method ?? (input instanceof Request ? input.method : 'GET')) === 'POST' && /\/strategy(?:\?|$)/.test(url);
      if (!isStrategy) return inner(input, init);
      let res: Response;
      try {
        res = await inner(input, init);
      } catch (e) {
        this.requests.push({ at: Date.now(), status: 0, bytes: 0, revision: null });
        throw e;
      }
      if (!res.ok) {
        this.requests.push({ at: Date.now(), status: res.status, bytes: 0, revision: null });
        return res;
      }
      const bytes = new Uint8Array(await res.clone().arrayBuffer());
      let revision: string | null = null;
      try {
        const decoded = decodeStrategy(bytes, { modelId: this.#manifest.modelId, layers: this.#manifest.layers });
        revision = await strategyRevision(bytes);
        this.#byRevision.set(revision, {
          strategy: decoded.strategy,
          source: 'network',
          stale: false,
          bytes: bytes.byteLength,
          revision,
          fetchedAt: Date.now(),
        });
      } catch {
        // Not ours to judge: the SDK validates the answer and reports a bad one as an 'error' event.
      }
      this.requests.push({ at: Date.now(), status: res.status, bytes: bytes.byteLength, revision });
      return res;
    };
  }

  /**
   * The channel levels behind `info` (the SDK's strategy in use) under `budget`; null when its
   * bitstream was not seen by this page (a strategy restored from an earlier visit).
   */
  levelsFor(info: StrategyInfo, budget: number | null): Strategy | null {
    const received = info.revision === null ? defaultStrategy(this.#manifest) : this.#byRevision.get(info.revision);
    if (!received) return null;
    return effectiveStrategy(received, this.#frozen, budget).strategy;
  }
}
