/**
 * Progress of the page-side loading steps, for a loading bar. `loaded`/`total` are bytes for
 * the I/O stages and layers for 'frozen'; `total` is undefined when unknown (a download without a
 * Content-Length, or a compressed one).
 */
export type ProgressStage =
  /** Reading a stored entry from IndexedDB. */
  | 'store-read'
  /** SHA-256 check of a stored or downloaded entry. */
  | 'verify'
  /** Writing an entry to IndexedDB. */
  | 'store-write'
  /** Downloading an artifact. */
  | 'download'
  /** Regenerating the frozen weights from the seed (shipped weights are checked under 'verify' instead). */
  | 'frozen';

export interface ProgressReport {
  readonly stage: ProgressStage;
  /** What is being processed, e.g. "sasrec-ml100k@3/backbone.bin" or a layer name. */
  readonly item: string;
  readonly loaded: number;
  /** undefined when unknown. */
  readonly total: number | undefined;
}

export type ProgressCallback = (report: ProgressReport) => void;
