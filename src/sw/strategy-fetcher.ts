/**
 * The strategy fetch policy, shared by the service worker and the page's direct fallback:
 * network first; on success the bitstream becomes the last good strategy of its model version;
 * on failure (offline, timeout, 5xx, non-bitstream 200, invalid bitstream) the last good one is
 * returned flagged stale and the network is left alone for an exponentially growing, jittered
 * interval. Without a last good strategy the failure is thrown as StrategyFetchError.
 */
import { Backoff } from './backoff.ts';
import { StrategyFetchError } from './errors.ts';
import { checkStrategyRequest, fetchStrategyBitstream, validateStrategyBytes } from './fetch-strategy.ts';
import { DEFAULT_FETCH_POLICY } from './protocol.ts';
import type { FetchPolicy, FetchStrategyContent, StrategyFailure, StrategyReply } from './protocol.ts';
import { strategyRevision } from './strategy-cache.ts';
import type { StrategyCache, StrategyCacheEntry } from './strategy-cache.ts';

export interface StrategyFetcherOptions {
  readonly cache: StrategyCache;
  readonly fetch: typeof fetch;
  readonly now?: () => number;
  readonly random?: () => number;
}

export class StrategyFetcher {
  private readonly backoffs = new Map<string, Backoff>();
  private readonly cache: StrategyCache;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(options: StrategyFetcherOptions) {
    this.cache = options.cache;
    this.fetchFn = options.fetch;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  private backoffFor(content: FetchStrategyContent, policy: FetchPolicy): Backoff {
    const key = `${content.endpoint}\u0000${content.modelId}\u0000${content.modelVersion}`;
    let b = this.backoffs.get(key);
    if (!b) {
      b = new Backoff({ baseMs: policy.backoffBaseMs, maxMs: policy.backoffMaxMs }, this.random);
      this.backoffs.set(key, b);
    }
    return b;
  }

  /** The last good strategy, re-validated (a cache entry can be damaged or from other weights). */
  private async lastGood(content: FetchStrategyContent): Promise<StrategyCacheEntry | null> {
    let entry: StrategyCacheEntry | null;
    try {
      entry = await this.cache.get(content.modelId, content.modelVersion);
    } catch {
      return null; // Cache Storage unavailable or evicted: behave as if empty.
    }
    if (!entry) return null;
    try {
      validateStrategyBytes(entry.bytes, content);
      return entry;
    } catch {
      await this.cache.delete(content.modelId, content.modelVersion).catch(() => undefined);
      return null;
    }
  }

  async fetchStrategy(content: FetchStrategyContent): Promise<StrategyReply> {
    // A request we refuse to send is the caller's bug, not the network's: no backoff, no stale.
    checkStrategyRequest(content);
    const policy: FetchPolicy = { ...DEFAULT_FETCH_POLICY, ...content.policy };
    const backoff = this.backoffFor(content, policy);
    const now = this.now();
    let failure: StrategyFetchError;
    if (!backoff.canTry(now)) {
      failure = new StrategyFetchError(
        'STRATEGY_BACKOFF',
        `backing off after ${backoff.consecutiveFailures} failures until ${new Date(backoff.nextAttemptAt).toISOString()}`,
      );
    } else {
      try {
        const { bytes } = await fetchStrategyBitstream(
          {
            endpoint: content.endpoint,
            modelId: content.modelId,
            frozenWeightsHash: content.frozenWeightsHash,
            z: content.z,
            ...(content.budget === undefined ? {} : { budget: content.budget }),
            timeoutMs: policy.timeoutMs,
          },
          this.fetchFn,
        );
        backoff.succeed();
        const entry: StrategyCacheEntry = { bytes, revision: await strategyRevision(bytes), fetchedAt: this.now() };
        // Caching is an optimisation: a failed put must not lose a good strategy.
        await this.cache.put(content.modelId, content.modelVersion, entry).catch(() => undefined);
        return { bytes: entry.bytes.slice().buffer, stale: false, source: 'network', revision: entry.revision, fetchedAt: entry.fetchedAt };
      } catch (e) {
        if (!(e instanceof StrategyFetchError)) throw e;
        backoff.fail(this.now());
        failure = e;
      }
    }
    const last = await this.lastGood(content);
    if (!last) throw failure;
    const info: StrategyFailure = { code: failure.code, message: failure.message, retryAt: backoff.nextAttemptAt };
    return { bytes: last.bytes.slice().buffer, stale: true, source: 'cache', revision: last.revision, fetchedAt: last.fetchedAt, failure: info };
  }
}
