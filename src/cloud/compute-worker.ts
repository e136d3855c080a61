/**
 * A compute worker thread (started by compute-pool.ts through compute-worker-boot.mjs): builds a
 * StrategyCompute per model from workerData, says 'ready', then answers one batch message at a
 * time. The batch's bytes come back in one transferred buffer; per-item errors come back as
 * plain data (the main thread turns them back into ApiErrors).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ApiError } from './errors.ts';
import type { ComputeSpec } from './strategy-compute.ts';
import { StrategyCompute } from './strategy-compute.ts';
import type { BatchReply, BatchRequest, ItemError } from './compute-pool.ts';

const port = parentPort;
if (!port) throw new Error('compute-worker.ts runs as a worker thread');
const specs = (workerData as { specs: ComputeSpec[] }).specs;
const computes = new Map(specs.map((s) => [s.modelId, new StrategyCompute(s)]));

port.on('message', (message: BatchRequest) => {
  if (message.crash) {
    // Fault injection for the pool's tests: die the way a bug in this thread would.
    throw new Error('compute worker crashed on request (fault injection)');
  }
  const compute = computes.get(message.modelId);
  if (!compute) throw new Error(`compute worker has no model "${message.modelId}"`);
  let reply: BatchReply;
  try {
    const results = compute.answer(message.zs, message.budgets, message.count);
    const lengths = new Int32Array(results.length);
    const etags: string[] = [];
    const averageBits = new Float64Array(results.length);
    const errors: (ItemError | null)[] = [];
    let total = 0;
    for (const r of results) if (r.ok) total += r.value.bytes.length;
    const bytes = new Uint8Array(total);
    let at = 0;
    results.forEach((r, i) => {
      if (r.ok) {
        bytes.set(r.value.bytes, at);
        at += r.value.bytes.length;
        lengths[i] = r.value.bytes.length;
        etags.push(r.value.etag);
        averageBits[i] = r.value.averageBits;
        errors.push(null);
      } else {
        lengths[i] = -1;
        etags.push('');
        const e = r.error;
        errors.push(e instanceof ApiError ? { status: e.statusCode, code: e.code, message: e.message } : { status: 500, code: 'INTERNAL', message: e.stack ?? e.message });
      }
    });
    reply = { id: message.id, ok: true, bytes, lengths, etags, averageBits, errors };
  } catch (error) {
    // The batch as a whole failed (a bug): every item gets the error, the thread lives on.
    const e = error instanceof Error ? error : new Error(String(error));
    reply = { id: message.id, ok: false, message: e.stack ?? e.message };
  }
  port.postMessage(reply, reply.ok ? [reply.bytes.buffer] : []);
});

port.postMessage({ ready: true });
