// Mixed-bit matmul: y[m, j] = sum_k x[m, k] * deq(W)[j, k] + b[j] for one packed layer (words
// in src/core/packing.ts layout; per-channel (min, max) and u16 channel index as in
// src/gpu/packed-layout.ts), unpacking codes in registers with one shift and one mask.
//
// A workgroup covers TILE_N packed positions of ONE width group by TILE_M rows of x, so `bits`
// (and with it the word stride and unpack loop) is uniform in the workgroup: mixed widths never
// diverge inside it. Tiles of all groups of the layer share one dispatch (x: tiles, y: row tiles);
// each group's first tile index comes from the host. A row's words start at the group's first word
// (the rows of earlier groups, summed here) plus its index in the group times the words per row.
// Output is written in the original channel order (chan), at y[y_offset + m * y_stride + channel].
//
// Dequantization is core's formula (packed_weight in packed_scale_lib.wgsl): the weights match the
// CPU's bit for bit whether or not the driver fuses the multiply-add.

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
  groups: array<vec4<u32>, 8>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> words: array<u32>;
// Per packed position: (min, max) as f32 bits; original channel as u16, two per u32.
@group(0) @binding(3) var<storage, read> ranges: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read> chan: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

const TILE_N: u32 = 16u;
const TILE_M: u32 = 4u;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  // The workgroup's width group: the last one whose first tile is <= this tile (uniform).
  let k_len = params.row_length;
  let grp = width_group(params.groups, params.group_count, params.word_start, k_len, wg.x);
  let p = grp.start + (wg.x - grp.first_tile) * TILE_N + lid % TILE_N;
  let m = wg.y * TILE_M + lid / TILE_N;
  if (p >= grp.end || m >= params.rows) { return; }

  let t = params.table_start + p;
  let channel = u16_at(chan[t >> 1u], t);
  let row = packed_row(ranges[t], grp.bits, k_len);
  let x_row = params.x_offset + m * k_len;
  let word_base = grp.first_word + (p - grp.start) * row.words;

  var acc = 0.0;
  for (var w = 0u; w < row.words; w++) {
    let word = words[word_base + w];
    let k0 = w * row.vpw;
    let count = min(row.vpw, k_len - k0);
    for (var i = 0u; i < count; i++) {
      acc += x[x_row + k0 + i] * packed_weight(row, word, i);
    }
  }
  if (params.has_bias != 0u) { acc += bias[channel]; }
  y[params.y_offset + m * params.y_stride + channel] = acc;
}
