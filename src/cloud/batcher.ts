/**
 * Micro-batching: requests that arrive close together share one call of a batch function.
 *
 * The first item into an empty queue opens a window of `windowMs` (0 = until the current turn of
 * the event loop has read all sockets that were ready, via setImmediate); the batch runs when
 * the window closes or as soon as `maxBatch` items are queued, whichever is first. The batch
 * function answers per item (a value or an Error), so one bad item fails alone; if the function
 * itself throws, every item of that batch gets the error.
 */
export type ItemResult<O> = { ok: true; value: O } | { ok: false; error: Error };

export interface MicroBatcherOptions {
  windowMs: number;
  maxBatch: number;
  /** Called with the size of every batch that runs (for metrics). */
  onBatch?: (size: number) => void;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: Error) => void;
}

export class MicroBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private immediate: ReturnType<typeof setImmediate> | undefined;
  private readonly run: (items: I[]) => ItemResult<O>[];
  private readonly options: MicroBatcherOptions;

  constructor(run: (items: I[]) => ItemResult<O>[], options: MicroBatcherOptions) {
    if (!(options.windowMs >= 0) || !Number.isFinite(options.windowMs)) throw new RangeError('windowMs must be >= 0');
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) throw new RangeError('maxBatch must be a positive integer');
    this.run = run;
    this.options = options;
  }

  get pending(): number {
    return this.queue.length;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.options.maxBatch) this.flush();
      else if (this.queue.length === 1) this.openWindow();
    });
  }

  /** Runs everything queued now, synchronously. */
  flush(): void {
    this.cancelWindow();
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.runBatch(batch);
    }
  }

  private openWindow(): void {
    if (this.options.windowMs === 0) this.immediate = setImmediate(() => this.flush());
    else this.timer = setTimeout(() => this.flush(), this.options.windowMs);
  }

  private cancelWindow(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  private runBatch(batch: Pending<I, O>[]): void {
    this.options.onBatch?.(batch.length);
    let results: ItemResult<O>[];
    try {
      results = this.run(batch.map((p) => p.item));
      if (results.length !== batch.length) throw new Error(`batch function answered ${results.length} of ${batch.length} items`);
    } catch (error) {
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
}
