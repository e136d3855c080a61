/**
 * A pool of worker threads that run strategy batches (StrategyCompute) off the main thread, so
 * the main thread keeps parsing requests, checking the cache and answering while a batch is
 * computed: on two cores, HTTP on one and the hypernet on the other.
 *
 * Each worker holds every model (built from ComputeSpecs at start) and runs one batch at a time;
 * batches wait in a FIFO queue for the next idle worker. A worker that dies (an uncaught error,
 * running out of memory, being killed) fails only the batch it was running, with a 503
 * `COMPUTE_UNAVAILABLE` ApiError for each of its requests — the client may retry — and is
 * replaced at once; a replacement that dies while starting is retried with backoff, and while
 * no worker is alive the queued batches fail with the same 503 instead of waiting forever.
 * close() lets the queued and running batches finish, then stops the threads.
 */
import { Worker } from 'node:worker_threads';
import { ApiError } from './errors.ts';
import type { ApiErrorCode } from './errors.ts';
import type { ComputeResult, ComputeSpec } from './strategy-compute.ts';

/** Main -> worker: one batch. Buffers of zs and budgets are transferred. */
export interface BatchRequest {
  readonly id: number;
  readonly modelId: string;
  readonly zs: Float32Array<ArrayBuffer>;
  /** Per item; NaN = no budget. */
  readonly budgets: Float64Array<ArrayBuffer>;
  readonly count: number;
  /** Fault injection (tests): the worker throws instead of answering. */
  readonly crash?: boolean;
}

export interface ItemError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** Worker -> main: the answers of one batch, bytes concatenated in item order (length -1 = error). */
export type BatchReply =
  | {
      readonly id: number;
      readonly ok: true;
      readonly bytes: Uint8Array<ArrayBuffer>;
      readonly lengths: Int32Array;
      readonly etags: string[];
      readonly averageBits: Float64Array;
      readonly errors: (ItemError | null)[];
    }
  | { readonly id: number; readonly ok: false; readonly message: string };

interface Job {
  readonly request: BatchRequest;
  resolve(results: ComputeResult[]): void;
  reject(error: Error): void;
}

interface Slot {
  readonly worker: Worker;
  ready: boolean;
  dead: boolean;
  job: Job | undefined;
}

/**
 * The worker's entry. From source (tsx, vitest) the worker is TypeScript, which a worker thread
 * cannot load by itself, so a plain .mjs boot file registers tsx first; the package's build
 * (tools/build-package.ts) emits compute-worker.js beside this module's bundle.
 */
const BOOT = import.meta.url.endsWith('.ts') ? new URL('./compute-worker-boot.mjs', import.meta.url) : new URL('./compute-worker.js', import.meta.url);

const unavailable = (message: string) => new ApiError(503, 'COMPUTE_UNAVAILABLE', message);

export class ComputePool {
  readonly size: number;
  private readonly specs: readonly ComputeSpec[];
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  /** Batches handed to the pool so far. */
  batches = 0;
  private closing = false;
  private closed = false;
  private crashNext = false;
  private startFailures = 0;
  private drained: (() => void) | undefined;
  private closePromise: Promise<void> | undefined;

  private readonly onWorkerError: (error: Error) => void;

  private constructor(specs: readonly ComputeSpec[], size: number, onWorkerError: (error: Error) => void) {
    this.specs = specs;
    this.size = size;
    this.onWorkerError = onWorkerError;
  }

