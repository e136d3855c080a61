// Top-k by rank counting: rank(i) = #{ j : j ranks before i } under the total order of
// src/core/forward/rank.ts (ranksBefore):
//   1. higher score first; 2. equal scores (+0 == -0): lower index first;
//   3. NaN after every number, NaNs among themselves by index.
// The order is strict and total, so ranks are a permutation: candidate i with rank < k writes
// out[2 * rank] = i and out[2 * rank + 1] = its score's bits. One invocation per candidate, each
// reading every score (O(C^2) total, trivial for the few hundred candidates of a page; no barriers).

struct Params {
  scores_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1 (run) and 2 (act): engine_run_lib.wgsl, prepended by the program.
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

// NaN test on the bits: compilers may fold `x != x` away.
fn is_nan(bits: u32) -> bool {
  return (bits & 0x7fffffffu) > 0x7f800000u;
}

// Whether candidate a (score bits sa) ranks strictly before candidate b.
fn before(sa: u32, a: u32, sb: u32, b: u32) -> bool {
  let na = is_nan(sa);
  let nb = is_nan(sb);
  if (na != nb) { return nb; }
  if (!na) {
    let fa = bitcast<f32>(sa);
    let fb = bitcast<f32>(sb);
    if (fa != fb) { return fa > fb; }
  }
  return a < b;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let count = run.cand_count;
  let i = gid.x;
  if (i >= count) { return; }
  let si = bitcast<u32>(act[params.scores_offset + i]);
  var rank = 0u;
  for (var j = 0u; j < count; j++) {
    if (before(bitcast<u32>(act[params.scores_offset + j]), j, si, i)) { rank++; }
  }
  if (rank < run.k) {
    out[2u * rank] = i;
    out[2u * rank + 1u] = si;
  }
}
