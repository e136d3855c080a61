/**
 * tfjs backends in the benchmark page: 'webgpu' (@tensorflow/tfjs-backend-webgpu) and 'wasm'
 * (@tensorflow/tfjs-backend-wasm, its binaries served by vite). Nothing here touches tfjs at import
 * time beyond registering the backends, so the first setBackend() is a true cold start.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { registerWasmUnsortedSegmentSum } from '../../../src/model/wasm-segment-sum.ts';

export type TfjsBackend = 'webgpu' | 'wasm';

/** A tfjs backend the benchmark compares against would not start (a bench failure, not a library error). */
export class TfjsBackendError extends Error {
  override readonly name = 'TfjsBackendError';
  readonly code = 'BENCH_TFJS_BACKEND';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

let wasmConfigured = false;

/**
 * The wasm backend ships no UnsortedSegmentSum kernel, which the gradient of tf.gather (every
 * embedding lookup) needs for the fine-tune step: the page registers the same one as the Node
 * backend (src/model/backend.ts itself cannot load in a page: it resolves files).
 */
function configureWasm(): void {
  if (wasmConfigured) return;
  wasmConfigured = true;
  setWasmPaths({
    'tfjs-backend-wasm.wasm': wasmPlain,
    'tfjs-backend-wasm-simd.wasm': wasmSimd,
    'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
  });
  registerWasmUnsortedSegmentSum();
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
