// Caser's vertical convolution (src/core/forward/caser.ts), weights read packed:
//   f[fi * d + j] = sum_l deq(conv.v)[fi, l] * E[l * d + j] + bias[fi]
// E is the [L, d] embedding image (or its quantized copy) in `act`; the output is f-major.
// Workgroup grid: x = column tiles of 64, y = packed position (so `bits` is uniform in a workgroup).

struct Params {
  table_start: u32,
  word_start: u32,
  window: u32,      // L = the layer's row length
  d: u32,
  img_offset: u32,
  out_offset: u32,
  bias_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> act: array<f32>;
@group(0) @binding(2) var<storage, read> model: array<f32>;
@group(0) @binding(3) var<storage, read> words: array<u32>;
@group(0) @binding(4) var<storage, read> chan_meta: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> scale: array<f32>;
@group(0) @binding(6) var<storage, read> zero: array<f32>;
@group(0) @binding(7) var<storage, read> maxv: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = wg.x * 64u + lid;
  if (j >= params.d) { return; }
  let t = params.table_start + wg.y;
  let info = chan_meta[t];
  let bits = info.y;
  let vpw = info.w;
  let mask = (1u << bits) - 1u;
  let s = scale[t];
  let z = zero[t];
  let top = maxv[t];
  var acc = 0.0;
  for (var l = 0u; l < params.window; l++) {
    let q = (words[params.word_start + info.z + l / vpw] >> ((l % vpw) * bits)) & mask;
    let w = select(z + f32(q) * s, top, q == mask);
    acc += w * act[params.img_offset + l * params.d + j];
  }
  let fi = info.x;
  act[params.out_offset + fi * params.d + j] = acc + model[params.bias_offset + fi];
}
