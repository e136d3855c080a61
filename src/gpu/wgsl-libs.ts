/**
 * The WGSL libraries of shaders/ (*_lib.wgsl: helpers and shared declarations, no entry point) and
 * how a program prepends them to its kernel, after the constants TypeScript shares with every
 * kernel (shader-constants.ts). WGSL module-scope declarations may come in any order, so a library
 * may use what its kernel declares and the other way round.
 */
import adaptSegmentsLib from '../../shaders/adapt_segments_lib.wgsl?raw';
import engineRunLib from '../../shaders/engine_run_lib.wgsl?raw';
import fakeQuantLib from '../../shaders/fake_quant_lib.wgsl?raw';
import itemTableLib from '../../shaders/item_table_lib.wgsl?raw';
import packedDotLib from '../../shaders/packed_dot_lib.wgsl?raw';
import packedScaleLib from '../../shaders/packed_scale_lib.wgsl?raw';
import topkOrderLib from '../../shaders/topk_order_lib.wgsl?raw';
import { WGSL_CONSTANTS } from './shader-constants.ts';

const LIBS = {
  /** Packed weights: core's exact per-channel step, u16 channel index, width groups, unpacking. */
  packed: packedScaleLib,
  /** A packed row's dot product with activations the kernel reads (its `words`, PackedDotRows, packed_dot_x); uses 'packed'. */
  packedDot: packedDotLib,
  /** The engine's per-history kernels: the run uniform, bindings 1 (run) and 2 (act), row ranges (use through runKernelProgram). */
  run: engineRunLib,
  /** Per-row fake quantization of activations; reads and writes `act` (from 'run'). */
  fakeQuant: fakeQuantLib,
  /** The two adaptation kernels: segments and bindings 1-4; uses 'packed'. */
  adaptSegments: adaptSegmentsLib,
  /** The 8-bit item table's codes and f16 scales (the kernel declares its `items` binding). */
  itemTable: itemTableLib,
  /** The ranking order of core's top-k, for the two top-k kernels. */
  topkOrder: topkOrderLib,
} as const;

export type WgslLib = keyof typeof LIBS;

/** `kernel` with the shared constants and `libs` prepended, in that order. */
export function withWgslLibs(kernel: string, ...libs: readonly WgslLib[]): string {
  return [WGSL_CONSTANTS, ...libs.map((lib) => LIBS[lib]), kernel].join('\n');
}
