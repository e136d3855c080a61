/**
 * The WGSL libraries of shaders/ (*_lib.wgsl: helpers and shared declarations, no entry point) and
 * how a program prepends them to its kernel. WGSL module-scope declarations may come in any order,
 * so a library may use what its kernel declares and the other way round.
 */
import adaptSegmentsLib from '../../shaders/adapt_segments_lib.wgsl?raw';
import engineRunLib from '../../shaders/engine_run_lib.wgsl?raw';
import fakeQuantLib from '../../shaders/fake_quant_lib.wgsl?raw';
import packedScaleLib from '../../shaders/packed_scale_lib.wgsl?raw';

const LIBS = {
  /** Packed weights: core's exact per-channel step, u16 channel index, width groups, unpacking. */
  packed: packedScaleLib,
  /** The engine's per-history kernels: the run uniform, bindings 1 (run) and 2 (act), row ranges (use through runKernelProgram). */
  run: engineRunLib,
  /** Per-row fake quantization of activations; reads and writes `act` (from 'run'). */
  fakeQuant: fakeQuantLib,
  /** The two adaptation kernels: segments and bindings 1-4; uses 'packed'. */
  adaptSegments: adaptSegmentsLib,
} as const;

export type WgslLib = keyof typeof LIBS;

/** `kernel` with `libs` prepended, in that order. */
export function withWgslLibs(kernel: string, ...libs: readonly WgslLib[]): string {
  return [...libs.map((lib) => LIBS[lib]), kernel].join('\n');
}
