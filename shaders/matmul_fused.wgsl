// Fused mixed-bit matmul of up to 3 layers ("jobs") in one dispatch, reading the model-wide packed
// buffers of QuantizedModelWeights (src/gpu/quantized-weights.ts; layout of src/gpu/packed-layout.ts:
// core's words at the layer's word base, (min, max) and the u16 channel per packed position at its
// table base) and the activations in `act`:
//
//   y[m, j] = epilogue( sum_k x[m, k] * deq(W)[j, k] )
//   epilogue: + bias[j] (flags & 1), relu (flags & 2), residual r[m, j] + . (flags & 4)
//
// which is src/core/forward/ops.ts linearRows (k ascending, one accumulator per output) followed by
// the forward's reluInPlace / residual add, in that order. SASRec runs Q, K and V as one dispatch.
//
// Work split: a workgroup (TILE_N * TILE_M = 32 invocations) covers TILE_N packed positions of ONE
// width group of one job (so `bits` is uniform in it) by TILE_M row blocks of ROWS rows; each
// invocation unpacks its channel's codes once per word and feeds ROWS = 8 rows (two vec4
// accumulators), which halves the unpack work per multiply-add against 4 rows. Tiles of every (job, group) are numbered consecutively on the
// host (x dimension); y enumerates row tiles. Row ranges: row_mode 0 = [0, run.n), 1 = the last
// real row only, 2 = [0, fixed_rows).
//
// Dequantization is core's formula (packed_weight in packed_scale_lib.wgsl, bit for bit the CPU's
// weights). A row's first word: its width group's first word (width_group: the job's word base plus
// the rows of the earlier groups) plus its index in the group times the words per row.

struct Job {
  table_start: u32,    // packed position 0 of the layer in ranges / chan
  word_start: u32,     // word 0 of the layer in words
  row_length: u32,     // K
  group_count: u32,
  x_offset: u32,
  x_stride: u32,
  y_offset: u32,
  y_stride: u32,
  bias_offset: u32,    // in model, original channel order
  res_offset: u32,
  res_stride: u32,
  flags: u32,
  row_mode: u32,
  fixed_rows: u32,
  first_tile: u32,
  _pad: u32,
  // Per width group: (bits, first packed position, end packed position, first tile).
  groups: array<vec4<u32>, 8>,
}

struct Params {
  job_count: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
  jobs: array<Job, 3>,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1 (run) and 2 (act): engine_run_lib.wgsl, prepended by the program.
@group(0) @binding(3) var<storage, read> model: array<f32>;
@group(0) @binding(4) var<storage, read> words: array<u32>;
@group(0) @binding(5) var<storage, read> ranges: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read> chan: array<u32>;

const TILE_N: u32 = 16u;
const TILE_M: u32 = 2u;
const ROWS: u32 = 8u;

@compute @workgroup_size(32)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var ji = 0u;
  for (var i = 1u; i < params.job_count; i++) {
    if (wg.x >= params.jobs[i].first_tile) { ji = i; }
  }
  let job = params.jobs[ji];
  let k_len = job.row_length;
  let grp = width_group(job.groups, job.group_count, job.word_start, k_len, wg.x);
  let p = grp.start + (wg.x - grp.first_tile) * TILE_N + lid % TILE_N;
  let rows = row_range(job.row_mode, job.fixed_rows);
  let end = rows.y;
  let m0 = rows.x + (wg.y * TILE_M + lid / TILE_N) * ROWS;
  if (p >= grp.end || m0 >= end) { return; }

  let t = job.table_start + p;
  let row = packed_row(ranges[t], grp.bits, k_len);
  // Rows past the end re-read the last row (in bounds) and are not stored.
  let last = end - 1u;
  let x0 = job.x_offset + m0 * job.x_stride;
  let x1 = job.x_offset + min(m0 + 1u, last) * job.x_stride;
  let x2 = job.x_offset + min(m0 + 2u, last) * job.x_stride;
  let x3 = job.x_offset + min(m0 + 3u, last) * job.x_stride;
  let x4 = job.x_offset + min(m0 + 4u, last) * job.x_stride;
  let x5 = job.x_offset + min(m0 + 5u, last) * job.x_stride;
  let x6 = job.x_offset + min(m0 + 6u, last) * job.x_stride;
  let x7 = job.x_offset + min(m0 + 7u, last) * job.x_stride;
  let word_base = grp.first_word + (p - grp.start) * row.words;

  var acc = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  for (var w = 0u; w < row.words; w++) {
    let word = words[word_base + w];
    let k0 = w * row.vpw;
    let count = min(row.vpw, k_len - k0);
    for (var i = 0u; i < count; i++) {
      let wq = packed_weight(row, word, i);
      let k = k0 + i;
      acc += vec4<f32>(act[x0 + k], act[x1 + k], act[x2 + k], act[x3 + k]) * wq;
      acc2 += vec4<f32>(act[x4 + k], act[x5 + k], act[x6 + k], act[x7 + k]) * wq;
    }
  }

  // One call per row with a constant component: a loop indexing the accumulators with a variable
  // could push them out of registers.
  let ch = u16_at(chan[t >> 1u], t);
  store(job, ch, m0, end, acc.x);
  store(job, ch, m0 + 1u, end, acc.y);
  store(job, ch, m0 + 2u, end, acc.z);
  store(job, ch, m0 + 3u, end, acc.w);
  store(job, ch, m0 + 4u, end, acc2.x);
  store(job, ch, m0 + 5u, end, acc2.y);
  store(job, ch, m0 + 6u, end, acc2.z);
  store(job, ch, m0 + 7u, end, acc2.w);
}

// Epilogue of one output: + bias, ReLU, residual, in the CPU forward's order.
fn store(job: Job, ch: u32, m: u32, end: u32, acc: f32) {
  if (m >= end) { return; }
  var y = acc;
  if ((job.flags & 1u) != 0u) { y += model[job.bias_offset + ch]; }
  if ((job.flags & 2u) != 0u) { y = max(y, 0.0); }
  if ((job.flags & 4u) != 0u) { y = act[job.res_offset + m * job.res_stride + ch] + y; }
  act[job.y_offset + m * job.y_stride + ch] = y;
}
