/**
 * Version of the strategy service worker. Bump it whenever the SW's behaviour or its cache
 * layout changes: cache names carry it, and the new worker deletes the old caches on activate.
 */
export const SW_VERSION = '1';

/** Prefix of every Cache Storage cache this SW owns (and may therefore delete). */
export const CACHE_PREFIX = 'chord-strategy-';

export function strategyCacheName(version: string = SW_VERSION): string {
  return `${CACHE_PREFIX}v${version}`;
}
