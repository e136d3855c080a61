// Caser's vertical convolution (src/core/forward/caser.ts), weights read packed:
//   f[fi * d + j] = sum_l deq(conv.v)[fi, l] * E[l * d + j] + bias[fi]
// E is the [L, d] embedding image (or its quantized copy) in `act`; the output is f-major.
// Workgroup grid: x = column tiles of 64, y = packed position (so `bits` is uniform in a workgroup).
// Packed layout of src/gpu/packed-layout.ts: the position's width group gives its width and first
// word, its (min, max) the scale (packed_scale_lib.wgsl).

struct Params {
  table_start: u32,
  word_start: u32,
  window: u32,      // L = the layer's row length
  d: u32,
  img_offset: u32,
  out_offset: u32,
  bias_offset: u32,
  group_count: u32,
  // Per width group: (bits, first packed position, end packed position, unused).
  groups: array<vec4<u32>, 8>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> act: array<f32>;
@group(0) @binding(2) var<storage, read> model: array<f32>;
@group(0) @binding(3) var<storage, read> words: array<u32>;
@group(0) @binding(4) var<storage, read> ranges: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read> chan: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = wg.x * 64u + lid;
  if (j >= params.d) { return; }
  let p = wg.y;
  // The position's width group and the words of the rows of the groups before it (uniform).
  var g = params.groups[0];
  var group_word = params.word_start;
  for (var i = 1u; i < params.group_count; i++) {
    let gi = params.groups[i];
    if (p >= gi.y) {
      group_word += (g.z - g.y) * words_per_row(g.x, params.window);
      g = gi;
    }
  }
  let t = params.table_start + p;
  let range = ranges[t];
  let bits = g.x;
  let vpw = 32u / bits;
  let mask = (1u << bits) - 1u;
  let s = bitcast<f32>(channel_scale_bits(range.x, range.y, bits));
  let z = bitcast<f32>(range.x);
  let top = bitcast<f32>(range.y);
  let word_base = group_word + (p - g.y) * words_per_row(bits, params.window);
  var acc = 0.0;
  for (var l = 0u; l < params.window; l++) {
    let q = (words[word_base + l / vpw] >> ((l % vpw) * bits)) & mask;
    let w = select(z + f32(q) * s, top, q == mask);
    acc += w * act[params.img_offset + l * params.d + j];
  }
  let fi = u16_at(chan[t >> 1u], t);
  act[params.out_offset + fi * params.d + j] = acc + model[params.bias_offset + fi];
}
