/**
 * The numbers the host code and the WGSL kernels must agree on, written once. TypeScript uses them
 * to size grids, uniform arrays and flag words; withWgslLibs (wgsl-libs.ts) puts them in front of
 * every program's WGSL as `const NAME: u32 = value;` (WGSL_CONSTANTS), so the kernels in shaders/
 * use them by name and never repeat the number. A kernel whose code only works for one value (the
 * fused matmul's unrolled rows) states it with a `const_assert`, so a change here that the kernel
 * cannot follow fails at pipeline creation instead of computing garbage.
 *
 * The values are fixed at module load, so a program's WGSL, and with it its shaderKey
 * (pipeline-cache.ts), means one text for the life of the page.
 */
export const SHADER_CONSTANTS = {
  /** Invocations of the 1-D kernels' workgroups (@workgroup_size); the host divides grids by it. */
  WORKGROUP_SIZE: 64,
  /** Width groups a layer's uniform holds (one per width 0..8, 0 = off): array<vec4<u32>, MAX_GROUPS>. */
  MAX_GROUPS: 9,
  /** Channels per adaptation workgroup (adapt_quantize_pack.wgsl, buildAdaptSegments). */
  ADAPT_TILE: 64,
  /** Standalone mixed-bit matmul: packed positions by x rows per workgroup (matmul_mixed.wgsl). */
  MATMUL_TILE_N: 16,
  MATMUL_TILE_M: 4,
  /** Fused matmul: packed positions by row blocks per workgroup (matmul_fused.wgsl). */
  FUSED_TILE_N: 16,
  FUSED_TILE_M: 2,
  /** Rows each fused-matmul invocation accumulates (the kernel unrolls exactly this many). */
  FUSED_ROWS_PER_INVOCATION: 8,
  /** Layers ("jobs") one fused-matmul dispatch runs: array<Job, FUSED_MAX_JOBS>. */
  FUSED_MAX_JOBS: 3,
  /** Fused-matmul epilogue flags (Job.flags). */
  FUSED_BIAS: 1,
  FUSED_RELU: 2,
  FUSED_RESIDUAL: 4,
  /** Caser horizontal convolutions: packed positions per workgroup, heights per dispatch. */
  CONV_H_TILE: 16,
  CONV_H_MAX_JOBS: 8,
  /** Layer norm's fake-quantization flags: of the output rows, of the input rows. */
  LN_QUANT_OUT: 1,
  LN_QUANT_IN: 2,
  /** Row modes of the per-history kernels (row_range in engine_run_lib.wgsl). */
  ROWS_ALL: 0,
  ROWS_LAST: 1,
  ROWS_FIXED: 2,
  /** Candidate modes of the run uniform: catalogue ids, or embeddings the shop sent. */
  CAND_MODE_IDS: 0,
  CAND_MODE_EMBEDDINGS: 1,
  /** The whole catalogue: candidate i is item i + 1 (recommend without a candidate list). */
  CAND_MODE_ALL: 2,
  /** Scores one top-k workgroup ranks (topk_chunks.wgsl: its @workgroup_size and tile). */
  TOPK_CHUNK: 256,
} as const;

export type ShaderConstant = keyof typeof SHADER_CONSTANTS;

export const {
  WORKGROUP_SIZE,
  MAX_GROUPS,
  ADAPT_TILE,
  MATMUL_TILE_N,
  MATMUL_TILE_M,
  FUSED_TILE_N,
  FUSED_TILE_M,
  FUSED_ROWS_PER_INVOCATION,
  FUSED_MAX_JOBS,
  FUSED_BIAS,
  FUSED_RELU,
  FUSED_RESIDUAL,
  CONV_H_TILE,
  CONV_H_MAX_JOBS,
  LN_QUANT_OUT,
  LN_QUANT_IN,
  ROWS_ALL,
  ROWS_LAST,
  ROWS_FIXED,
  CAND_MODE_IDS,
  CAND_MODE_EMBEDDINGS,
  CAND_MODE_ALL,
  TOPK_CHUNK,
} = SHADER_CONSTANTS;

/** The WGSL declarations of SHADER_CONSTANTS, one `const NAME: u32 = value;` per line. */
export const WGSL_CONSTANTS: string = [
  '// Generated from src/gpu/shader-constants.ts: edit the numbers there.',
  ...Object.entries(SHADER_CONSTANTS).map(([name, value]) => {
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32) throw new RangeError(`shader constant ${name} = ${value} is not a u32`);
    return `const ${name}: u32 = ${value}u;`;
  }),
].join('\n');
