// Caser's vertical convolution (src/core/forward/caser.ts), weights read packed:
//   f[fi * d + j] = sum_l deq(conv.v)[fi, l] * E[l * d + j] + bias[fi]
// E is the [L, d] embedding image (or its quantized copy) in `act`; the output is f-major.
// Workgroup grid: x = column tiles of WORKGROUP_SIZE, y = packed position (so `bits` is uniform in a
// workgroup). Packed layout of src/gpu/packed-layout.ts: the position's width group gives its width
// and first word, its (min, max) the scale (packed_scale_lib.wgsl); the sum over l is packed_dot
// (packed_dot_lib.wgsl) down column j of the image. Constants in capitals: src/gpu/shader-constants.ts.

struct Params {
  table_start: u32,
  word_start: u32,
  window: u32,      // L = the layer's row length
  d: u32,
  img_offset: u32,
  out_offset: u32,
  bias_offset: u32,
  group_count: u32,
  // Per width group: (bits, first packed position, end packed position, first position).
  groups: array<vec4<u32>, MAX_GROUPS>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> act: array<f32>;
@group(0) @binding(2) var<storage, read> model: array<f32>;
@group(0) @binding(3) var<storage, read> words: array<u32>;
@group(0) @binding(4) var<storage, read> ranges: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read> chan: array<u32>;

// packed_dot reads column j of the image: element l of the column is img[l * d + j].
alias PackedDotAcc = f32;
alias PackedDotRows = u32;
fn packed_dot_x(column: PackedDotRows, l: u32) -> PackedDotAcc {
  return act[column + l * params.d];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = wg.x * WORKGROUP_SIZE + lid;
  if (j >= params.d) { return; }
  let p = wg.y;
  // The position's width group (uniform): one position per tile, so a group's first tile is its
  // first position (the host writes them so).
  let grp = width_group(params.groups, params.group_count, params.word_start, params.window, p);
  let t = params.table_start + p;
  let row = packed_row(ranges[t], grp.bits, params.window);
  let word_base = grp.first_word + (p - grp.start) * row.words;
  let acc = packed_dot(row, word_base, params.window, params.img_offset + j);
  let fi = u16_at(chan[t >> 1u], t);
  act[params.out_offset + fi * params.d + j] = acc + model[params.bias_offset + fi];
}
