/**
 * Page side of strategy fetching. With a service worker URL it registers the strategy SW (as a
 * module worker) and asks it through `{ kind, id, content }` messages on a MessageChannel; the
 * SW keeps the last good strategy and the backoff state across page loads. Without service
 * workers (unsupported, blocked, insecure context, registration failure) or when the worker does
 * not answer in time, it runs the same StrategyFetcher in the page, sharing the origin's Cache
 * Storage with the SW where it exists.
 */
import { BitstreamError, decodeStrategy } from '../core/bitstream.ts';
import type { DecodedStrategy, ExpectedLayer } from '../core/bitstream.ts';
import { ERROR_CODES } from '../core/errors.ts';
import { StrategyFetchError } from '../sw/errors.ts';
import type { StrategyFetchErrorCode } from '../sw/errors.ts';
import { isSwResponse } from '../sw/protocol.ts';
import type { FetchPolicy, FetchStrategyContent, StrategyFailure, StrategyReply, SwRequest, SwResponse, VersionContent } from '../sw/protocol.ts';
import { CacheStorageStrategyCache, MemoryStrategyCache } from '../sw/strategy-cache.ts';
import { StrategyFetcher } from '../sw/strategy-fetcher.ts';
import { strategyCacheName } from '../sw/version.ts';
import { DEFAULT_FETCH_POLICY } from '../sw/protocol.ts';

export interface StrategyClientOptions {
  /** Base URL of the strategy service. */
  readonly endpoint: string;
  readonly modelId: string;
  /** The frozen weights this page holds; strategies for other weights are rejected. */
  readonly frozenWeightsHash: string;
  /** Cache slot of the last good strategy (default: frozenWeightsHash). */
  readonly modelVersion?: string;
  /** The manifest's quantizable layers: names for the decoded strategy, and a layout check. */
  readonly layers?: readonly ExpectedLayer[];
  /** Script URL of the strategy SW (src/sw/url.ts); omitted or null: fetch from the page. */
  readonly serviceWorkerUrl?: string | URL | null;
  readonly serviceWorkerScope?: string;
  readonly policy?: Partial<FetchPolicy>;
  /** How much longer than policy.timeoutMs the page waits for the worker's reply (default 2000). */
  readonly messageSlackMs?: number;
  /** How long to wait for the worker to activate on first registration (default 10 s). */
  readonly activationTimeoutMs?: number;
  /** fetch for the in-page fallback (default globalThis.fetch). */
  readonly fetch?: typeof fetch;
}

/** A worker's error code as this page knows it (a worker of another version may send others). */
function workerErrorCode(code: string): StrategyFetchErrorCode {
  const known: readonly string[] = ERROR_CODES.StrategyFetchError;
  return known.includes(code) ? (code as StrategyFetchErrorCode) : 'STRATEGY_SW_INTERNAL';
}

export interface StrategyResult {
  readonly decoded: DecodedStrategy;
  readonly bytes: Uint8Array;
  readonly stale: boolean;
  readonly source: 'network' | 'cache';
  readonly revision: string;
  readonly fetchedAt: number;
  readonly failure?: StrategyFailure;
  readonly transport: 'service-worker' | 'direct';
}

export type StrategyTransport = 'service-worker' | 'direct';

let counter = 0;
function newId(): string {
  counter++;
  return typeof globalThis.crypto?.randomUUID === 'function' ? globalThis.crypto.randomUUID() : `req-${Date.now()}-${counter}`;
}

/** Resolves with the registration's active worker once there is one. */
function whenActive(reg: ServiceWorkerRegistration, timeoutMs: number): Promise<ServiceWorker> {
  if (reg.active) return Promise.resolve(reg.active);
  return new Promise((resolve, reject) => {
    const worker = reg.installing ?? reg.waiting;
    const timer = setTimeout(() => reject(new Error(`service worker not active after ${timeoutMs} ms`)), timeoutMs);
    const check = (): void => {
      if (reg.active) {
        clearTimeout(timer);
        resolve(reg.active);
      } else if (worker?.state === 'redundant') {
        clearTimeout(timer);
        reject(new Error('service worker became redundant during install'));
      }
    };
    worker?.addEventListener('statechange', check);
    check();
  });
}

export class StrategyClient {
  private readonly options: StrategyClientOptions;
  private readonly registration: ServiceWorkerRegistration | null;
  private direct: StrategyFetcher | null = null;
  /** Why the worker is not used, when it is not. */
  readonly fallbackReason: string | null;

  private constructor(options: StrategyClientOptions, registration: ServiceWorkerRegistration | null, fallbackReason: string | null) {
    this.options = options;
    this.registration = registration;
    this.fallbackReason = fallbackReason;
  }

  /** Registers the SW when asked to and possible; never throws for a missing SW (falls back). */
  static async create(options: StrategyClientOptions): Promise<StrategyClient> {
    const url = options.serviceWorkerUrl;
    if (url === undefined || url === null) return new StrategyClient(options, null, 'no service worker URL given');
    const container = globalThis.navigator?.serviceWorker;
    if (!container) return new StrategyClient(options, null, 'service workers are not available here');
    try {
      const reg = await container.register(url, {
        type: 'module',
        updateViaCache: 'none',
        ...(options.serviceWorkerScope ? { scope: options.serviceWorkerScope } : {}),
      });
      await whenActive(reg, options.activationTimeoutMs ?? 10_000);
      return new StrategyClient(options, reg, null);
    } catch (e) {
      return new StrategyClient(options, null, `service worker registration failed: ${(e as Error).message}`);
    }
  }

