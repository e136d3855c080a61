import wgsl from '../../shaders/attention_causal.wgsl?raw';
import { type EngineProgram, ParamsWriter, rowCount, runKernelProgram } from './engine-bindings.ts';
import { type ROWS_ALL, type ROWS_LAST, WORKGROUP_SIZE } from './shader-constants.ts';

/** Causal multi-head attention, one invocation per (query row, head) (shaders/attention_causal.wgsl). */
export const attentionProgram: EngineProgram = runKernelProgram({
  shaderKey: 'attention_causal',
  kernel: wgsl,
  more: [],
  paramsBytes: 8 * 4,
});

export interface AttentionParams {
  readonly d: number;
  readonly heads: number;
  readonly rowMode: typeof ROWS_ALL | typeof ROWS_LAST;
  /** act offsets of Q, K, V and the merged heads; all rows have stride d. */
  readonly qOffset: number;
  readonly kOffset: number;
  readonly vOffset: number;
  readonly outOffset: number;
}

export function attentionParams(p: AttentionParams): Uint32Array<ArrayBuffer> {
  return new ParamsWriter(attentionProgram.paramsBytes)
    .us(0, [p.d, p.heads, p.rowMode])
    .f(3, 1 / Math.sqrt(p.d / p.heads))
    .us(4, [p.qOffset, p.kOffset, p.vOffset, p.outOffset]).u32;
}

export function attentionGrid(p: AttentionParams, n: number): [number, number] {
  return [Math.ceil((rowCount(p.rowMode, n, 0) * p.heads) / WORKGROUP_SIZE), 1];
}
