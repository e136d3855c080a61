/**
 * Micro-batching: requests that arrive close together share one call of a batch function.
 *
 * The first item into an empty queue opens a window of `windowMs` (0 = until the current turn of
 * the event loop has read all sockets that were ready, via setImmediate); the batch runs when
 * the window closes or as soon as `maxBatch` items are queued, whichever is first. The batch
 * function answers per item (a value or an Error), so one bad item fails alone; if the function
 * itself throws (or its promise rejects), every item of that batch gets the error.
 *
 * The batch function may be asynchronous (a worker thread computes it). Then at most
 * `maxInFlight` batches run at once: while they do, new items queue up, and the moment one
 * finishes the queue goes out as the next batch (up to maxBatch) without waiting for a window —
 * those items have already waited for a whole batch. Under load, batches therefore grow to what
 * the workers can take; when idle, one request is answered after one window.
 */
export type ItemResult<O> = { ok: true; value: O } | { ok: false; error: Error };

export interface MicroBatcherOptions {
  windowMs: number;
  maxBatch: number;
  /** Asynchronous batch functions: how many batches may run at once (default: unlimited). */
  maxInFlight?: number;
  /** Called with the size of every batch that runs (for metrics). */
  onBatch?: (size: number) => void;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: Error) => void;
}

type BatchFunction<I, O> = (items: I[]) => ItemResult<O>[] | Promise<ItemResult<O>[]>;

export class MicroBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private immediate: ReturnType<typeof setImmediate> | undefined;
  private inFlight = 0;
  private readonly run: BatchFunction<I, O>;
  private readonly options: MicroBatcherOptions;
  private readonly maxInFlight: number;

  constructor(run: BatchFunction<I, O>, options: MicroBatcherOptions) {
    if (!(options.windowMs >= 0) || !Number.isFinite(options.windowMs)) throw new RangeError('windowMs must be >= 0');
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) throw new RangeError('maxBatch must be a positive integer');
    const maxInFlight = options.maxInFlight ?? Infinity;
    if (!(maxInFlight >= 1)) throw new RangeError('maxInFlight must be >= 1');
    this.run = run;
    this.options = options;
    this.maxInFlight = maxInFlight;
  }

  /** Items queued for a batch that has not started. */
  get pending(): number {
    return this.queue.length;
  }

  /** Batches started and not yet answered (asynchronous batch functions only). */
  get running(): number {
    return this.inFlight;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.options.maxBatch) this.dispatch();
      else if (this.queue.length === 1 && this.inFlight < this.maxInFlight) this.openWindow();
    });
  }

  /** Starts everything queued now, in batches of maxBatch, whatever is in flight (shutdown). */
  flush(): void {
    this.cancelWindow();
    while (this.queue.length > 0) this.runBatch(this.queue.splice(0, this.options.maxBatch));
  }

  /** Starts batches while there is room in flight. */
  private dispatch(): void {
    this.cancelWindow();
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) this.runBatch(this.queue.splice(0, this.options.maxBatch));
  }

  private openWindow(): void {
    if (this.timer !== undefined || this.immediate !== undefined) return;
    if (this.options.windowMs === 0) this.immediate = setImmediate(() => this.dispatch());
    else this.timer = setTimeout(() => this.dispatch(), this.options.windowMs);
  }

  private cancelWindow(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  private runBatch(batch: Pending<I, O>[]): void {
    this.options.onBatch?.(batch.length);
    let answer: ItemResult<O>[] | Promise<ItemResult<O>[]>;
    try {
      answer = this.run(batch.map((p) => p.item));
    } catch (error) {
      settle(batch, error);
      return;
    }
    if (!(answer instanceof Promise)) {
      settle(batch, undefined, answer);
      return;
    }
    this.inFlight++;
    answer.then(
      (results) => this.done(batch, undefined, results),
      (error: unknown) => this.done(batch, error),
    );
  }

  private done(batch: Pending<I, O>[], error: unknown, results?: ItemResult<O>[]): void {
    this.inFlight--;
    settle(batch, error, results);
    // Whatever queued meanwhile goes now: it has waited at least one batch already.
    if (this.queue.length > 0) this.dispatch();
  }
}

function settle<I, O>(batch: Pending<I, O>[], error: unknown, results?: ItemResult<O>[]): void {
  if (error === undefined && results && results.length !== batch.length) {
    error = new Error(`batch function answered ${results.length} of ${batch.length} items`);
  }
  if (error !== undefined || !results) {
    const e = error instanceof Error ? error : new Error(String(error));
    for (const p of batch) p.reject(e);
    return;
  }
  batch.forEach((p, i) => {
    const r = results[i]!;
    if (r.ok) p.resolve(r.value);
    else p.reject(r.error);
  });
}