  /**
   * Starts `size` workers and resolves once every one has loaded the models; rejects if one
   * fails. `onWorkerError` hears of every worker that dies after that (with the cause).
   */
  static async start(specs: readonly ComputeSpec[], size: number, onWorkerError: (error: Error) => void = () => {}): Promise<ComputePool> {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`a compute pool needs >= 1 worker, got ${size}`);
    const pool = new ComputePool(specs, size, onWorkerError);
    const started = Array.from({ length: size }, () => pool.spawn());
    try {
      await Promise.all(started);
    } catch (error) {
      await pool.terminateAll();
      throw error;
    }
    return pool;
  }

  /** Batches running or waiting. */
  get pending(): number {
    return this.queue.length + this.slots.filter((s) => s.job).length;
  }

  /** The worker threads (for tests and diagnostics). */
  get threads(): readonly Worker[] {
    return this.slots.filter((s) => !s.dead).map((s) => s.worker);
  }

  /** Runs one batch (budgets: NaN = none). Per-item failures are results; a dead worker rejects with a 503 ApiError. */
  run(modelId: string, zs: Float32Array<ArrayBuffer>, budgets: Float64Array<ArrayBuffer>, count: number): Promise<ComputeResult[]> {
    if (this.closed) return Promise.reject(new ApiError(503, 'SHUTTING_DOWN', 'the server is shutting down'));
    this.batches++;
    return new Promise<ComputeResult[]>((resolve, reject) => {
      this.queue.push({ request: { id: this.nextId++, modelId, zs, budgets, count }, resolve, reject });
      this.dispatch();
    });
  }

  /** Fault injection for tests: the worker that receives the next batch dies instead of answering it. */
  crashNextBatch(): void {
    this.crashNext = true;
  }

  /** Lets queued and running batches finish, then stops every worker. */
  close(): Promise<void> {
    this.closePromise ??= (async () => {
      this.closing = true;
      if (this.pending > 0) await new Promise<void>((r) => (this.drained = r));
      await this.terminateAll();
    })();
    return this.closePromise;
  }

  private async terminateAll(): Promise<void> {
    this.closed = true;
    const live = this.slots.filter((s) => !s.dead);
    for (const s of live) s.dead = true;
    await Promise.all(live.map((s) => s.worker.terminate()));
  }

  /** Starts one worker; resolves when it is ready, rejects if it dies first. */
  private spawn(): Promise<void> {
    const worker = new Worker(BOOT, { workerData: { specs: this.specs } });
    // In-flight requests keep the process alive through their sockets; an idle pool should not.
    worker.unref();
    const slot: Slot = { worker, ready: false, dead: false, job: undefined };
    this.slots.push(slot);
    return new Promise<void>((resolve, reject) => {
      worker.on('message', (message: BatchReply | { ready: true }) => {
        if ('ready' in message) {
          slot.ready = true;
          this.startFailures = 0;
          resolve();
          this.dispatch();
        } else this.finish(slot, message);
      });
      worker.on('error', (error) => {
        if (!slot.ready) reject(error);
        this.died(slot, error);
      });
      worker.on('exit', (code) => {
        if (!slot.ready) reject(new Error(`compute worker exited with code ${code} while starting`));
        this.died(slot, new Error(`compute worker exited with code ${code}`));
      });
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.dead || !slot.ready || slot.job) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      const request = this.crashNext ? { ...job.request, crash: true } : job.request;
      this.crashNext = false;
      slot.worker.postMessage(request, [request.zs.buffer, request.budgets.buffer]);
    }
  }

  private finish(slot: Slot, reply: BatchReply): void {
    const job = slot.job;
    slot.job = undefined;
    if (job && job.request.id === reply.id) {
      if (reply.ok) job.resolve(decode(reply));
      else job.reject(new Error(`compute worker failed a batch: ${reply.message}`));
    }
    this.dispatch();
    this.checkDrained();
  }

  private died(slot: Slot, cause: Error): void {
    if (slot.dead) return;
    slot.dead = true;
    const reason = cause.message;
    this.onWorkerError(cause);
    this.slots.splice(this.slots.indexOf(slot), 1);
    const wasReady = slot.ready;
    if (slot.job) {
      slot.job.reject(unavailable(`the compute worker stopped while computing this request (${reason}); retry`));
      slot.job = undefined;
    }
    const stopping = this.closed || this.closing;
    if (!stopping) {
      if (wasReady) this.replace();
      else {
        this.startFailures++;
        const delay = Math.min(100 * 2 ** this.startFailures, 10_000);
        setTimeout(() => this.replace(), delay).unref();
      }
    }
    // Queued batches wait for the replacement of a worker that crashed; they fail when a worker
    // dies while starting (the replacement may never come up) or at shutdown, if none is left.
    if ((!wasReady || stopping) && !this.slots.some((s) => s.ready)) this.failQueue(`no compute worker is running (${reason}); retry`);
    this.checkDrained();
  }

  private replace(): void {
    if (this.closed || this.closing) return;
    // Start-up failures of a replacement are handled by died(); nothing waits on this promise.
    this.spawn().catch(() => {});
  }

  private failQueue(message: string): void {
    for (const job of this.queue.splice(0)) job.reject(unavailable(message));
  }

  private checkDrained(): void {
    if (this.closing && this.drained && this.pending === 0) {
      const done = this.drained;
      this.drained = undefined;
      done();
    }
  }
}

function decode(reply: Extract<BatchReply, { ok: true }>): ComputeResult[] {
  const results: ComputeResult[] = [];
  let at = 0;
  for (let i = 0; i < reply.lengths.length; i++) {
    const len = reply.lengths[i]!;
    if (len >= 0) {
      // A copy, so a cached answer does not keep its whole batch's buffer alive.
      results.push({ ok: true, value: { bytes: reply.bytes.slice(at, at + len), etag: reply.etags[i]!, averageBits: reply.averageBits[i]! } });
      at += len;
    } else {
      const e = reply.errors[i]!;
      results.push({ ok: false, error: e.status < 500 ? new ApiError(e.status, e.code as ApiErrorCode, e.message) : new Error(e.message) });
    }
  }
  return results;
}
