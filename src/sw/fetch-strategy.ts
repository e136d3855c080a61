/**
 * One strategy request: POST <endpoint>/v1/models/:model/strategy with {"z": [...], "budget"?},
 * answer application/octet-stream, validated with decodeStrategy. Throws StrategyFetchError.
 *
 * Privacy: the body holds z and the budget, the URL the model id, nothing else. No cookies or
 * credentials (`credentials: 'omit'`), no Referer (`referrerPolicy: 'no-referrer'`), so the
 * server cannot link a z to the shop page or to a session.
 */
import { BitstreamError, decodeStrategy } from '../core/bitstream.ts';
import type { DecodedStrategy } from '../core/bitstream.ts';
import { StrategyFetchError } from './errors.ts';

/** Longest z accepted (the manifest caps userDim far lower; this only bounds a bad caller). */
export const MAX_Z_LENGTH = 4096;
/** Largest bitstream read (the format's own maximum is about 1 MiB). */
export const MAX_STRATEGY_BYTES = 2 * 1024 * 1024;

export interface StrategyRequest {
  readonly endpoint: string;
  readonly modelId: string;
  readonly frozenWeightsHash: string;
  readonly z: readonly number[];
  readonly budget?: number;
  readonly timeoutMs: number;
}

export function strategyUrl(endpoint: string, modelId: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/models/${encodeURIComponent(modelId)}/strategy`;
}

/** Throws STRATEGY_BAD_REQUEST for input that must never be sent. */
export function checkStrategyRequest(r: Pick<StrategyRequest, 'endpoint' | 'modelId' | 'z' | 'budget' | 'frozenWeightsHash'>): void {
  const bad = (m: string): never => {
    throw new StrategyFetchError('STRATEGY_BAD_REQUEST', m);
  };
  let url: URL;
  try {
    url = new URL(r.endpoint);
  } catch {
    return bad(`endpoint ${JSON.stringify(r.endpoint)} is not an absolute URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') bad(`endpoint protocol ${url.protocol}`);
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    // A query string could smuggle page data to the server next to z.
    bad('endpoint must not carry a query, fragment or credentials');
  }
  if (typeof r.modelId !== 'string' || !/^[a-z0-9._-]{1,64}$/.test(r.modelId)) bad(`modelId ${JSON.stringify(r.modelId)}`);
  if (typeof r.frozenWeightsHash !== 'string' || !/^[0-9a-fA-F]{64}$/.test(r.frozenWeightsHash)) {
    bad('frozenWeightsHash must be 64 hex digits');
  }
  if (!Array.isArray(r.z) || r.z.length === 0 || r.z.length > MAX_Z_LENGTH) bad(`z must have 1..${MAX_Z_LENGTH} values`);
  if (!r.z.every((v) => typeof v === 'number' && Number.isFinite(v))) bad('z has a non-finite value');
  if (r.budget !== undefined && !(typeof r.budget === 'number' && Number.isFinite(r.budget) && r.budget > 0)) {
    bad(`budget ${String(r.budget)} must be a positive number`);
  }
}

/** Reads at most `limit` bytes of a body; `signal` aborts the read. */
async function readBody(res: Response, limit: number): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > limit) throw new StrategyFetchError('STRATEGY_BAD_CONTENT', `body of ${declared} bytes exceeds ${limit}`);
  const buf = new Uint8Array(await res.arrayBuffer());
  if (buf.byteLength > limit) throw new StrategyFetchError('STRATEGY_BAD_CONTENT', `body of ${buf.byteLength} bytes exceeds ${limit}`);
  return buf;
}

export interface FetchedStrategy {
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly decoded: DecodedStrategy;
}

export async function fetchStrategyBitstream(request: StrategyRequest, fetchFn: typeof fetch): Promise<FetchedStrategy> {
  checkStrategyRequest(request);
  const url = strategyUrl(request.endpoint, request.modelId);
  const body = JSON.stringify(request.budget === undefined ? { z: request.z } : { z: request.z, budget: request.budget });
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, request.timeoutMs);
  try {
    let res: Response;
    try {
      res = await fetchFn(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/octet-stream' },
        body,
        signal: controller.signal,
        credentials: 'omit',
        referrerPolicy: 'no-referrer',
        cache: 'no-store',
        mode: 'cors',
        redirect: 'error',
      });
    } catch (e) {
      if (timedOut) throw new StrategyFetchError('STRATEGY_TIMEOUT', `no answer from ${url} within ${request.timeoutMs} ms`);
      throw new StrategyFetchError('STRATEGY_OFFLINE', `${url} unreachable: ${(e as Error).message}`, { cause: e });
    }
    if (res.status >= 500 || res.status === 429) {
      throw new StrategyFetchError('STRATEGY_SERVER_ERROR', `${url} answered HTTP ${res.status}`, { status: res.status });
    }
    if (!res.ok) throw new StrategyFetchError('STRATEGY_REJECTED', `${url} answered HTTP ${res.status}`, { status: res.status });
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/octet-stream') {
      // An HTML page with 200 is a captive portal, a CDN error page or a misrouted request.
      throw new StrategyFetchError('STRATEGY_BAD_CONTENT', `${url} answered ${type || 'no content type'}, not a bitstream`, {
        status: res.status,
      });
    }
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await readBody(res, MAX_STRATEGY_BYTES);
    } catch (e) {
      if (e instanceof StrategyFetchError) throw e;
      if (timedOut) throw new StrategyFetchError('STRATEGY_TIMEOUT', `body from ${url} not complete within ${request.timeoutMs} ms`);
      throw new StrategyFetchError('STRATEGY_OFFLINE', `reading ${url} failed: ${(e as Error).message}`, { cause: e });
    }
    return { bytes, decoded: validateStrategyBytes(bytes, request) };
  } finally {
    clearTimeout(timer);
  }
}

/** decodeStrategy against the expected model and frozen weights; STRATEGY_INVALID otherwise. */
export function validateStrategyBytes(
  bytes: Uint8Array,
  expect: { readonly modelId: string; readonly frozenWeightsHash: string },
): DecodedStrategy {
  try {
    return decodeStrategy(bytes, { modelId: expect.modelId, frozenWeightsHash: expect.frozenWeightsHash });
  } catch (e) {
    if (e instanceof BitstreamError) {
      throw new StrategyFetchError('STRATEGY_INVALID', `strategy bitstream rejected (${e.code}): ${e.message}`, { cause: e });
    }
    throw e;
  }
}
