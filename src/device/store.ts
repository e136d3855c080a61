/**
 * The page's weight store: IndexedDB (through `idb`) with integrity checks and an in-memory
 * fallback, so storage trouble costs a re-download, never a crash.
 *
 * What is stored, and what is not:
 * - Trained tensors (backbone.json/.bin, gru.json/.bin) keyed by [modelId, version, name]; the
 *   backbone without its item table (`item_emb`), which is kept in the `itemTables` store instead.
 * - The 8-bit item table (src/core/item-table.ts: int8 codes + one f16 scale per row, a quarter of
 *   float32), keyed the same way (name 'item_emb'), checked like the artifacts: a SHA-256 of its
 *   bytes, their length and its rows x dim. Schema version 3 adds the store. At 18k items x 64 it
 *   is 1.2 MB where the float32 table would be 4.7 MB. A model that ships the table in this layout
 *   (manifest version 2, item_emb.q8) stores the file's bytes as they are, in the same record: no
 *   schema change, and the record's hash is then the manifest's too.
 * - Adapted (quantized + packed) weights are NOT stored: the GPU adapts the frozen weights to a
 *   strategy in one submit, and only the strategy (405 B for the demo model) is cached, by the
 *   service worker. Schema version 1 had a store for them that the reranker never used; version 2
 *   deletes it. (Measured in Chromium on SwiftShader before it went, default SASRec: a hit would
 *   have cost about 0.4 of the adapt it replaces, and each new strategy would have paid a readback,
 *   a SHA-256 and an IndexedDB write; see git history, tests/browser/packed-cache-vs-adapt.spec.ts.)
 * - Frozen weights are NOT stored: they are regenerated from the manifest's seed. Measured for
 *   the default SASRec (98,304 weights, 384 KiB): ~2 ms to generate + ~1 ms to hash in Node,
 *   a few ms in Chromium (see tests/browser/sdk-store.spec.ts, which logs it) -- cheaper than
 *   an IndexedDB read and its SHA-256 check of the same bytes, and nothing to keep coherent.
 *
 * Integrity: every record carries the SHA-256 of its bytes, recomputed (WebCrypto) on load. A
 * record that is corrupt, truncated or stale (older record format, or not the hash/layout the
 * caller expects) is deleted and reported as `{ status: 'dropped', error }`; the caller re-fetches.
 * Quota: a write refused with QuotaExceededError returns
 * `{ stored: 'memory', error: StorageQuotaError }` and every later write of this session goes
 * to memory; IndexedDB missing or failing to open does the same from the start.
 */
import { openDB } from 'idb';
import type { DBSchema, IDBPDatabase } from 'idb';
import { sha256Hex } from '../core/hash.ts';
import { ITEM_TABLE_SCHEME, itemTableFromBytes } from '../core/item-table.ts';
import type { ItemTableQ8 } from '../core/item-table.ts';
import { parseTensorIndex } from '../core/tensor-file.ts';
import type { TensorIndex } from '../core/tensor-file.ts';
import { StorageQuotaError, StoreIntegrityError, StoreUnavailableError } from './errors.ts';
import type { IntegrityReason } from './errors.ts';
import type { ProgressCallback } from './progress.ts';

export const STORE_DB_NAME = 'chord-rerank';
/** IndexedDB schema version: bump it and add a step to `upgradeSchema` for every schema change. */
export const STORE_DB_VERSION = 3;
/** Layout of the records themselves: records of another format are stale and dropped on read. */
export const RECORD_FORMAT = 1;

export interface ArtifactKey {
  readonly modelId: string;
  /** Opaque release of the model's trained tensors, e.g. a training run id. */
  readonly version: string;
  /** Artifact name without extension: "backbone", "gru". */
  readonly name: string;
}

export interface ArtifactRecord {
  readonly format: number;
  readonly modelId: string;
  readonly version: string;
  readonly name: string;
  readonly index: TensorIndex;
  readonly bin: ArrayBuffer;
  readonly byteLength: number;
  /** SHA-256 of `bin` (the .bin file's hash, as a manifest would pin it). */
  readonly sha256: string;
  /** SHA-256 of the canonical JSON of `index`. */
  readonly indexSha256: string;
  readonly storedAt: number;
}

export interface ItemTableRecord {
  readonly format: number;
  readonly modelId: string;
  readonly version: string;
  readonly name: string;
  readonly scheme: typeof ITEM_TABLE_SCHEME;
  readonly rows: number;
  readonly dim: number;
  /** The table's bytes in core's layout (codes, then f16 scales). */
  readonly bin: ArrayBuffer;
  readonly byteLength: number;
  /** SHA-256 of `bin`. */
  readonly sha256: string;
  readonly storedAt: number;
}

