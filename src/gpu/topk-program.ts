import wgsl from '../../shaders/topk.wgsl?raw';
import { type EngineProgram, ParamsWriter, runKernelProgram } from './engine-bindings.ts';
import { WORKGROUP_SIZE } from './shader-constants.ts';

/** Top-k by rank counting with core's tie-break (shaders/topk.wgsl). */
export const topkProgram: EngineProgram = runKernelProgram({
  shaderKey: 'topk',
  kernel: wgsl,
  more: ['out'],
  paramsBytes: 4,
});

export function topkParams(scoresOffset: number): Uint32Array<ArrayBuffer> {
  return new ParamsWriter(topkProgram.paramsBytes).u(0, scoresOffset).u32;
}

export function topkGrid(candCount: number): [number, number] {
  return [Math.ceil(candCount / WORKGROUP_SIZE), 1];
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
