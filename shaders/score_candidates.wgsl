// Candidate scores, one invocation per candidate (src/core/forward/rank.ts):
//   CAND_MODE_IDS:        score[i] = rep . model.emb[id_i] + model.bias[id_i]   (catalogue ids; no bias
//                         term when has_bias = 0, as SASRec)
//   CAND_MODE_ALL:        as CAND_MODE_IDS with id_i = i + 1: the whole catalogue
//   CAND_MODE_EMBEDDINGS: score[i] = rep . cand[i] + cand_bias[i]                (embeddings the shop sent)
// q8 != 0: the scoring table is the 8-bit table in `items` (item_table_lib.wgsl), not model[emb_offset ..].
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
  q8: u32,
  q8_row_words: u32,
  q8_scales_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1 (run) and 2 (act): engine_run_lib.wgsl, prepended by the program.
@group(0) @binding(3) var<storage, read> model: array<f32>;
@group(0) @binding(4) var<storage, read> ids: array<u32>;
@group(0) @binding(5) var<storage, read> cand: array<f32>;
@group(0) @binding(6) var<storage, read> items: array<u32>;

fn catalogue_score(id: u32) -> f32 {
  let dim = params.dim;
  var s = 0.0;
  if (params.q8 != 0u) {
    // Each value dequantized exactly as core does (code * scale), then the same sum as below.
    let scale = item_scale(params.q8_scales_offset, id);
    for (var c = 0u; c < dim; c++) { s += act[params.rep_offset + c] * (item_code(params.q8_row_words, id, c) * scale); }
  } else {
    let e0 = params.emb_offset + id * dim;
    for (var c = 0u; c < dim; c++) { s += act[params.rep_offset + c] * model[e0 + c]; }
  }
  if (params.has_bias != 0u) { s += model[params.bias_offset + id]; }
  return s;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= run.cand_count) { return; }
  let dim = params.dim;
  var s = 0.0;
  switch run.cand_mode {
    case CAND_MODE_IDS: {
      s = catalogue_score(ids[params.ids_offset + i]);
    }
    case CAND_MODE_ALL: {
      s = catalogue_score(i + 1u);
    }
    case CAND_MODE_EMBEDDINGS, default: {
      let e0 = i * dim;
      for (var c = 0u; c < dim; c++) { s += act[params.rep_offset + c] * cand[e0 + c]; }
      s += cand[params.cand_bias_offset + i];
    }
  }
  act[params.scores_offset + i] = s;
}
