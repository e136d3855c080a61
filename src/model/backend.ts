/**
 * tfjs backend selection for the Node CLIs and tests.
 *
 * `@tensorflow/tfjs-node` cannot be installed here, so training runs on either the pure-JS `cpu`
 * backend (~50 s per SASRec step of 128 x 50) or the `wasm` backend (~1.1 s per step, with the
 * transpose-free matmul of nn.ts). The wasm backend ships no `UnsortedSegmentSum` kernel, which
 * the gradient of `tf.gather` (every embedding lookup) calls: wasm-segment-sum.ts registers one.
 * Its Slice/Unpack/SplitV copy the whole input per call: wasm-slice.ts replaces them.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { ChordError } from '../core/errors.ts';
import { registerWasmUnsortedSegmentSum } from './wasm-segment-sum.ts';
import { registerWasmSliceKernels } from './wasm-slice.ts';

export type BackendName = 'wasm' | 'cpu';

export class BackendInitError extends ChordError<'BackendInitError'> {
  override readonly name = 'BackendInitError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('BACKEND_INIT', message, options);
  }
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
    registerWasmSliceKernels();
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
