// Causal multi-head attention over the compacted real positions (SASRec; padding keys are never
// stored, see src/core/forward/sasrec.ts), one invocation per (query row r, head):
//   out[r, head] = softmax_j<=r( q[r, head] . k[j, head] * scale ) . v[j, head]
// scale = 1 / sqrt(d / heads). Two passes over the keys (max, then exp-sum and the weighted sum of
// values accumulated in place in `out`), so no scores are stored and no barrier is needed: at
// batch 1 there are at most maxLen * heads invocations, each O(keys * d / heads).
//
// Rows: row_mode ROWS_ALL = [0, run.n), ROWS_LAST = the last real row only. q, k, v, out have row stride d.

struct Params {
  d: u32,
  heads: u32,
  row_mode: u32,
  scale: f32,
  q_offset: u32,
  k_offset: u32,
  v_offset: u32,
  out_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1 (run) and 2 (act): engine_run_lib.wgsl, prepended by the program.

fn score(qr: u32, j: u32, ho: u32, dh: u32) -> f32 {
  let kj = params.k_offset + j * params.d + ho;
  var s = 0.0;
  for (var c = 0u; c < dh; c++) { s += act[qr + c] * act[kj + c]; }
  return s * params.scale;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let heads = params.heads;
  // ROWS_ALL and ROWS_LAST only (no fixed row count): ROWS_FIXED would cover [0, run.n).
  let rows = row_range(params.row_mode, run.n);
  let r = rows.x + gid.x / heads;
  if (r >= rows.y) { return; }
  let d = params.d;
  let dh = d / heads;
  let ho = (gid.x % heads) * dh;
  let qr = params.q_offset + r * d + ho;
  let o = params.out_offset + r * d + ho;

  var m = score(qr, 0u, ho, dh);
  for (var j = 1u; j <= r; j++) { m = max(m, score(qr, j, ho, dh)); }
  for (var c = 0u; c < dh; c++) { act[o + c] = 0.0; }
  var sum = 0.0;
  for (var j = 0u; j <= r; j++) {
    let e = exp(score(qr, j, ho, dh) - m);
    sum += e;
    let vj = params.v_offset + j * d + ho;
    for (var c = 0u; c < dh; c++) { act[o + c] += e * act[vj + c]; }
  }
  for (var c = 0u; c < dh; c++) { act[o + c] = act[o + c] / sum; }
}
