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
    // One load per word of four codes, decoded and dequantized together (each value code * scale,
    // exactly as core), four products summed per step.
    let scale = item_scale(params.q8_scales_offset, id);
    let w0 = id * params.q8_row_words;
    let full = dim / 4u;
    let r0 = params.rep_offset;
    for (var w = 0u; w < full; w++) {
      let word = items[w0 + w];
      let codes = vec4<i32>(bitcast<i32>(word << 24u), bitcast<i32>(word << 16u), bitcast<i32>(word << 8u), bitcast<i32>(word)) >> vec4<u32>(24u);
      let c = r0 + 4u * w;
      s += dot(vec4<f32>(act[c], act[c + 1u], act[c + 2u], act[c + 3u]), vec4<f32>(codes) * scale);
    }
    for (var c = 4u * full; c < dim; c++) { s += act[r0 + c] * (item_code(params.q8_row_words, id, c) * scale); }
  } else {
    // The same four-at-a-time sum over the float32 table.
    let e0 = params.emb_offset + id * dim;
    let full = dim / 4u;
    let r0 = params.rep_offset;
    for (var w = 0u; w < full; w++) {
      let c = 4u * w;
      s += dot(
        vec4<f32>(act[r0 + c], act[r0 + c + 1u], act[r0 + c + 2u], act[r0 + c + 3u]),
        vec4<f32>(model[e0 + c], model[e0 + c + 1u], model[e0 + c + 2u], model[e0 + c + 3u]),
      );
    }
    for (var c = 4u * full; c < dim; c++) { s += act[r0 + c] * model[e0 + c]; }
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
