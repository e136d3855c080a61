// Mixed-bit matmul: y[m, j] = sum_k x[m, k] * deq(W)[j, k] + b[j] for one packed layer (words
// in src/core/packing.ts layout; per-channel (min, max) and u16 channel index as in
// src/gpu/packed-layout.ts), unpacking codes in registers with one shift and one mask.
//
// A workgroup covers MATMUL_TILE_N packed positions of ONE width group by MATMUL_TILE_M rows of x, so `bits`
// (and with it the word stride and unpack loop) is uniform in the workgroup: mixed widths never
// diverge inside it. Tiles of all groups of the layer share one dispatch (x: tiles, y: row tiles);
// each group's first tile index comes from the host. A row's words start at the group's first word
// (the rows of earlier groups, summed here) plus its index in the group times the words per row.
// Output is written in the original channel order (chan), at y[y_offset + m * y_stride + channel].
//
// Dequantization is core's formula (packed_weight in packed_scale_lib.wgsl): the weights match the
// CPU's bit for bit whether or not the driver fuses the multiply-add. The loop over the row's words
// is packed_dot (packed_dot_lib.wgsl). Constants in capitals: src/gpu/shader-constants.ts.

struct Params {
  rows: u32,          // M
  row_length: u32,    // K
  out_channels: u32,  // N
  group_count: u32,
  x_offset: u32,
  y_offset: u32,
  y_stride: u32,
  has_bias: u32,
  word_start: u32,    // the layer's first word in `words`
  table_start: u32,   // the layer's packed position 0 in `ranges` / `chan`
  _pad0: u32,
  _pad1: u32,
  // Per width group: (bits, first packed position, end packed position, first tile index).
  groups: array<vec4<u32>, MAX_GROUPS>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> words: array<u32>;
// Per packed position: (min, max) as f32 bits; original channel as u16, two per u32.
@group(0) @binding(3) var<storage, read> ranges: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read> chan: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

// packed_dot reads x from the row's first element.
alias PackedDotAcc = f32;
alias PackedDotRows = u32;
fn packed_dot_x(x_row: PackedDotRows, k: u32) -> PackedDotAcc {
  return x[x_row + k];
}

@compute @workgroup_size(MATMUL_TILE_N * MATMUL_TILE_M)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  // The workgroup's width group: the last one whose first tile is <= this tile (uniform).
  let k_len = params.row_length;
  let grp = width_group(params.groups, params.group_count, params.word_start, k_len, wg.x);
  let p = grp.start + (wg.x - grp.first_tile) * MATMUL_TILE_N + lid % MATMUL_TILE_N;
  let m = wg.y * MATMUL_TILE_M + lid / MATMUL_TILE_N;
  if (p >= grp.end || m >= params.rows) { return; }

  let t = params.table_start + p;
  let channel = u16_at(chan[t >> 1u], t);
  let row = packed_row(ranges[t], grp.bits, k_len);
  let word_base = grp.first_word + (p - grp.start) * row.words;
  var acc = packed_dot(row, word_base, k_len, params.x_offset + m * k_len);
  if (params.has_bias != 0u) { acc += bias[channel]; }
  y[params.y_offset + m * params.y_stride + channel] = acc;
}
