/**
 * The `UnsortedSegmentSum` kernel the tfjs wasm backend lacks: the gradient of `tf.gather` (every
 * embedding lookup) calls it. It runs on the tensor's data in JS, O(indices x row) adds; for a
 * 6,400 x 1,153 x 64 lookup + gradient that is ~21-35 ms against ~800-960 ms for the one-hot matmul
 * alternative. Page-safe (no Node imports), so the Node backend (backend.ts) and the benchmark page
 * (tools/bench/gpu/tfjs-backends.ts) register the same kernel.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

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

let registered = false;

/** Registers the kernel for the 'wasm' backend. Idempotent; call it before the backend initialises. */
export function registerWasmUnsortedSegmentSum(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({
    kernelName: tf.UnsortedSegmentSum,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const wasm = backend as BackendWasm;
      const x = inputs['x'] as tf.TensorInfo;
      const ids = inputs['segmentIds'] as tf.TensorInfo;
      const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
      // segmentIds may have rank > 1; it indexes the leading idRank dims of x.
      const outShape = [numSegments, ...x.shape.slice(ids.shape.length)];
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
