/**
 * tfjs backend selection for the Node CLIs and tests.
 *
 * `@tensorflow/tfjs-node` cannot be installed here, so training runs on either the pure-JS `cpu`
 * backend (~50 s per SASRec step of 128 x 50) or the `wasm` backend (~1.1 s per step, with the
 * transpose-free matmul of nn.ts). The wasm backend ships no `UnsortedSegmentSum` kernel, which
 * the gradient of `tf.gather` (every embedding lookup) calls, so we register one that runs on the
 * tensor's data in JS: O(indices x row) adds. For a 6,400 x 1,153 x 64 lookup + gradient it takes
 * ~21-35 ms against ~800-960 ms for the one-hot matmul alternative.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { ChordError } from '../core/errors.ts';

export type BackendName = 'wasm' | 'cpu';

export class BackendInitError extends ChordError {
  declare readonly code: 'BACKEND_INIT';
  constructor(message: string, options?: { cause?: unknown }) {
    super('BACKEND_INIT', message, options);
  }
}

/**
 * Sums rows of `x` into `numSegments` buckets: out[segmentIds[i], ...] += x[i, ...].
 * Ids outside [0, numSegments) are dropped, as TensorFlow does. Pure function on typed arrays
 * so it is testable without any backend.
 */
export function unsortedSegmentSumArrays(
  x: Float32Array | Int32Array,
  segmentIds: Int32Array | Float32Array,
  numSegments: number,
  out: Float32Array | Int32Array,
): void {
  const numIds = segmentIds.length;
  const inner = numIds === 0 ? 0 : x.length / numIds;
  out.fill(0);
  for (let i = 0; i < numIds; i++) {
    const seg = segmentIds[i]!;
    if (seg < 0 || seg >= numSegments) continue;
    const src = i * inner;
    const dst = seg * inner;
    for (let k = 0; k < inner; k++) out[dst + k]! += x[src + k]!;
  }
}

let segmentSumRegistered = false;

function registerWasmUnsortedSegmentSum(): void {
  if (segmentSumRegistered) return;
  segmentSumRegistered = true;
  tf.registerKernel({
    kernelName: tf.UnsortedSegmentSum,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const wasm = backend as BackendWasm;
      const x = inputs['x'] as tf.TensorInfo;
      const ids = inputs['segmentIds'] as tf.TensorInfo;
      const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
      const idRank = ids.shape.length;
      // segmentIds may have rank > 1; it indexes the leading idRank dims of x.
      const outShape = [numSegments, ...x.shape.slice(idRank)];
      const xData = wasm.readSync(x.dataId) as Float32Array | Int32Array;
      const idData = wasm.readSync(ids.dataId) as Int32Array | Float32Array;
      // makeOutput may grow the wasm heap, so the heap view is taken only after it.
      const out = wasm.makeOutput(outShape, x.dtype);
      const outData = wasm.typedArrayFromHeap(out) as Float32Array | Int32Array;
      unsortedSegmentSumArrays(xData, idData, numSegments, outData);
      return out;
    },
  });
}

function wasmDistDir(): string {
  const require = createRequire(import.meta.url);
  // The package's main entry lives in dist/, next to the .wasm binaries.
  return dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/';
}

/**
 * Selects and initialises the tfjs backend. Idempotent. `wasm` runs single-threaded: the machine
 * is shared and tfjs-wasm has no thread support in Node anyway.
 */
export async function initBackend(name: BackendName = 'wasm'): Promise<void> {
  if (tf.getBackend() === name) return;
  if (name === 'wasm') {
    registerWasmUnsortedSegmentSum();
    setWasmPaths(wasmDistDir());
    setThreadsCount(1);
  }
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
  } catch (cause) {
    throw new BackendInitError(`tfjs backend '${name}' failed to initialise`, { cause });
  }
  if (!ok) throw new BackendInitError(`tfjs backend '${name}' failed to initialise`);
  await tf.ready();
}
