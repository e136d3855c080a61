// Fused mixed-bit matmul of up to FUSED_MAX_JOBS = 3 layers ("jobs") in one dispatch, reading the model-wide packed
// buffers of QuantizedModelWeights (src/gpu/quantized-weights.ts; layout of src/gpu/packed-layout.ts:
// core's words at the layer's word base, (min, max) and the u16 channel per packed position at its
// table base) and the activations in `act`:
//
//   y[m, j] = epilogue( sum_k x[m, k] * deq(W)[j, k] )
//   epilogue: + bias[j] (FUSED_BIAS), relu (FUSED_RELU), residual r[m, j] + . (FUSED_RESIDUAL)
//
// which is src/core/forward/ops.ts linearRows (k ascending, one accumulator per output) followed by
// the forward's reluInPlace / residual add, in that order. SASRec runs Q, K and V as one dispatch.
//
// Work split: a workgroup (FUSED_TILE_N * FUSED_TILE_M = 32 invocations) covers FUSED_TILE_N packed
// positions of ONE width group of one job (so `bits` is uniform in it) by FUSED_TILE_M row blocks of
// FUSED_ROWS_PER_INVOCATION = 8 rows; each invocation unpacks its channel's codes once per word and
// feeds 8 rows (a mat2x4 accumulator: two vec4 columns), which halves the unpack work per
// multiply-add against 4 rows. Tiles of every (job, group) are numbered consecutively on the host
// (x dimension); y enumerates row tiles. Row ranges: row_range's ROWS_* modes (engine_run_lib.wgsl).
//
// Dequantization is core's formula (packed_weight in packed_scale_lib.wgsl, bit for bit the CPU's
// weights), in packed_dot's loop (packed_dot_lib.wgsl). A row's first word: its width group's first
// word (width_group: the job's word base plus the rows of the earlier groups) plus its index in the
// group times the words per row. Constants in capitals: src/gpu/shader-constants.ts.

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
  groups: array<vec4<u32>, MAX_GROUPS>,
}

struct Params {
  job_count: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
  jobs: array<Job, FUSED_MAX_JOBS>,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1 (run) and 2 (act): engine_run_lib.wgsl, prepended by the program.
@group(0) @binding(3) var<storage, read> model: array<f32>;
@group(0) @binding(4) var<storage, read> words: array<u32>;
@group(0) @binding(5) var<storage, read> ranges: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read> chan: array<u32>;

// The code below unrolls the rows of one invocation: two vec4 columns of a mat2x4.
const_assert FUSED_ROWS_PER_INVOCATION == 8u;

// packed_dot multiplies 8 rows at once: their first elements in act, as two vec4 columns.
alias PackedDotAcc = mat2x4<f32>;
alias PackedDotRows = array<vec4<u32>, 2>;
fn packed_dot_x(x: PackedDotRows, k: u32) -> PackedDotAcc {
  return PackedDotAcc(
    vec4<f32>(act[x[0].x + k], act[x[0].y + k], act[x[0].z + k], act[x[0].w + k]),
    vec4<f32>(act[x[1].x + k], act[x[1].y + k], act[x[1].z + k], act[x[1].w + k]),
  );
}

@compute @workgroup_size(FUSED_TILE_N * FUSED_TILE_M)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var ji = 0u;
  for (var i = 1u; i < params.job_count; i++) {
    if (wg.x >= params.jobs[i].first_tile) { ji = i; }
  }
  let job = params.jobs[ji];
  let k_len = job.row_length;
  let grp = width_group(job.groups, job.group_count, job.word_start, k_len, wg.x);
  let p = grp.start + (wg.x - grp.first_tile) * FUSED_TILE_N + lid % FUSED_TILE_N;
  let rows = row_range(job.row_mode, job.fixed_rows);
  let end = rows.y;
  let m0 = rows.x + (wg.y * FUSED_TILE_M + lid / FUSED_TILE_N) * FUSED_ROWS_PER_INVOCATION;
  if (p >= grp.end || m0 >= end) { return; }

  let t = job.table_start + p;
  let row = packed_row(ranges[t], grp.bits, k_len);
  // Rows past the end re-read the last row (in bounds) and are not stored.
  let last = end - 1u;
  let xs = job.x_stride;
  let x = PackedDotRows(
    job.x_offset + vec4<u32>(m0, min(m0 + 1u, last), min(m0 + 2u, last), min(m0 + 3u, last)) * xs,
    job.x_offset + vec4<u32>(min(m0 + 4u, last), min(m0 + 5u, last), min(m0 + 6u, last), min(m0 + 7u, last)) * xs,
  );
  let word_base = grp.first_word + (p - grp.start) * row.words;
  let acc = packed_dot(row, word_base, k_len, x);

  // One call per row with a constant component: a loop indexing the accumulators with a variable
  // could push them out of registers.
  let ch = u16_at(chan[t >> 1u], t);
  store(job, ch, m0, end, acc[0].x);
  store(job, ch, m0 + 1u, end, acc[0].y);
  store(job, ch, m0 + 2u, end, acc[0].z);
  store(job, ch, m0 + 3u, end, acc[0].w);
  store(job, ch, m0 + 4u, end, acc[1].x);
  store(job, ch, m0 + 5u, end, acc[1].y);
  store(job, ch, m0 + 6u, end, acc[1].z);
  store(job, ch, m0 + 7u, end, acc[1].w);
}

// Epilogue of one output: + bias, ReLU, residual, in the CPU forward's order.
fn store(job: Job, ch: u32, m: u32, end: u32, acc: f32) {
  if (m >= end) { return; }
  var y = acc;
  if ((job.flags & FUSED_BIAS) != 0u) { y += model[job.bias_offset + ch]; }
  if ((job.flags & FUSED_RELU) != 0u) { y = max(y, 0.0); }
  if ((job.flags & FUSED_RESIDUAL) != 0u) { y = act[job.res_offset + m * job.res_stride + ch] + y; }
  act[job.y_offset + m * job.y_stride + ch] = y;
}
