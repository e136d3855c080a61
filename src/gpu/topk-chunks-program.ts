import wgsl from '../../shaders/topk_chunks.wgsl?raw';
import { type EngineProgram, ParamsWriter, runKernelProgram } from './engine-bindings.ts';
import { TOPK_CHUNK } from './shader-constants.ts';

/** Top-k pass 1: each chunk's best min(k, TOPK_CHUNK) as survivors (shaders/topk_chunks.wgsl). */
export const topkChunksProgram: EngineProgram = runKernelProgram({
  shaderKey: 'topk_chunks',
  kernel: wgsl,
  libs: ['topkOrder'],
  more: ['out'],
  paramsBytes: 4,
});

export function topkChunksParams(scoresOffset: number): Uint32Array<ArrayBuffer> {
  return new ParamsWriter(topkChunksProgram.paramsBytes).u(0, scoresOffset).u32;
}

/** One workgroup per chunk of TOPK_CHUNK candidates. */
export function topkChunksGrid(candCount: number): [number, number] {
  return [Math.ceil(candCount / TOPK_CHUNK), 1];
}

/** u32 words of survivor pairs pass 1 may write for up to `candCount` candidates (any k). */
export function topkSurvivorWords(candCount: number): number {
  return 2 * Math.ceil(candCount / TOPK_CHUNK) * TOPK_CHUNK;
}
