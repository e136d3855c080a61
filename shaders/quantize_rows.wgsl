// Per-row min-max fake quantization of activations, one invocation per row
// (src/core/forward/ops.ts quantizeActivationRows; definitions in fake_quant_lib.wgsl, prepended by
// the program). SASRec quantizes per token (a row = one position's vector); Caser per tensor (one
// row holding the whole tensor).
//
// Rows: row_range's modes (ROWS_ALL, ROWS_LAST, ROWS_FIXED); stride `width`.

struct Params {
  width: u32,
  row_mode: u32,
  fixed_rows: u32,
  bits: u32,
  in_offset: u32,
  out_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1 (run) and 2 (act): engine_run_lib.wgsl, prepended by the program.

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let rows = row_range(params.row_mode, params.fixed_rows);
  let r = rows.x + gid.x;
  if (r >= rows.y) { return; }
  let w = params.width;
  fq_row(params.in_offset + r * w, params.out_offset + r * w, w, params.bits);
}
