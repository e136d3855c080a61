// Embedding gather, one workgroup per row:
//   act[out + r * d + j] = item_emb[id_r * d + j] * scale + pos_emb[slot_r * d + j]
// SASRec: the real items of the window compacted to rows 0..n-1 (ids[ids_offset + r], slots
// [slots_offset + r] = position in the left-padded window), scale = sqrt(d), with positions.
// Caser: the L rows of the window (id 0 = padding -> zero row), scale = 1, no positions.
//
// Rows: row_mode ROWS_ALL = [0, run.n), ROWS_FIXED = [0, fixed_rows).
// q8 != 0: item_emb is the 8-bit table in `items` (item_table_lib.wgsl), not model[emb_offset ..].

struct Params {
  d: u32,
  row_mode: u32,
  fixed_rows: u32,
  out_offset: u32,
  emb_offset: u32,
  pos_offset: u32,
  has_pos: u32,
  scale: f32,
  ids_offset: u32,
  slots_offset: u32,
  q8: u32,
  q8_row_words: u32,
  q8_scales_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1 (run) and 2 (act): engine_run_lib.wgsl, prepended by the program.
@group(0) @binding(3) var<storage, read> model: array<f32>;
@group(0) @binding(4) var<storage, read> ids: array<u32>;
@group(0) @binding(5) var<storage, read> items: array<u32>;

fn item_value(id: u32, e0: u32, j: u32) -> f32 {
  if (params.q8 != 0u) { return item_code(params.q8_row_words, id, j) * item_scale(params.q8_scales_offset, id); }
  return model[e0 + j];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let rows = row_range(params.row_mode, params.fixed_rows);
  let r = rows.x + wg.x;
  if (r >= rows.y) { return; }
  let d = params.d;
  let id = ids[params.ids_offset + r];
  let e0 = params.emb_offset + id * d;
  let y0 = params.out_offset + r * d;
  if (id == 0u) {
    for (var j = lid; j < d; j += WORKGROUP_SIZE) { act[y0 + j] = 0.0; }
    return;
  }
  if (params.has_pos != 0u) {
    let p0 = params.pos_offset + ids[params.slots_offset + r] * d;
    for (var j = lid; j < d; j += WORKGROUP_SIZE) { act[y0 + j] = item_value(id, e0, j) * params.scale + model[p0 + j]; }
  } else {
    for (var j = lid; j < d; j += WORKGROUP_SIZE) { act[y0 + j] = item_value(id, e0, j) * params.scale; }
  }
}
