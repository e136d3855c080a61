import lib from '../../shaders/packed_scale_lib.wgsl?raw';

/**
 * Prepends shaders/packed_scale_lib.wgsl (core's exact per-channel step from min and max, u16
 * channel indices, words per row) to a kernel that reads or writes the packed weights.
 */
export function withPackedScaleLib(wgsl: string): string {
  return `${lib}\n${wgsl}`;
}
