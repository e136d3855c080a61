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
// Dequantization is core's formula: select(zero + f32(q) * scale, max, q == 2^bits - 1), with the
// scale recomputed exactly from (min, max, bits) (packed_scale_lib.wgsl). Its product is exact in
// f32 by construction of the scale, so the weights match the CPU's bit for bit whether or not the
// driver fuses the multiply-add.

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
  // ... and the words of the rows of the groups before it.
  let k_len = params.row_length;
  var g = params.groups[0];
  var group_word = params.word_start;
  for (var i = 1u; i < params.group_count; i++) {
    let gi = params.groups[i];
    if (wg.x >= gi.w) {
      group_word += (g.z - g.y) * words_per_row(g.x, k_len);
      g = gi;
    }
  }
  let bits = g.x;
  let p = g.y + (wg.x - g.w) * TILE_N + lid % TILE_N;
  let m = wg.y * TILE_M + lid / TILE_N;
  if (p >= g.z || m >= params.rows) { return; }

  let t = params.table_start + p;
  let range = ranges[t];
  let channel = u16_at(chan[t >> 1u], t);
  let vpw = 32u / bits;
  let mask = (1u << bits) - 1u;
  let s = bitcast<f32>(channel_scale_bits(range.x, range.y, bits));
  let z = bitcast<f32>(range.x);
  let top = bitcast<f32>(range.y);
  let x_row = params.x_offset + m * k_len;
  let word_count = (k_len + vpw - 1u) / vpw;
  let word_base = group_word + (p - g.y) * word_count;

  var acc = 0.0;
  for (var w = 0u; w < word_count; w++) {
    let word = words[word_base + w];
    let k0 = w * vpw;
    let count = min(vpw, k_len - k0);
    for (var i = 0u; i < count; i++) {
      let q = (word >> (i * bits)) & mask;
      let wq = select(z + f32(q) * s, top, q == mask);
      acc += x[x_row + k0 + i] * wq;
    }
  }
  if (params.has_bias != 0u) { acc += bias[channel]; }
  y[params.y_offset + m * params.y_stride + channel] = acc;
}
