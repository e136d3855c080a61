/**
 * A worker thread of data-parallel training (parallel.ts): builds a replica of the run's model,
 * keeps the epoch's examples, and answers each step with its shard's gradients.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../backend.ts';
import type { SampledNegatives } from '../item-loss.ts';
import { chordBatch, disposeChordBatch, type ChordExamples } from './data.ts';
import { shardCtx, shardGradients, type ReplicaSpec, type StepRequest, type WorkerMessage } from './parallel.ts';
import { buildReplica } from './run.ts';
import { errorReply } from './worker-thread.ts';

const port = parentPort;
if (!port) throw new Error('step-worker.ts runs as a worker thread (parallel.ts starts it)');

const spec = workerData as ReplicaSpec;
await initBackend(spec.backend);
const model = buildReplica(spec);
const logExpected = spec.logExpected ? tf.keep(tf.tensor1d(spec.logExpected)) : undefined;
let ex: ChordExamples | undefined;

function step(req: StepRequest): WorkerMessage {
  if (!ex) throw new Error('a step before the epoch\'s examples');
  for (const [name, data] of Object.entries(req.weights)) {
    const v = model.variables[name];
    if (!v) throw new Error(`no variable ${name} in the replica`);
    tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
  }
  if (req.idx.length === 0) return { type: 'grads', rows: 0, loss: 0, grads: {} };
  const batch = chordBatch(ex, req.idx, req.trim);
  let cols: tf.Tensor1D | undefined;
  try {
    let negatives: SampledNegatives | undefined;
    if (req.negatives) {
      if (!logExpected) throw new Error('negatives without the sampled loss\'s log(K·q)');
      cols = tf.tensor1d(req.negatives.cols, 'int32');
      negatives = { kind: req.negatives.kind, cols, logExpected, beta: req.negatives.beta };
    }
    const r = shardGradients(model, negatives ? { ...batch, negatives } : batch, shardCtx(req.seed));
    return { type: 'grads', ...r };
  } finally {
    disposeChordBatch(batch);
    cols?.dispose();
  }
}

port.on('message', (m: { type: 'examples'; ex: ChordExamples } | StepRequest) => {
  try {
    if (m.type === 'examples') {
      ex = m.ex;
      return;
    }
    const reply = step(m);
    const buffers = reply.type === 'grads' ? Object.values(reply.grads).map((g) => g.buffer as ArrayBuffer) : [];
    port.postMessage(reply, buffers);
  } catch (e) {
    port.postMessage(errorReply(e) satisfies WorkerMessage);
  }
});
