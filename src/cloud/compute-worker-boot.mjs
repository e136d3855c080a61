// Entry of a compute worker thread. Worker threads do not inherit the main thread's TypeScript
// loader (`node --import tsx`, or vitest's), so the worker registers tsx itself before loading
// the TypeScript worker; a plain .mjs file is the one thing Node loads without it.
import { register } from 'tsx/esm/api';

register();
await import('./compute-worker.ts');
