/**
 * Messages between the page and the strategy service worker: `{ kind, id, content }`. The page
 * sends a request with a fresh id (and a MessagePort for the reply); the worker answers with the
 * same id. Everything here is structured-clone friendly.
 */
import type { StrategyFetchErrorCode } from './errors.ts';

export interface FetchPolicy {
  /** Whole request (connect + body) timeout. */
  readonly timeoutMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

export const DEFAULT_FETCH_POLICY: FetchPolicy = { timeoutMs: 8_000, backoffBaseMs: 1_000, backoffMaxMs: 5 * 60_000 };

/**
 * What the page asks for. Only `z`, `budget` and `modelId` are sent to the server; the rest
 * tells the worker where to send them and how to validate and file the answer.
 */
export interface FetchStrategyContent {
  /** Base URL of the strategy service, e.g. "https://chord.example.com". */
  readonly endpoint: string;
  readonly modelId: string;
  /** Cache slot: the last good strategy is kept per model version. */
  readonly modelVersion: string;
  /** The strategy must be for these frozen weights (64 hex digits). */
  readonly frozenWeightsHash: string;
  readonly z: readonly number[];
  /** Average bit budget for the resource transform T; omitted = the server's default. */
  readonly budget?: number;
  readonly policy?: Partial<FetchPolicy>;
}

export interface StrategyFailure {
  readonly code: StrategyFetchErrorCode;
  readonly message: string;
  /** Earliest time (ms since epoch) the worker will try the network again. */
  readonly retryAt: number;
}

export interface StrategyReply {
  /** A bitstream that passed decodeStrategy for this model and frozen weights. */
  readonly bytes: ArrayBuffer;
  /** True when the network failed (or is backing off) and this is the last good strategy. */
  readonly stale: boolean;
  readonly source: 'network' | 'cache';
  /** First 16 hex digits of the bitstream's SHA-256: identifies this strategy. */
  readonly revision: string;
  /** When this strategy was fetched (ms since epoch). */
  readonly fetchedAt: number;
  /** Why the network answer was not used (stale replies only). */
  readonly failure?: StrategyFailure;
}

export interface ErrorContent {
  readonly code: StrategyFetchErrorCode;
  readonly message: string;
  readonly status?: number;
}

export interface VersionContent {
  readonly version: string;
  readonly cacheName: string;
}

export type SwRequest =
  | { readonly kind: 'fetch-strategy'; readonly id: string; readonly content: FetchStrategyContent }
  | { readonly kind: 'skip-waiting'; readonly id: string; readonly content: null }
  | { readonly kind: 'version'; readonly id: string; readonly content: null };

export type SwResponse =
  | { readonly kind: 'strategy'; readonly id: string; readonly content: StrategyReply }
  | { readonly kind: 'skip-waiting'; readonly id: string; readonly content: { readonly ok: true } }
  | { readonly kind: 'version'; readonly id: string; readonly content: VersionContent }
  | { readonly kind: 'error'; readonly id: string; readonly content: ErrorContent };

export const REQUEST_KINDS = ['fetch-strategy', 'skip-waiting', 'version'] as const;

/** Shape check of an incoming message (anything can be posted to a worker). */
export function isSwRequest(v: unknown): v is SwRequest {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as { kind?: unknown; id?: unknown };
  return typeof m.id === 'string' && (REQUEST_KINDS as readonly unknown[]).includes(m.kind);
}

export function isSwResponse(v: unknown): v is SwResponse {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as { kind?: unknown; id?: unknown; content?: unknown };
  return (
    typeof m.id === 'string' &&
    ['strategy', 'skip-waiting', 'version', 'error'].includes(m.kind as string) &&
    typeof m.content === 'object' &&
    m.content !== null
  );
}
