// Public surface of chord-rerank's strategy server (`chord-rerank/server`, Node only): the Fastify
// server a shop runs beside its catalogue, the model loader and the page-file export.
export { createServer, DEFAULT_WORKERS } from './server.ts';
export type { ChordServer, ServerOptions } from './server.ts';
export { DEFAULT_CONNECTION_LIMITS } from './connections.ts';
export type { ConnectionCounts, ConnectionGuard, ConnectionLimits } from './connections.ts';
export { loadServedModel, loadServedModels, SERVED_FILES } from './artifacts.ts';
export type { ServedModel, ServedFileName } from './artifacts.ts';
export { exportPage } from './export-page.ts';
export type { ExportItemTable, ExportPageOptions } from './export-page.ts';
export { ApiError, ModelLoadError } from './errors.ts';
export type { ApiErrorCode, ErrorBody } from './errors.ts';
export { DEFAULT_STRATEGY_OPTIONS } from './strategy-service.ts';
export type { StrategyServiceOptions } from './strategy-service.ts';
