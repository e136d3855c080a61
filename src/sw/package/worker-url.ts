/**
 * URL of the strategy service worker in the built package: dist/strategy-sw.js, the same file
 * `chord-rerank/strategy-sw.js` exports, beside this module. tools/build-package.ts puts this file
 * in place of url.ts (which needs Vite's `?worker&url`). It sits in a folder of its own so that the
 * package's own Vite build finds no ./strategy-sw.js (or .ts) beside it and leaves the URL alone.
 * Bundlers that understand a URL made of a literal path and import.meta.url (Vite, webpack 5,
 * Parcel) copy the worker into the app's build; without a bundler the browser finds it beside the
 * package's modules; elsewhere pass `serviceWorker: '<url where the file is served>'`.
 */
const strategySwUrl: string = new URL('./strategy-sw.js', import.meta.url).href;
export default strategySwUrl;
