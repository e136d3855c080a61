/**
 * The last good strategy per model version, in Cache Storage (or memory where there is none).
 *
 * Key: `<base>/__chord/strategy/<modelId>/<modelVersion>/<revision>`, revision = first 16 hex
 * digits of the bitstream's SHA-256, so a new strategy never overwrites a response another
 * context is reading; older revisions of the same model version are deleted after a put.
 * The cache's name carries the SW version (see version.ts).
 */
import { sha256Hex } from '../core/hash.ts';

export interface StrategyCacheEntry {
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly revision: string;
  readonly fetchedAt: number;
}

export interface StrategyCache {
  get(modelId: string, modelVersion: string): Promise<StrategyCacheEntry | null>;
  put(modelId: string, modelVersion: string, entry: StrategyCacheEntry): Promise<void>;
  delete(modelId: string, modelVersion: string): Promise<void>;
}

export async function strategyRevision(bytes: Uint8Array): Promise<string> {
  return (await sha256Hex(bytes)).slice(0, 16);
}

const FETCHED_AT = 'x-chord-fetched-at';
const REVISION = 'x-chord-revision';

function slotPrefix(base: string, modelId: string, modelVersion: string): string {
  const root = new URL('/__chord/strategy/', base).href;
  return `${root}${encodeURIComponent(modelId)}/${encodeURIComponent(modelVersion)}/`;
}

export class CacheStorageStrategyCache implements StrategyCache {
  /**
   * @param storage `caches` of the worker or the page (both see the same origin's caches).
   * @param base any URL of the origin; keys are built under it.
   */
  constructor(
    private readonly storage: CacheStorage,
    private readonly cacheName: string,
    private readonly base: string,
  ) {}

  private async slotKeys(cache: Cache, modelId: string, modelVersion: string): Promise<Request[]> {
    const prefix = slotPrefix(this.base, modelId, modelVersion);
    return (await cache.keys()).filter((r) => r.url.startsWith(prefix));
  }

  async get(modelId: string, modelVersion: string): Promise<StrategyCacheEntry | null> {
    const cache = await this.storage.open(this.cacheName);
    let best: StrategyCacheEntry | null = null;
    for (const req of await this.slotKeys(cache, modelId, modelVersion)) {
      const res = await cache.match(req);
      if (!res) continue;
      const fetchedAt = Number(res.headers.get(FETCHED_AT));
      const revision = res.headers.get(REVISION) ?? '';
      if (best && best.fetchedAt >= fetchedAt) continue;
      best = { bytes: new Uint8Array(await res.arrayBuffer()), revision, fetchedAt };
    }
    return best;
  }

  async put(modelId: string, modelVersion: string, entry: StrategyCacheEntry): Promise<void> {
    const cache = await this.storage.open(this.cacheName);
    const url = `${slotPrefix(this.base, modelId, modelVersion)}${entry.revision}`;
    await cache.put(
      url,
      new Response(entry.bytes, {
        headers: {
          'content-type': 'application/octet-stream',
          [FETCHED_AT]: String(entry.fetchedAt),
          [REVISION]: entry.revision,
        },
      }),
    );
    for (const req of await this.slotKeys(cache, modelId, modelVersion)) {
      if (req.url !== url) await cache.delete(req);
    }
  }

  async delete(modelId: string, modelVersion: string): Promise<void> {
    const cache = await this.storage.open(this.cacheName);
    for (const req of await this.slotKeys(cache, modelId, modelVersion)) await cache.delete(req);
  }
}

export class MemoryStrategyCache implements StrategyCache {
  private readonly entries = new Map<string, StrategyCacheEntry>();
  async get(modelId: string, modelVersion: string): Promise<StrategyCacheEntry | null> {
    return this.entries.get(`${modelId}\u0000${modelVersion}`) ?? null;
  }
  async put(modelId: string, modelVersion: string, entry: StrategyCacheEntry): Promise<void> {
    this.entries.set(`${modelId}\u0000${modelVersion}`, entry);
  }
  async delete(modelId: string, modelVersion: string): Promise<void> {
    this.entries.delete(`${modelId}\u0000${modelVersion}`);
  }
}

/** Deletes this SW's caches of other versions (on activate); returns their names. */
export async function deleteOldStrategyCaches(storage: CacheStorage, prefix: string, current: string): Promise<string[]> {
  const doomed = (await storage.keys()).filter((name) => name.startsWith(prefix) && name !== current);
  await Promise.all(doomed.map((name) => storage.delete(name)));
  return doomed;
}
