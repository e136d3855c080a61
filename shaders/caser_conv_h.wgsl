// Caser's horizontal convolutions with max pooling over time (src/core/forward/caser.ts), all
// heights of one dispatch together, weights read packed:
//   f[out_offset(h) + o] = relu( max_i ( deq(conv.h<h>)[o] . E[i .. i + h - 1] + bias_h[o] ) )
// for windows i = 0 .. L - h; a window is h consecutive rows of the [L, d] image E, i.e. h * d
// contiguous values, so it is one dot product of the layer's row length.
//
// A workgroup covers TILE packed positions of one width group of one height ("job"); tiles of
// every (job, group) are numbered consecutively on the host. Packed layout of
// src/gpu/packed-layout.ts: a row's first word follows from the width groups, the scale from the
// channel's (min, max) (packed_scale_lib.wgsl).

struct Job {
  table_start: u32,
  word_start: u32,
  h: u32,
  group_count: u32,
  out_offset: u32,
  bias_offset: u32,
  first_tile: u32,
  _pad: u32,
  groups: array<vec4<u32>, 8>,   // (bits, first packed position, end, first tile)
}

struct Params {
  job_count: u32,
  d: u32,
  window: u32,      // L
  img_offset: u32,
  jobs: array<Job, 8>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> act: array<f32>;
@group(0) @binding(2) var<storage, read> model: array<f32>;
@group(0) @binding(3) var<storage, read> words: array<u32>;
@group(0) @binding(4) var<storage, read> ranges: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read> chan: array<u32>;

const TILE: u32 = 16u;

@compute @workgroup_size(16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var ji = 0u;
  for (var i = 1u; i < params.job_count; i++) {
    if (wg.x >= params.jobs[i].first_tile) { ji = i; }
  }
  let job = params.jobs[ji];
  let d = params.d;
  let k_len = job.h * d;
  var g = job.groups[0];
  var group_word = job.word_start;
  for (var i = 1u; i < job.group_count; i++) {
    let gi = job.groups[i];
    if (wg.x >= gi.w) {
      group_word += (g.z - g.y) * words_per_row(g.x, k_len);
      g = gi;
    }
  }
  let p = g.y + (wg.x - g.w) * TILE + lid;
  if (p >= g.z) { return; }

  let t = job.table_start + p;
  let range = ranges[t];
  let channel = u16_at(chan[t >> 1u], t);
  let bits = g.x;
  let vpw = 32u / bits;
  let mask = (1u << bits) - 1u;
  let s = bitcast<f32>(channel_scale_bits(range.x, range.y, bits));
  let z = bitcast<f32>(range.x);
  let top = bitcast<f32>(range.y);
  let word_count = (k_len + vpw - 1u) / vpw;
  let word_base = group_word + (p - g.y) * word_count;
  let bias = model[job.bias_offset + channel];

  var best = -3.4028234e38;
  for (var win = 0u; win + job.h <= params.window; win++) {
    let x0 = params.img_offset + win * d;
    var acc = 0.0;
    for (var w = 0u; w < word_count; w++) {
      let word = words[word_base + w];
      let k0 = w * vpw;
      let count = min(vpw, k_len - k0);
      for (var i = 0u; i < count; i++) {
        let q = (word >> (i * bits)) & mask;
        acc += act[x0 + k0 + i] * select(z + f32(q) * s, top, q == mask);
      }
    }
    best = max(best, acc + bias);
  }
  act[job.out_offset + channel] = max(best, 0.0);
}
