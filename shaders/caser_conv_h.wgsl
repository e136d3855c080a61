// Caser's horizontal convolutions with max pooling over time (src/core/forward/caser.ts), all
// heights of one dispatch together, weights read packed:
//   f[out_offset(h) + o] = relu( max_i ( deq(conv.h<h>)[o] . E[i .. i + h - 1] + bias_h[o] ) )
// for windows i = 0 .. L - h; a window is h consecutive rows of the [L, d] image E, i.e. h * d
// contiguous values, so it is one dot product of the layer's row length.
//
// A workgroup covers CONV_H_TILE packed positions of one width group of one height ("job"); tiles
// of every (job, group) are numbered consecutively on the host. Packed layout of
// src/gpu/packed-layout.ts: a row's first word follows from the width groups, the scale from the
// channel's (min, max) (packed_scale_lib.wgsl); each window is one packed_dot (packed_dot_lib.wgsl).
// Constants in capitals: src/gpu/shader-constants.ts.

struct Job {
  table_start: u32,
  word_start: u32,
  h: u32,
  group_count: u32,
  out_offset: u32,
  bias_offset: u32,
  first_tile: u32,
  _pad: u32,
  groups: array<vec4<u32>, MAX_GROUPS>,   // (bits, first packed position, end, first tile)
}

struct Params {
  job_count: u32,
  d: u32,
  window: u32,      // L
  img_offset: u32,
  jobs: array<Job, CONV_H_MAX_JOBS>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> act: array<f32>;
@group(0) @binding(2) var<storage, read> model: array<f32>;
@group(0) @binding(3) var<storage, read> words: array<u32>;
@group(0) @binding(4) var<storage, read> ranges: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read> chan: array<u32>;

// packed_dot reads one window of the image from its first element in act.
alias PackedDotAcc = f32;
alias PackedDotRows = u32;
fn packed_dot_x(x0: PackedDotRows, k: u32) -> PackedDotAcc {
  return act[x0 + k];
}

@compute @workgroup_size(CONV_H_TILE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var ji = 0u;
  for (var i = 1u; i < params.job_count; i++) {
    if (wg.x >= params.jobs[i].first_tile) { ji = i; }
  }
  let job = params.jobs[ji];
  let d = params.d;
  let k_len = job.h * d;
  let grp = width_group(job.groups, job.group_count, job.word_start, k_len, wg.x);
  let p = grp.start + (wg.x - grp.first_tile) * CONV_H_TILE + lid;
  if (p >= grp.end) { return; }

  let t = job.table_start + p;
  let channel = u16_at(chan[t >> 1u], t);
  let row = packed_row(ranges[t], grp.bits, k_len);
  let word_base = grp.first_word + (p - grp.start) * row.words;
  let bias = model[job.bias_offset + channel];

  var best = -3.4028234e38;
  for (var win = 0u; win + job.h <= params.window; win++) {
    let acc = packed_dot(row, word_base, k_len, params.img_offset + win * d);
    best = max(best, acc + bias);
  }
  act[job.out_offset + channel] = max(best, 0.0);
}
