/**
 * tfjs backends in the benchmark page: 'webgpu' (@tensorflow/tfjs-backend-webgpu) and 'wasm'
 * (@tensorflow/tfjs-backend-wasm, its binaries served by vite). Nothing here touches tfjs at import
 * time beyond registering the backends, so the first setBackend() is a true cold start.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { type BackendWasm, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { ChordError } from '../../core/errors.ts';

export type TfjsBackend = 'webgpu' | 'wasm';

export class TfjsBackendError extends ChordError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BENCH_TFJS_BACKEND', message, options);
  }
}

let wasmConfigured = false;

/**
 * The wasm backend ships no UnsortedSegmentSum kernel, which the gradient of tf.gather (every
 * embedding lookup) needs for the fine-tune step; this one runs on the tensor data in JS, as
 * src/model/backend.ts does in Node (that module cannot load in a page: it resolves files).
 */
function configureWasm(): void {
  if (wasmConfigured) return;
  wasmConfigured = true;
  setWasmPaths({
    'tfjs-backend-wasm.wasm': wasmPlain,
    'tfjs-backend-wasm-simd.wasm': wasmSimd,
    'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
  });
  tf.registerKernel({
    kernelName: tf.UnsortedSegmentSum,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const wasm = backend as BackendWasm;
      const x = inputs['x'] as tf.TensorInfo;
      const ids = inputs['segmentIds'] as tf.TensorInfo;
      const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
      const outShape = [numSegments, ...x.shape.slice(ids.shape.length)];
      const xData = wasm.readSync(x.dataId) as Float32Array | Int32Array;
      const idData = wasm.readSync(ids.dataId) as Int32Array | Float32Array;
      // makeOutput may grow the wasm heap, so the heap view is taken only after it.
      const out = wasm.makeOutput(outShape, x.dtype);
      const outData = wasm.typedArrayFromHeap(out) as Float32Array | Int32Array;
      const inner = idData.length === 0 ? 0 : xData.length / idData.length;
      outData.fill(0);
      for (let i = 0; i < idData.length; i++) {
        const seg = idData[i]!;
        if (seg < 0 || seg >= numSegments) continue;
        for (let k = 0; k < inner; k++) outData[seg * inner + k]! += xData[i * inner + k]!;
      }
      return out;
    },
  });
}

/** Makes `name` the active backend, initialising it on first use. */
export async function useBackend(name: TfjsBackend): Promise<void> {
  if (tf.getBackend() === name) return;
  if (name === 'wasm') configureWasm();
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
  } catch (cause) {
    throw new TfjsBackendError(`tfjs backend '${name}' failed to initialise`, { cause });
  }
  if (!ok) throw new TfjsBackendError(`tfjs backend '${name}' failed to initialise`);
  await tf.ready();
}

/** What the wasm backend runs with (SIMD / threads depend on the page's isolation). */
export function wasmFlavour(): string {
  const env = tf.env();
  const simd = env.getBool('WASM_HAS_SIMD_SUPPORT') ? 'simd' : 'no-simd';
  const threads = env.getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? 'threads' : 'single-thread';
  return `${simd}, ${threads}`;
}
