// Top-k, pass 1 of 2: one workgroup per chunk of TOPK_CHUNK scores ranks its chunk by counting
// (order of topk_order_lib.wgsl, on a copy of the chunk in workgroup memory) and keeps its best
// keep = min(k, TOPK_CHUNK) as (index, score bits) pairs: out[2 * (chunk * keep + rank)]. Slots a
// short last chunk cannot fill get TOPK_NONE. Every candidate of the global top k is in its chunk's
// top k, so topk_merge ranks only these survivors: ceil(C / TOPK_CHUNK) * keep of them instead of
// C (O(C * TOPK_CHUNK) + O((C / TOPK_CHUNK * k)^2) comparisons instead of O(C^2)).

struct Params {
  scores_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1 (run) and 2 (act): engine_run_lib.wgsl, prepended by the program.
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

var<workgroup> tile: array<u32, TOPK_CHUNK>;

@compute @workgroup_size(TOPK_CHUNK)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let count = run.cand_count;
  let base = wg.x * TOPK_CHUNK;
  // The host dispatches ceil(count / TOPK_CHUNK) workgroups, so base < count.
  let len = min(TOPK_CHUNK, count - base);
  let keep = min(run.k, TOPK_CHUNK);
  if (lid < len) { tile[lid] = bitcast<u32>(act[params.scores_offset + base + lid]); }
  workgroupBarrier();
  let slot0 = wg.x * keep;
  if (lid < len) {
    let si = tile[lid];
    var rank = 0u;
    for (var j = 0u; j < len; j++) {
      if (before(tile[j], j, si, lid)) { rank++; }
    }
    if (rank < keep) {
      out[2u * (slot0 + rank)] = base + lid;
      out[2u * (slot0 + rank) + 1u] = si;
    }
  } else if (lid < keep) {
    // Ranks in a chunk of len are 0..len-1: slots len..keep-1 stay empty.
    out[2u * (slot0 + lid)] = TOPK_NONE;
    out[2u * (slot0 + lid) + 1u] = 0u;
  }
}