type Key3 = [string, string, string];

export interface ChordStoreSchema extends DBSchema {
  artifacts: { key: Key3; value: ArtifactRecord; indexes: { byModel: string } };
  itemTables: { key: Key3; value: ItemTableRecord; indexes: { byModel: string } };
}

type StoreName = 'artifacts' | 'itemTables';
type AnyRecord = ArtifactRecord | ItemTableRecord;

/**
 * The one upgrade path. Each step takes the schema from version k-1 to k and runs only for
 * databases older than k, in order, so a database at any old version is walked up to the
 * current one (the fall-through of a `switch (oldVersion)`, written as `if (oldVersion < k)`
 * because the tsconfig forbids switch fall-through).
 */
export function upgradeSchema(db: IDBPDatabase<ChordStoreSchema>, oldVersion: number): void {
  if (oldVersion < 1) {
    const artifacts = db.createObjectStore('artifacts', { keyPath: ['modelId', 'version', 'name'] });
    artifacts.createIndex('byModel', 'modelId');
  }
  // Version 1 also had a 'packed' store (adapted weights), which nothing read: version 2 drops it.
  const untyped = db as unknown as IDBPDatabase;
  if (oldVersion < 2 && untyped.objectStoreNames.contains('packed')) untyped.deleteObjectStore('packed');
  if (oldVersion < 3) {
    const tables = db.createObjectStore('itemTables', { keyPath: ['modelId', 'version', 'name'] });
    tables.createIndex('byModel', 'modelId');
  }
  // if (oldVersion < 4) { ... } goes here.
}

export interface StoredArtifact {
  readonly index: TensorIndex;
  readonly bin: Uint8Array<ArrayBuffer>;
  readonly sha256: string;
}

export type LoadResult<T> =
  | { readonly status: 'hit'; readonly value: T; readonly from: StoreMode }
  | { readonly status: 'miss' }
  /** The entry failed its check and was deleted. */
  | { readonly status: 'dropped'; readonly error: StoreIntegrityError };

export type PutResult =
  | { readonly stored: 'indexeddb'; readonly pruned: number }
  | { readonly stored: 'memory'; readonly error: StorageQuotaError | StoreUnavailableError };

export type StoreMode = 'indexeddb' | 'memory';

export type StoreIssue = StoreIntegrityError | StorageQuotaError | StoreUnavailableError;

export interface WeightStoreOptions {
  readonly dbName?: string;
  /** Defaults to globalThis.indexedDB; absent -> memory only. */
  readonly indexedDB?: IDBFactory;
  /** Every dropped entry and every fallback to memory, for logging/telemetry. */
  readonly onIssue?: (issue: StoreIssue) => void;
  readonly now?: () => number;
}

export interface ArtifactLoadOptions {
  /** The .bin hash the caller expects (e.g. from a manifest); another hash means stale. */
  readonly expectSha256?: string;
  readonly onProgress?: ProgressCallback;
}

function key3(k: ArtifactKey): Key3 {
  return [k.modelId, k.version, k.name];
}

function recordKey(record: AnyRecord): Key3 {
  return [record.modelId, record.version, record.name];
}

function keyLabel(k: Key3): string {
  return `${k[0]}@${k[1]}/${k[2]}`;
}

function isQuotaError(e: unknown): boolean {
  const name = (e as { name?: unknown } | null)?.name;
  return name === 'QuotaExceededError' || (e as { code?: unknown } | null)?.code === 22;
}

/** Where records live; IndexedDB and a Map behind one small interface. */
interface RecordBackend {
  get(store: StoreName, key: Key3): Promise<unknown>;
  put(store: StoreName, record: AnyRecord): Promise<void>;
  delete(store: StoreName, key: Key3): Promise<void>;
}

class IdbBackend implements RecordBackend {
  constructor(readonly db: IDBPDatabase<ChordStoreSchema>) {}
  get(store: StoreName, key: Key3): Promise<unknown> {
    return this.db.get(store, key);
  }
  async put(store: StoreName, record: AnyRecord): Promise<void> {
    const tx = this.db.transaction(store, 'readwrite');
    // The put request can succeed and the commit still abort with QuotaExceededError: wait for both.
    await Promise.all([tx.store.put(record as ArtifactRecord & ItemTableRecord), tx.done]);
  }
  async delete(store: StoreName, key: Key3): Promise<void> {
    await this.db.delete(store, key);
  }
  /** All records of a model (for pruning after a write). */
  listModel(store: StoreName, modelId: string): Promise<unknown[]> {
    return this.db.getAllFromIndex(store, 'byModel', modelId);
  }
}

