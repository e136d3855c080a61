/**
 * URL of the strategy service worker script, built by Vite as a worker entry:
 * - dev server: `/src/sw/strategy-sw.ts?worker_file&type=module`, transformed on request;
 * - `vite build`: a self-contained bundle `assets/strategy-sw-<hash>.js` (imports inlined), so
 *   it loads as a module worker or a classic one alike. A new build gets a new hashed URL;
 *   registering it updates the registration, and the new worker waits for `activateUpdate`.
 * The worker handles messages only (no fetch events), so the /assets/ scope that its URL
 * implies is no restriction.
 *
 * Only for Vite-built pages; other bundlers pass their own `serviceWorkerUrl` to the client.
 */
import strategySwUrl from './strategy-sw.ts?worker&url';

// A default export: the package build swaps this module for package/worker-url.ts, which exports the
// same thing (the worker's URL) under the same (default) name.
export default strategySwUrl;
