// Candidate scores, one invocation per candidate (src/core/forward/rank.ts):
//   CAND_MODE_IDS:        score[i] = rep . model.emb[id_i] + model.bias[id_i]   (catalogue ids; no bias
//                         term when has_bias = 0, as SASRec)
//   CAND_MODE_EMBEDDINGS: score[i] = rep . cand[i] + cand_bias[i]                (embeddings the shop sent)
// rep and the scores live in `act`; candidate ids in `ids`, candidate embeddings in `cand`.

struct Params {
  dim: u32,
  rep_offset: u32,
  scores_offset: u32,
  ids_offset: u32,
  emb_offset: u32,
  bias_offset: u32,
  has_bias: u32,
  cand_bias_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1 (run) and 2 (act): engine_run_lib.wgsl, prepended by the program.
@group(0) @binding(3) var<storage, read> model: array<f32>;
@group(0) @binding(4) var<storage, read> ids: array<u32>;
@group(0) @binding(5) var<storage, read> cand: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= run.cand_count) { return; }
  let dim = params.dim;
  var s = 0.0;
  switch run.cand_mode {
    case CAND_MODE_IDS: {
      let id = ids[params.ids_offset + i];
      let e0 = params.emb_offset + id * dim;
      for (var c = 0u; c < dim; c++) { s += act[params.rep_offset + c] * model[e0 + c]; }
      if (params.has_bias != 0u) { s += model[params.bias_offset + id]; }
    }
    case CAND_MODE_EMBEDDINGS, default: {
      let e0 = i * dim;
      for (var c = 0u; c < dim; c++) { s += act[params.rep_offset + c] * cand[e0 + c]; }
      s += cand[params.cand_bias_offset + i];
    }
  }
  act[params.scores_offset + i] = s;
}