class MemoryBackend implements RecordBackend {
  private readonly maps = { artifacts: new Map<string, unknown>(), itemTables: new Map<string, unknown>() };
  async get(store: StoreName, key: Key3): Promise<unknown> {
    return this.maps[store].get(JSON.stringify(key));
  }
  async put(store: StoreName, record: AnyRecord): Promise<void> {
    this.maps[store].set(JSON.stringify(recordKey(record)), record);
  }
  async delete(store: StoreName, key: Key3): Promise<void> {
    this.maps[store].delete(JSON.stringify(key));
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

class Reject extends Error {
  constructor(readonly reason: IntegrityReason, message: string) {
    super(message);
  }
}

/** A record of another (numbered) format is stale; one without a format is not ours: corrupt. */
function checkFormat(r: unknown): asserts r is Record<string, unknown> {
  if (!isObject(r)) throw new Reject('corrupt', 'record is not an object');
  if (typeof r.format !== 'number') throw new Reject('corrupt', 'record has no format number');
  if (r.format !== RECORD_FORMAT) throw new Reject('stale', `record format ${r.format}, expected ${RECORD_FORMAT}`);
}

async function checkArtifact(r: unknown, key: Key3, expectSha256: string | undefined): Promise<StoredArtifact> {
  checkFormat(r);
  if (r.modelId !== key[0] || r.version !== key[1] || r.name !== key[2]) throw new Reject('corrupt', 'record key fields differ');
  if (!(r.bin instanceof ArrayBuffer) || typeof r.sha256 !== 'string' || typeof r.byteLength !== 'number') {
    throw new Reject('corrupt', 'record fields missing or of the wrong type');
  }
  if (r.bin.byteLength !== r.byteLength) {
    throw new Reject('truncated', `${r.bin.byteLength} bytes stored, record says ${r.byteLength}`);
  }
  let index: TensorIndex;
  try {
    index = parseTensorIndex(r.index);
  } catch (e) {
    throw new Reject('corrupt', `tensor index invalid: ${(e as Error).message}`);
  }
  if (index.byteLength !== r.byteLength) {
    throw new Reject('truncated', `index describes ${index.byteLength} bytes, record has ${r.byteLength}`);
  }
  const bin = new Uint8Array(r.bin);
  const [sha, indexSha] = await Promise.all([sha256Hex(bin), sha256Hex(new TextEncoder().encode(JSON.stringify(index)))]);
  if (sha !== r.sha256) throw new Reject('corrupt', `bytes hash to ${sha}, record says ${String(r.sha256)}`);
  if (indexSha !== r.indexSha256) throw new Reject('corrupt', 'tensor index does not match its hash');
  if (expectSha256 !== undefined && sha !== expectSha256.toLowerCase()) {
    throw new Reject('stale', `stored ${sha}, expected ${expectSha256}`);
  }
  return { index, bin, sha256: sha };
}

/** What the caller expects of a stored item table: another shape (or hash, when given) means stale. */
export interface ItemTableExpectation {
  readonly rows: number;
  readonly dim: number;
  /** The SHA-256 of the table's bytes a version-2 manifest pins (the file is stored as it came). */
  readonly sha256?: string;
}

export interface StoredItemTable {
  readonly table: ItemTableQ8;
  readonly sha256: string;
}

async function checkItemTable(r: unknown, key: Key3, expect: ItemTableExpectation | undefined): Promise<StoredItemTable> {
  checkFormat(r);
  if (r.modelId !== key[0] || r.version !== key[1] || r.name !== key[2]) throw new Reject('corrupt', 'record key fields differ');
  if (
    !(r.bin instanceof ArrayBuffer) ||
    typeof r.sha256 !== 'string' ||
    typeof r.byteLength !== 'number' ||
    typeof r.rows !== 'number' ||
    typeof r.dim !== 'number'
  ) {
    throw new Reject('corrupt', 'record fields missing or of the wrong type');
  }
  if (r.scheme !== ITEM_TABLE_SCHEME) throw new Reject('stale', `item table scheme ${String(r.scheme)}, expected ${ITEM_TABLE_SCHEME}`);
  if (r.bin.byteLength !== r.byteLength) {
    throw new Reject('truncated', `${r.bin.byteLength} bytes stored, record says ${r.byteLength}`);
  }
  const bin = new Uint8Array(r.bin);
  const sha = await sha256Hex(bin);
  if (sha !== r.sha256) throw new Reject('corrupt', `bytes hash to ${sha}, record says ${String(r.sha256)}`);
  let table: ItemTableQ8;
  try {
    table = itemTableFromBytes(bin, r.rows, r.dim);
  } catch (e) {
    // Bytes that hash right but do not fit the shape the record states: the record lies about its layout.
    throw new Reject('truncated', `item table bytes do not fit ${r.rows} x ${r.dim}: ${(e as Error).message}`);
  }
  if (expect && (table.rows !== expect.rows || table.dim !== expect.dim)) {
    throw new Reject('stale', `item table of ${table.rows} x ${table.dim}, expected ${expect.rows} x ${expect.dim}`);
  }
  if (expect?.sha256 !== undefined && sha !== expect.sha256) {
    throw new Reject('stale', `item table hashes to ${sha}, the manifest pins ${expect.sha256}`);
  }
  return { table, sha256: sha };
}

export class WeightStore {
  private idb: IdbBackend | null;
  private readonly memory = new MemoryBackend();
  /** True once a write failed: the rest of the session writes to memory. */
  private writeToMemory: boolean;
  private readonly onIssue: ((issue: StoreIssue) => void) | undefined;
  private readonly now: () => number;

  private constructor(idb: IdbBackend | null, options: WeightStoreOptions) {
    this.idb = idb;
    this.writeToMemory = idb === null;
    this.onIssue = options.onIssue;
    this.now = options.now ?? Date.now;
  }

  /** Opens (creating or upgrading) the database. Never throws: without IndexedDB it runs from memory. */
  static async open(options: WeightStoreOptions = {}): Promise<WeightStore> {
    const factory = options.indexedDB ?? globalThis.indexedDB;
    if (!factory) {
      const store = new WeightStore(null, options);
      store.report(new StoreUnavailableError('IndexedDB is not available; weights are kept in memory'));
      return store;
    }
    let store: WeightStore | undefined;
    try {
      const db = await openDB<ChordStoreSchema>(options.dbName ?? STORE_DB_NAME, STORE_DB_VERSION, {
        upgrade: (database, oldVersion) => upgradeSchema(database, oldVersion),
        // A newer SDK in another tab needs to upgrade: step aside rather than block it.
        blocking: () => store?.detach('a newer version of the store was opened in another tab'),
        terminated: () => store?.detach('the browser closed the database connection'),
      });
      store = new WeightStore(new IdbBackend(db), options);
      return store;
    } catch (e) {
      const fallback = new WeightStore(null, options);
      fallback.report(new StoreUnavailableError(`IndexedDB could not be opened: ${(e as Error).message}`, { cause: e }));
      return fallback;
    }
  }

  get mode(): StoreMode {
    return this.writeToMemory ? 'memory' : 'indexeddb';
  }

  close(): void {
    this.idb?.db.close();
    this.idb = null;
    this.writeToMemory = true;
  }

  private detach(why: string): void {
    this.close();
    this.report(new StoreUnavailableError(`${why}; weights are kept in memory for this session`));
  }

  private report(issue: StoreIssue): void {
    this.onIssue?.(issue);
  }

  /** Reads a record from memory (this session's writes) or IndexedDB. */
  private async read(store: StoreName, key: Key3): Promise<{ record: unknown; backend: RecordBackend } | null> {
    const mem = await this.memory.get(store, key);
    if (mem !== undefined) return { record: mem, backend: this.memory };
    if (!this.idb) return null;
    try {
      const record = await this.idb.get(store, key);
      return record === undefined ? null : { record, backend: this.idb };
    } catch (e) {
      this.report(new StoreUnavailableError(`reading ${keyLabel(key)} failed: ${(e as Error).message}`, { cause: e }));
      return null;
    }
  }

  private async drop(store: StoreName, key: Key3, backend: RecordBackend, reject: Reject): Promise<LoadResult<never>> {
    const error = new StoreIntegrityError(reject.reason, keyLabel(key), reject.message);
    try {
      await backend.delete(store, key);
    } catch {
      // Deleting is best effort: the entry fails its check again next time and is retried.
    }
    this.report(error);
    return { status: 'dropped', error };
  }

  private async write(store: StoreName, record: AnyRecord, bytes: number): Promise<PutResult> {
    const key = recordKey(record);
    if (!this.writeToMemory && this.idb) {
      try {
        await this.idb.put(store, record);
        await this.memory.delete(store, key);
        return { stored: 'indexeddb', pruned: await this.prune(store, record) };
      } catch (e) {
        const error = isQuotaError(e)
          ? new StorageQuotaError(keyLabel(key), bytes, { cause: e })
          : new StoreUnavailableError(`writing ${keyLabel(key)} failed: ${(e as Error).message}`, { cause: e });
        this.writeToMemory = true;
        this.report(error);
        await this.memory.put(store, record);
        return { stored: 'memory', error };
      }
    }
    await this.memory.put(store, record);
    return {
      stored: 'memory',
      error: new StoreUnavailableError(`IndexedDB unavailable this session; ${keyLabel(key)} kept in memory`),
    };
  }

  /** After a successful IndexedDB write: drops the other versions of the same artifact. */
  private async prune(store: StoreName, record: AnyRecord): Promise<number> {
    if (!this.idb) return 0;
    const all = (await this.idb.listModel(store, record.modelId)) as AnyRecord[];
    const doomed = all.filter((r) => r.version !== record.version && r.name === record.name).map(recordKey);
    for (const k of doomed) await this.idb.delete(store, k);
    return doomed.length;
  }

  async getArtifact(key: ArtifactKey, options: ArtifactLoadOptions = {}): Promise<LoadResult<StoredArtifact>> {
    const k = key3(key);
    const label = keyLabel(k);
    const found = await this.read('artifacts', k);
    if (!found) return { status: 'miss' };
    const size = isObject(found.record) && typeof found.record.byteLength === 'number' ? found.record.byteLength : 0;
    options.onProgress?.({ stage: 'store-read', item: label, loaded: size, total: size });
    try {
      const value = await checkArtifact(found.record, k, options.expectSha256);
      options.onProgress?.({ stage: 'verify', item: label, loaded: size, total: size });
      return { status: 'hit', value, from: found.backend === this.memory ? 'memory' : 'indexeddb' };
    } catch (e) {
      if (e instanceof Reject) return this.drop('artifacts', k, found.backend, e);
      throw e;
    }
  }

  /** The 8-bit item table stored under `key`, checked (hash, length, layout, expected shape). */
  async getItemTable(key: ArtifactKey, expect?: ItemTableExpectation): Promise<LoadResult<StoredItemTable>> {
    const k = key3(key);
    const found = await this.read('itemTables', k);
    if (!found) return { status: 'miss' };
    try {
      const value = await checkItemTable(found.record, k, expect);
      return { status: 'hit', value, from: found.backend === this.memory ? 'memory' : 'indexeddb' };
    } catch (e) {
      if (e instanceof Reject) return this.drop('itemTables', k, found.backend, e);
      throw e;
    }
  }

  async putItemTable(key: ArtifactKey, table: ItemTableQ8): Promise<PutResult> {
    const bin = table.bytes.slice().buffer; // own copy: the table stays the caller's
    const record: ItemTableRecord = {
      format: RECORD_FORMAT,
      modelId: key.modelId,
      version: key.version,
      name: key.name,
      scheme: ITEM_TABLE_SCHEME,
      rows: table.rows,
      dim: table.dim,
      bin,
      byteLength: bin.byteLength,
      sha256: await sha256Hex(new Uint8Array(bin)),
      storedAt: this.now(),
    };
    return this.write('itemTables', record, bin.byteLength);
  }

  async putArtifact(
    key: ArtifactKey,
    artifact: { index: TensorIndex; bin: Uint8Array },
    options: { onProgress?: ProgressCallback } = {},
  ): Promise<PutResult> {
    const index = parseTensorIndex(artifact.index);
    const bin = artifact.bin.slice().buffer; // own copy: the caller may reuse its buffer
    const [sha256, indexSha256] = await Promise.all([
      sha256Hex(new Uint8Array(bin)),
      sha256Hex(new TextEncoder().encode(JSON.stringify(index))),
    ]);
    const record: ArtifactRecord = {
      format: RECORD_FORMAT,
      modelId: key.modelId,
      version: key.version,
      name: key.name,
      index,
      bin,
      byteLength: bin.byteLength,
      sha256,
      indexSha256,
      storedAt: this.now(),
    };
    const item = keyLabel(key3(key));
    options.onProgress?.({ stage: 'store-write', item, loaded: 0, total: bin.byteLength });
    const result = await this.write('artifacts', record, bin.byteLength);
    options.onProgress?.({ stage: 'store-write', item, loaded: bin.byteLength, total: bin.byteLength });
    return result;
  }
}