  get transport(): StrategyTransport {
    return this.registration?.active ? 'service-worker' : 'direct';
  }

  private get policy(): FetchPolicy {
    return { ...DEFAULT_FETCH_POLICY, ...this.options.policy };
  }

  private directService(): StrategyFetcher {
    if (!this.direct) {
      const storage = globalThis.caches;
      const base = globalThis.location?.href;
      this.direct = new StrategyFetcher({
        cache: storage && base ? new CacheStorageStrategyCache(storage, strategyCacheName(), base) : new MemoryStrategyCache(),
        fetch: this.options.fetch ?? globalThis.fetch.bind(globalThis),
      });
    }
    return this.direct;
  }

  private send(request: SwRequest, timeoutMs: number, worker: ServiceWorker): Promise<SwResponse> {
    const channel = new MessageChannel();
    return new Promise<SwResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        channel.port1.close();
        reject(new StrategyFetchError('STRATEGY_SW_TIMEOUT', `service worker did not answer ${request.kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      channel.port1.onmessage = (event: MessageEvent<unknown>) => {
        const data = event.data;
        if (!isSwResponse(data) || data.id !== request.id) return;
        clearTimeout(timer);
        channel.port1.close();
        resolve(data);
      };
      worker.postMessage(request, [channel.port2]);
    });
  }

  private decode(reply: StrategyReply, transport: StrategyTransport): StrategyResult {
    const bytes = new Uint8Array(reply.bytes);
    let decoded: DecodedStrategy;
    try {
      decoded = decodeStrategy(bytes, {
        modelId: this.options.modelId,
        frozenWeightsHash: this.options.frozenWeightsHash,
        ...(this.options.layers ? { layers: this.options.layers } : {}),
      });
    } catch (e) {
      if (e instanceof BitstreamError) {
        throw new StrategyFetchError('STRATEGY_INVALID', `strategy does not fit this model (${e.code}): ${e.message}`, { cause: e });
      }
      throw e;
    }
    return {
      decoded,
      bytes,
      stale: reply.stale,
      source: reply.source,
      revision: reply.revision,
      fetchedAt: reply.fetchedAt,
      ...(reply.failure ? { failure: reply.failure } : {}),
      transport,
    };
  }

  /** Asks for the strategy for user embedding z; only z, budget and the model id leave the page. */
  async fetchStrategy(z: ArrayLike<number>, budget?: number): Promise<StrategyResult> {
    const content: FetchStrategyContent = {
      endpoint: this.options.endpoint,
      modelId: this.options.modelId,
      modelVersion: this.options.modelVersion ?? this.options.frozenWeightsHash,
      frozenWeightsHash: this.options.frozenWeightsHash,
      z: Array.from(z),
      ...(budget === undefined ? {} : { budget }),
      policy: this.policy,
    };
    const worker = this.registration?.active;
    if (worker) {
      let response: SwResponse | null = null;
      try {
        response = await this.send(
          { kind: 'fetch-strategy', id: newId(), content },
          this.policy.timeoutMs + (this.options.messageSlackMs ?? 2_000),
          worker,
        );
      } catch {
        // The worker is stuck or gone: do this request from the page instead.
      }
      if (response?.kind === 'strategy') return this.decode(response.content, 'service-worker');
      if (response?.kind === 'error') {
        throw new StrategyFetchError(workerErrorCode(response.content.code), response.content.message, {
          ...(response.content.status === undefined ? {} : { status: response.content.status }),
        });
      }
    }
    return this.decode(await this.directService().fetchStrategy(content), 'direct');
  }

  /** A newer worker version is installed and waiting for `activateUpdate`. */
  get updateWaiting(): boolean {
    return Boolean(this.registration?.waiting);
  }

  /** Checks the server for a newer worker script. */
  async checkForUpdate(): Promise<void> {
    await this.registration?.update();
  }

  /** Lets a waiting worker take over (it then deletes the old version's caches). */
  async activateUpdate(timeoutMs = 5_000): Promise<boolean> {
    const waiting = this.registration?.waiting;
    if (!waiting) return false;
    const activated = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`updated service worker not active after ${timeoutMs} ms`)), timeoutMs);
      const check = (): void => {
        if (waiting.state === 'activated') {
          clearTimeout(timer);
          resolve();
        }
      };
      waiting.addEventListener('statechange', check);
      check();
    });
    await this.send({ kind: 'skip-waiting', id: newId(), content: null }, timeoutMs, waiting);
    await activated;
    return true;
  }

  /** The active worker's version and cache name, or null in direct mode. */
  async workerVersion(timeoutMs = 5_000): Promise<VersionContent | null> {
    const worker = this.registration?.active;
    if (!worker) return null;
    const r = await this.send({ kind: 'version', id: newId(), content: null }, timeoutMs, worker);
    return r.kind === 'version' ? r.content : null;
  }
}
