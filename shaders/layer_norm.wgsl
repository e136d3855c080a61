// Layer norm of activation rows, one invocation per row (src/core/forward/ops.ts layerNormRows):
//   y = (x - mean) / sqrt(var + eps) * gamma + beta,   var = biased (population) variance
// With quant_bits > 0 it also writes per-token fake-quantized copies (fake_quant_lib.wgsl,
// prepended by the program): of y (LN_QUANT_OUT: the next matmul's input) and of x (LN_QUANT_IN: SASRec
// quantizes x once for K and V while the residual paths keep the unquantized rows).
//
// One invocation per row rather than a workgroup reduction: rows are short (the hidden size) and
// batch-1 has at most maxLen of them, and workgroup barriers are what costs most on SwiftShader.
//
// Rows: row_range's modes (ROWS_ALL, ROWS_LAST, ROWS_FIXED). Input rows have
// stride `width`; gamma and beta are in `model`, everything else in `act`.

struct Params {
  width: u32,
  row_mode: u32,
  fixed_rows: u32,
  in_offset: u32,
  out_offset: u32,
  gamma_offset: u32,
  beta_offset: u32,
  eps: f32,
  quant_bits: u32,
  flags: u32,
  qout_offset: u32,
  qin_offset: u32,
  out_stride: u32,  // width, or 0: every row writes to out_offset (one-row outputs such as rep)
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1 (run) and 2 (act): engine_run_lib.wgsl, prepended by the program.
@group(0) @binding(3) var<storage, read> model: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let rows = row_range(params.row_mode, params.fixed_rows);
  let r = rows.x + gid.x;
  if (r >= rows.y) { return; }
  let w = params.width;
  let x0 = params.in_offset + r * w;
  let y0 = params.out_offset + r * params.out_stride;

  var s = 0.0;
  for (var j = 0u; j < w; j++) { s += act[x0 + j]; }
  let mean = s / f32(w);
  var sq = 0.0;
  for (var j = 0u; j < w; j++) {
    let c = act[x0 + j] - mean;
    sq += c * c;
  }
  let inv = 1.0 / sqrt(sq / f32(w) + params.eps);
  for (var j = 0u; j < w; j++) {
    act[y0 + j] = (act[x0 + j] - mean) * inv * model[params.gamma_offset + j] + model[params.beta_offset + j];
  }

  if (params.quant_bits != 0u) {
    if ((params.flags & LN_QUANT_IN) != 0u) { fq_row(x0, params.qin_offset + r * w, w, params.quant_bits); }
    if ((params.flags & LN_QUANT_OUT) != 0u) { fq_row(y0, params.qout_offset + r * w, w, params.quant_bits); }
  }
}
