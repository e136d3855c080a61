/**
 * URL of the strategy service worker in the built package: dist/strategy-sw.js, the same file
 * `chord-rerank/strategy-sw.js` exports, beside this module. tools/build-package.ts puts this file
 * in place of url.ts (which needs Vite's `?worker&url`). It sits in its own folder so that the
 * package's own Vite build finds no ./strategy-sw.js (or .ts) beside it and leaves the URL alone. Bundlers that understand
 * `new URL('…', import.meta.url)` (Vite, webpack 5, Parcel) copy the worker into the app's build;
 * elsewhere the file must be served next to the page bundle, or passed as `serviceWorker: '<url>'`.
 */
export const strategySwUrl: string = new URL('./strategy-sw.js', import.meta.url).href;
