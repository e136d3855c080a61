// Top-k, pass 2 of 2: ranks the survivors topk_chunks left in out[0 ..) by counting (order of
// topk_order_lib.wgsl, global candidate indices) and writes the global top k as (index, score
// bits) pairs from out[final_offset]: out[final_offset + 2 * rank] = index. One invocation per
// survivor slot; empty slots (TOPK_NONE) rank after everything and are skipped. A survivor's own
// score is read from the scores in `act`; the others' from their pairs.

struct Params {
  final_offset: u32,
  scores_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1 (run) and 2 (act): engine_run_lib.wgsl, prepended by the program.
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let keep = min(run.k, TOPK_CHUNK);
  let slots = ((run.cand_count + TOPK_CHUNK - 1u) / TOPK_CHUNK) * keep;
  let i = gid.x;
  if (i >= slots) { return; }
  let ii = out[2u * i];
  if (ii == TOPK_NONE) { return; }
  let si = bitcast<u32>(act[params.scores_offset + ii]);
  var rank = 0u;
  for (var j = 0u; j < slots; j++) {
    let ij = out[2u * j];
    if (ij != TOPK_NONE && before(out[2u * j + 1u], ij, si, ii)) { rank++; }
  }
  if (rank < run.k) {
    out[params.final_offset + 2u * rank] = ii;
    out[params.final_offset + 2u * rank + 1u] = si;
  }
}
