/**
 * Every error chord-rerank throws on purpose is a ChordError subclass listed here, with the codes
 * it may carry. Callers branch on `code` (stable, machine-readable, unique to one class) or on the
 * class; `message` is for humans. Each class sets a fixed `name` (its own class name as a string
 * literal, so a minifier that renames classes leaves it intact); the compiler makes every direct
 * subclass declare one, and tests/unit/error-registry.test.ts checks that the names, the classes
 * and this table agree and that no code appears twice.
 *
 * A wrong argument that only a programming mistake produces (a negative size, a call on the wrong
 * type) is a TypeError or RangeError, not a ChordError.
 */
export const ERROR_CODES = {
  // ---- core ----
  AllocationInputError: ['ALLOCATION_INPUT'],
  NonFiniteScoreError: ['ALLOCATION_NON_FINITE_SCORE'],
  BackboneDimsError: ['BACKBONE_DIMS_INVALID'],
  BitstreamError: [
    'BITSTREAM_BAD_MAGIC',
    'BITSTREAM_UNSUPPORTED_VERSION',
    'BITSTREAM_BAD_FLAGS',
    'BITSTREAM_TRUNCATED',
    'BITSTREAM_BAD_CHECKSUM',
    'BITSTREAM_TRAILING_BYTES',
    'BITSTREAM_BAD_COUNT',
    'BITSTREAM_BAD_LEVEL_TABLE',
    'BITSTREAM_BAD_MODEL_ID',
    'BITSTREAM_BAD_HASH',
    'BITSTREAM_MODEL_MISMATCH',
    'BITSTREAM_HASH_MISMATCH',
    'BITSTREAM_LAYER_MISMATCH',
    'BITSTREAM_BAD_PADDING',
    'BITSTREAM_BAD_BETA',
    // decodeStrategy was given something other than a Uint8Array (null, a string, an ArrayBuffer).
    'BITSTREAM_NOT_BYTES',
  ],
  BudgetInputError: ['BUDGET_INPUT'],
  CryptoUnavailableError: ['CRYPTO_UNAVAILABLE'],
  DriftError: ['DRIFT_BAD_INPUT'],
  ForwardError: [
    // A trained tensor or a layer's weights are absent.
    'FORWARD_MISSING_TENSOR',
    // A tensor or weight array does not have the shape the backbone's dims imply.
    'FORWARD_BAD_SHAPE',
    // An item id in a history or a candidate list is not an integer in range.
    'FORWARD_BAD_ITEM',
    // A candidate embedding has the wrong length or a non-finite value.
    'FORWARD_BAD_CANDIDATE',
    // An option (k, activation bits, user embedding, epsilon) is invalid.
    'FORWARD_BAD_OPTION',
    // An activation is NaN or infinite where it must be quantized.
    'FORWARD_NON_FINITE',
  ],
  GruError: ['GRU_BAD_TENSOR', 'GRU_BAD_INPUT', 'GRU_BAD_ITEM'],
  HypernetError: ['HYPERNET_INVALID'],
  ManifestError: [
    'MANIFEST_INVALID',
    // A manifest of a later version than this code reads (its fields may mean something else).
    'MANIFEST_VERSION_UNSUPPORTED',
  ],
  FrozenHashMismatchError: ['FROZEN_HASH_MISMATCH'],
  ItemTableFileError: [
    // A truncated item_emb.q8, or another model's.
    'ITEM_TABLE_LENGTH_MISMATCH',
    'ITEM_TABLE_HASH_MISMATCH',
  ],
  FrozenSourceError: ['FROZEN_SOURCE_MISMATCH'],
  MetricsInputError: ['METRICS_INPUT'],
  PackingError: ['PACK_BAD_CHANNEL', 'PACK_CORRUPT'],
  PairedInputError: ['PAIRED_INPUT'],
  QuantizeError: [
    'QUANT_BAD_BITS',
    'QUANT_BAD_SHAPE',
    'QUANT_LENGTH_MISMATCH',
    'QUANT_NON_FINITE',
    'QUANT_BAD_RANGE',
    'QUANT_RANGE_OVERFLOW',
    'QUANT_BAD_CODE',
  ],
  ShippedWeightsError: ['SHIPPED_WEIGHTS_INVALID'],
  StrategySpreadInputError: ['STRATEGY_SPREAD_INPUT'],
  TensorFileError: ['TENSOR_FILE_INVALID'],

  // ---- data ----
  DatasetError: [
    'DATASET_MISSING_COLUMN',
    'DATASET_FIELD_COUNT',
    'DATASET_BAD_NUMBER',
    'DATASET_BAD_HEADER',
    'DATASET_EMPTY_FIELD',
    'DATASET_EMPTY',
    'DATASET_UNKNOWN_FORMAT',
    'DATASET_NOT_FOUND',
    'DATASET_TOO_SHORT',
    'DATASET_RESERVED_ID',
    'DATASET_BAD_OPTION',
  ],

  // ---- model (training) ----
  BackendInitError: ['BACKEND_INIT'],
  CheckpointError: ['CHECKPOINT_INVALID'],
  ChordTrainError: ['CHORD_BAD_OPTION', 'CHORD_BAD_DATA', 'CHORD_BAD_ARTIFACT', 'CHORD_WORKER_FAILED', 'CHORD_BAD_RUN_RECORD', 'CHORD_RUN_BUSY'],
  LayerWeightsError: ['MODEL_BAD_WEIGHTS'],

  // ---- gpu ----
  WebGpuUnavailableError: ['WEBGPU_UNAVAILABLE'],
  GpuDeviceLostError: ['GPU_DEVICE_LOST'],
  GpuCommandError: ['GPU_COMMAND_FAILED'],
  GpuEngineError: [
    // Used after destroy(), rerank before the first applyStrategy, or an engine plan used out of order.
    'GPU_ENGINE_STATE',
    // More candidates than the engine was sized for, or tensors over the device's buffer limit.
    'GPU_ENGINE_LIMIT',
  ],
  MatmulArgumentError: ['GPU_MATMUL_ARGUMENTS'],
  KernelPlanError: ['GPU_KERNEL_PLAN'],
  LayerLayoutError: ['GPU_LAYER_LAYOUT'],
  StrategyMismatchError: ['GPU_STRATEGY_MISMATCH'],
  WeightsStateError: ['GPU_WEIGHTS_STATE'],

  // ---- sw (strategy fetch, in the service worker or the page) ----
  StrategyFetchError: [
    // The request did not reach the server (offline, DNS, CORS, connection refused).
    'STRATEGY_OFFLINE',
    // No complete answer within the timeout.
    'STRATEGY_TIMEOUT',
    // HTTP 5xx or 429.
    'STRATEGY_SERVER_ERROR',
    // HTTP 4xx other than 429: the request itself is wrong (unknown model, bad z).
    'STRATEGY_REJECTED',
    // 2xx but not a bitstream (e.g. an HTML captive-portal or error page).
    'STRATEGY_BAD_CONTENT',
    // A bitstream that fails decodeStrategy (corrupt, or for another model / frozen weights).
    'STRATEGY_INVALID',
    // The network was not tried: still backing off after earlier failures.
    'STRATEGY_BACKOFF',
    // The request content itself is malformed (z not finite, bad budget, ...).
    'STRATEGY_BAD_REQUEST',
    // The service worker did not answer in time (page side).
    'STRATEGY_SW_TIMEOUT',
    // The service worker failed in a way it did not expect (its message says how).
    'STRATEGY_SW_INTERNAL',
  ],

  // ---- device (the in-page SDK) ----
  StoreIntegrityError: [
    // Bytes do not hash to the stored SHA-256, or the record does not have the expected structure.
    'STORE_CORRUPT',
    // Fewer (or more) bytes than the record says.
    'STORE_TRUNCATED',
    // Written by another record format, or not the artifact/layout the caller now expects.
    'STORE_STALE',
  ],
  StorageQuotaError: ['STORE_QUOTA'],
  StoreUnavailableError: ['STORE_UNAVAILABLE'],
  ArtifactError: ['ARTIFACT_HTTP', 'ARTIFACT_INVALID', 'ARTIFACT_HASH_MISMATCH'],
  RerankerDisposedError: ['RERANKER_DISPOSED'],
  UnknownItemError: ['RERANK_UNKNOWN_ITEM'],
  RerankInputError: ['RERANK_BAD_INPUT'],

  // ---- cli (src/cli/run-cli.ts: bad command-line usage, exit status 2) ----
  UsageError: ['USAGE'],
  // ---- cloud (the strategy server; ApiError's codes go into the HTTP error body) ----
  ApiError: [
    'BAD_Z_LENGTH',
    'NON_FINITE_Z',
    'Z_OUT_OF_RANGE',
    'BAD_BUDGET',
    'UNKNOWN_MODEL',
    'NOT_FOUND',
    'EMPTY_BODY',
    'BODY_TOO_LARGE',
    'BAD_JSON',
    'UNSUPPORTED_MEDIA_TYPE',
    'INVALID_REQUEST',
    // Bad percent-encoding in the URL (400).
    'BAD_URL',
    // A path parameter over the router's limit (414).
    'PARAM_TOO_LONG',
    // Node's HTTP parser refused the request head or framing (400).
    'MALFORMED_REQUEST',
    // Request line and headers over Node's limit (431).
    'HEADERS_TOO_LARGE',
    // The head or the whole request did not arrive within its timeout (408).
    'REQUEST_TIMEOUT',
    // An Expect header other than 100-continue (417).
    'EXPECTATION_FAILED',
    // CONNECT (405).
    'METHOD_NOT_ALLOWED',
    // More open connections from one address than the per-address cap (429).
    'TOO_MANY_CONNECTIONS',
    // More open connections than the global cap (503).
    'SERVER_BUSY',
    'UNAUTHORIZED',
    'RATE_LIMITED',
    'UNPROCESSABLE_Z',
    'SHUTTING_DOWN',
    'COMPUTE_UNAVAILABLE',
    'INTERNAL',
  ],
  ModelLoadError: ['MODEL_LOAD_FAILED'],
} as const;

/** The name of every error class (each class's `name`). */
export type ErrorName = keyof typeof ERROR_CODES;
/** The codes of the named error classes (all codes when no name is given). */
export type ErrorCodeOf<N extends ErrorName> = (typeof ERROR_CODES)[N][number];
/** Every code any chord-rerank error carries. */
export type ErrorCode = ErrorCodeOf<ErrorName>;

/**
 * Base class for every error chord-rerank throws on purpose. `N` is the class's name (or, for a
 * class with subclasses, the names of the family), which fixes the codes it may carry.
 */
export abstract class ChordError<N extends ErrorName = ErrorName> extends Error {
  abstract override readonly name: N;
  readonly code: ErrorCodeOf<N>;
  constructor(code: ErrorCodeOf<N>, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
