/**
 * A worker thread that answers one request at a time: the plumbing data-parallel training
 * (parallel.ts) and the split deployment evaluation (deploy-workers.ts) share. A reply of type
 * `error` rejects the request with a typed error; a crash or a non-zero exit rejects the request in
 * flight and every later one.
 */
import { Worker } from 'node:worker_threads';
import { ChordTrainError } from './errors.ts';

/** What a worker sends when a request failed. */
export interface WorkerErrorReply {
  readonly type: 'error';
  readonly message: string;
  readonly stack?: string;
}

/** The error reply for `e`, for a worker's catch. */
export function errorReply(e: unknown): WorkerErrorReply {
  const err = e instanceof Error ? e : new Error(String(e));
  return { type: 'error', message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
}

/**
 * Starts `entry` in a worker thread. Node does not carry the parent's TypeScript loader (tsx,
 * `node --import tsx`) into worker threads, so a .ts entry is loaded by a small script that
 * registers tsx's ESM hooks in the worker first.
 */
function startWorker(entry: URL, workerData: unknown): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const source = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(source, { eval: true, workerData });
}

interface Pending<Reply> {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

/** One worker thread; at most one request in flight. `what` names it in errors ("training worker"). */
export class RequestWorker<Reply extends { readonly type: string }> {
  private readonly worker: Worker;
  private pending: Pending<Reply> | undefined;
  private failure: Error | undefined;

  constructor(entry: URL, workerData: unknown, what: string) {
    this.worker = startWorker(entry, workerData);
    this.worker.on('message', (m: Reply | WorkerErrorReply) => {
      const p = this.pending;
      this.pending = undefined;
      if (!p) return;
      if (m.type === 'error') p.reject(new ChordTrainError('CHORD_WORKER_FAILED', `${what} failed: ${(m as WorkerErrorReply).message}`));
      else p.resolve(m as Reply);
    });
    const fail = (e: Error) => {
      this.failure = e;
      this.pending?.reject(e);
      this.pending = undefined;
    };
    this.worker.on('error', (e) => fail(new ChordTrainError('CHORD_WORKER_FAILED', `${what} crashed: ${e.message}`, { cause: e })));
    this.worker.on('exit', (code) => {
      if (code !== 0) fail(new ChordTrainError('CHORD_WORKER_FAILED', `${what} exited with code ${code}`));
    });
  }

  /** A message that gets no reply. */
  post(message: unknown): void {
    if (this.failure) throw this.failure;
    this.worker.postMessage(message);
  }

  /** A message answered by exactly one reply. */
  request(message: unknown): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new ChordTrainError('CHORD_WORKER_FAILED', 'a worker request while another is in flight'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(message);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
