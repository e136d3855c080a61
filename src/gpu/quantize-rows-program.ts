import wgsl from '../../shaders/quantize_rows.wgsl?raw';
import { type EngineProgram, ParamsWriter, type RowMode, rowCount, runKernelProgram } from './engine-bindings.ts';
import { WORKGROUP_SIZE } from './shader-constants.ts';

/** Per-row min-max fake quantization of activations (shaders/quantize_rows.wgsl). */
export const quantizeRowsProgram: EngineProgram = runKernelProgram({
  shaderKey: 'quantize_rows',
  kernel: wgsl,
  libs: ['fakeQuant'],
  more: [],
  paramsBytes: 6 * 4,
});

export interface QuantizeRowsParams {
  readonly width: number;
  readonly rowMode: RowMode;
  readonly fixedRows?: number;
  readonly bits: number;
  /** act offsets; rows have stride `width`. */
  readonly inOffset: number;
  readonly outOffset: number;
}

export function quantizeRowsParams(p: QuantizeRowsParams): Uint32Array<ArrayBuffer> {
  return new ParamsWriter(quantizeRowsProgram.paramsBytes).us(0, [
    p.width,
    p.rowMode,
    p.fixedRows ?? 0,
    p.bits,
    p.inOffset,
    p.outOffset,
  ]).u32;
}

/** One invocation per row, WORKGROUP_SIZE per workgroup. */
export function quantizeRowsGrid(p: QuantizeRowsParams, n: number): [number, number] {
  return [Math.ceil(rowCount(p.rowMode, n, p.fixedRows ?? 0) / WORKGROUP_SIZE), 1];
}
