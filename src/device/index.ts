// Public surface of chord-rerank's in-page SDK: createReranker() and what its API mentions.
export { createReranker, Reranker } from './reranker.ts';
export { DEFAULT_MAX_CANDIDATES } from '../gpu/engine.ts';
export type {
  BudgetSetting,
  Candidate,
  CreateRerankerOptions,
  DevicePreference,
  DriftEvent,
  FallbackEvent,
  LoadProgress,
  LoadStage,
  ObserveResult,
  MemoryReport,
  RankedItem,
  RecommendOptions,
  RerankerErrorEvent,
  RerankerEvents,
  RerankerHandlers,
  RerankOptions,
  StrategyChangeReason,
  StrategyEvent,
  UnknownItemPolicy,
} from './reranker.ts';
export type { StrategyInfo, StrategySource } from './strategy-state.ts';
export type { BackendGpuMemory, BackendKind } from './backend.ts';
export type { StrategyTransport } from './strategy-client.ts';
export { budgetFromResources, readResourceSignals } from './resources.ts';
export type { AdapterSignal, BatterySignal, BudgetChoice, ResourceSignals } from './resources.ts';
export { RerankerDisposedError, RerankInputError, UnknownItemError } from './reranker-errors.ts';
export { ArtifactError, StorageQuotaError, StoreIntegrityError, StoreUnavailableError } from './errors.ts';
export { StrategyFetchError } from '../sw/errors.ts';
export type { StrategyFetchErrorCode } from '../sw/errors.ts';
export { GpuDeviceLostError, WebGpuUnavailableError } from '../gpu/errors.ts';
export { ChordError, ERROR_CODES } from '../core/errors.ts';
export type { ErrorCode, ErrorCodeOf, ErrorName } from '../core/errors.ts';
export { FrozenHashMismatchError, ManifestError } from '../core/manifest.ts';
