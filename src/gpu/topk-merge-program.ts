import wgsl from '../../shaders/topk_merge.wgsl?raw';
import { type EngineProgram, ParamsWriter, runKernelProgram } from './engine-bindings.ts';
import { TOPK_CHUNK, WORKGROUP_SIZE } from './shader-constants.ts';

/** Top-k pass 2: the global top k among the survivors of pass 1 (shaders/topk_merge.wgsl). */
export const topkMergeProgram: EngineProgram = runKernelProgram({
  shaderKey: 'topk_merge',
  kernel: wgsl,
  libs: ['topkOrder'],
  more: ['out'],
  paramsBytes: 8,
});

/** `finalOffset`: u32 offset in `out` where the k result pairs go (after the survivors); `scoresOffset` in act. */
export function topkMergeParams(finalOffset: number, scoresOffset: number): Uint32Array<ArrayBuffer> {
  return new ParamsWriter(topkMergeProgram.paramsBytes).us(0, [finalOffset, scoresOffset]).u32;
}

/** One invocation per survivor slot of any k (at most TOPK_CHUNK per chunk); extra ones return. */
export function topkMergeGrid(candCount: number): [number, number] {
  return [Math.ceil(candCount / TOPK_CHUNK) * Math.ceil(TOPK_CHUNK / WORKGROUP_SIZE), 1];
}

/** Decodes the kernel's (index, score bits) pairs: indices into the candidate list, best first. */
export function decodeTopk(pairs: Uint32Array, k: number): { order: Uint32Array; scores: Float32Array } {
  const order = new Uint32Array(k);
  const bits = new Uint32Array(k);
  for (let r = 0; r < k; r++) {
    order[r] = pairs[2 * r]!;
    bits[r] = pairs[2 * r + 1]!;
  }
  return { order, scores: new Float32Array(bits.buffer) };
}
