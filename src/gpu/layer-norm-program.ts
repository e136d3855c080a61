import wgsl from '../../shaders/layer_norm.wgsl?raw';
import { type EngineProgram, ParamsWriter, type RowMode, rowCount, runKernelProgram } from './engine-bindings.ts';
import { LN_QUANT_IN, LN_QUANT_OUT, WORKGROUP_SIZE } from './shader-constants.ts';

/** Layer norm of activation rows, optionally writing per-token quantized copies (shaders/layer_norm.wgsl). */
export const layerNormProgram: EngineProgram = runKernelProgram({
  shaderKey: 'layer_norm',
  kernel: wgsl,
  libs: ['fakeQuant'],
  more: ['model'],
  paramsBytes: 13 * 4,
});

export interface LayerNormParams {
  readonly width: number;
  readonly rowMode: RowMode;
  readonly fixedRows?: number;
  /** act offsets (elements); input rows have stride `width`. */
  readonly inOffset: number;
  readonly outOffset: number;
  /** Stride of output rows: `width`, or 0 to write every row to outOffset (the final norm of one row). */
  readonly outStride: number;
  /** model offsets of gamma and beta. */
  readonly gammaOffset: number;
  readonly betaOffset: number;
  readonly eps: number;
  /** Per-token fake quantization (bits 1..8) of the output and/or the input; stride `width`. */
  readonly quant?: { readonly bits: number; readonly outOffset?: number; readonly inOffset?: number };
}

export function layerNormParams(p: LayerNormParams): Uint32Array<ArrayBuffer> {
  const q = p.quant;
  const flags = (q?.outOffset !== undefined ? LN_QUANT_OUT : 0) | (q?.inOffset !== undefined ? LN_QUANT_IN : 0);
  return new ParamsWriter(layerNormProgram.paramsBytes)
    .us(0, [p.width, p.rowMode, p.fixedRows ?? 0, p.inOffset, p.outOffset, p.gammaOffset, p.betaOffset])
    .f(7, p.eps)
    .us(8, [q?.bits ?? 0, flags, q?.outOffset ?? 0, q?.inOffset ?? 0, p.outStride]).u32;
}

/** One invocation per row, WORKGROUP_SIZE per workgroup. */
export function layerNormGrid(p: LayerNormParams, n: number): [number, number] {
  return [Math.ceil(rowCount(p.rowMode, n, p.fixedRows ?? 0) / WORKGROUP_SIZE), 1];
}
