// One-pass adaptation: per output channel, min-max quantize the frozen f32 weights to the channel's
// width and pack the codes, producing exactly core's packed words (src/core/packing.ts) and the
// channel's (min, max) pair; the step is not stored (packed_scale_lib.wgsl recomputes it).
//
// Work split: the host cuts the model into segments, one per width group of each layer (channels
// of one width, consecutive packed positions), and numbers ADAPT_TILE-channel tiles of every segment
// consecutively; a workgroup covers one tile, one invocation per channel. `bits` is therefore
// uniform in a workgroup (no divergence in the packing loop), each invocation owns whole output
// words (no atomics on them; one atomic counter appends the rare words left to the fix-up), and
// the per-channel row, word offset and width follow from the segment:
//   packed position p = segment start + tile offset + lid, channel = chan[p] (u16, from the host),
//   weights at weight_start + channel * row_length, words at word_start + local * words_per_row.
// An off segment (bits 0, core's OFF_BITS) reads no weights and packs no words: its channels get
// core's range (0, 0), so every kernel dequantizes them to 0.
//
// Bit-exactness with the CPU reference (src/core/quantize.ts), which computes in f64:
//   m, M = channel min / max, -0 normalised to +0      (integer compare on order-preserving keys)
//   s    = channel_scale_bits(m, M, bits)               (packed_scale_lib.wgsl)
//   q    = clamp(roundHalfEven(fl64(fl64(w - m) / s)), 0, n)
// The quotient is computed in f32 and used when it lies clearly away from a .5 rounding boundary
// (WGSL f32 division is not correctly rounded). The few codes it cannot decide are left zero and
// their word goes on a list (word index, slot mask) that shaders/adapt_fix_ties.wgsl, dispatched
// next in the same pass, completes with exact integer arithmetic. Keeping that code out of this
// kernel keeps the hot loop small: SwiftShader (WebGPU on the CPU) runs every instruction of a
// shader for every group of lanes, whether or not a lane takes the branch.

struct Params {
  segment_count: u32,
  // Verification mode: 1 leaves every code to the exact path (no f32 fast path).
  exact_only: u32,
  // Entries `fixes` holds: one per word the strategy packs, so it never fills up.
  fix_capacity: u32,
}

// Words with codes left to adapt_fix_ties.wgsl: (index in `words`, mask of the slots to fill).
struct Fixes {
  count: atomic<u32>,
  _pad: u32,
  entries: array<vec2<u32>>,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1-4 (weights, segments, chan, words): adapt_segments_lib.wgsl.
@group(0) @binding(5) var<storage, read_write> ranges: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read_write> fixes: Fixes;

// ---- f32 total order on bits: key(a) < key(b) <=> a < b (with -0 < +0). ----
fn order_key(bits: u32) -> u32 {
  return select(bits | PK_SIGN, ~bits, (bits & PK_SIGN) != 0u);
}
fn from_order_key(key: u32) -> u32 {
  return select(~key, key & ~PK_SIGN, (key & PK_SIGN) != 0u);
}

// Fast-path code of weight `w` (bits) in a channel with min `lo` and scale `s` (bits, nonzero),
// in bits 0..8, or PK_SIGN when only the exact path (adapt_fix_ties.wgsl) can decide it.
fn quantize_fast(w: u32, lo: u32, s: u32, n: u32) -> u32 {
  // The f32 quotient t is within |t| * 3 * 2^-23 <= 2^-13.4 of the exact one for t <= 256
  // (subtraction correctly rounded, division within 2.5 ulp), so its rounding agrees whenever the
  // fraction is farther than 2^-10 from .5. Requires a normal, not-tiny scale so that flushed
  // subnormal operands cannot move t by more than 2^-26.
  if (params.exact_only != 0u || ((s >> 23u) & 0xffu) < 27u) { return PK_SIGN; }
  let t = (bitcast<f32>(w) - bitcast<f32>(lo)) / bitcast<f32>(s);
  let fl = floor(t);
  let fr = t - fl;
  let q = min(u32(max(fl, 0.0)) + select(0u, 1u, fr > 0.5), n);
  return select(q, PK_SIGN, abs(fr - 0.5) <= 0.0009765625);
}

@compute @workgroup_size(ADAPT_TILE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let tile = wg.y * nwg.x + wg.x;
  // The workgroup's segment: the last one starting at or before this tile (uniform).
  let seg = segments[segment_at(params.segment_count, tile, false)];
  let local = (tile - seg.first_tile) * ADAPT_TILE + lid;
  if (tile < seg.first_tile || local >= seg.count) { return; }
  let t = seg.table_start + local;
  if (seg.bits == 0u) { // uniform in the workgroup: one segment per tile
    ranges[t] = vec2<u32>(0u, 0u);
    return;
  }
  let channel = u16_at(chan[t >> 1u], t);
  let len = seg.row_length;
  let row = seg.weight_start + channel * len;

  var lo = order_key(weights[row]);
  var hi = lo;
  for (var k = 1u; k < len; k++) {
    let key = order_key(weights[row + k]);
    lo = min(lo, key);
    hi = max(hi, key);
  }
  var lo_bits = from_order_key(lo);
  var hi_bits = from_order_key(hi);
  if (lo_bits == PK_SIGN) { lo_bits = 0u; }
  if (hi_bits == PK_SIGN) { hi_bits = 0u; }
  ranges[t] = vec2<u32>(lo_bits, hi_bits);

  let bits = seg.bits;
  let n = (1u << bits) - 1u;
  let s = channel_scale_bits(lo_bits, hi_bits, bits);
  let vpw = values_per_word(bits);
  let word_count = words_per_row(bits, len);
  let out = seg.word_start + local * word_count;
  for (var w = 0u; w < word_count; w++) {
    var word = 0u;
    var pending = 0u;
    if (s != 0u) {
      let k0 = w * vpw;
      let count = min(vpw, len - k0);
      for (var i = 0u; i < count; i++) {
        let q = quantize_fast(weights[row + k0 + i], lo_bits, s, n);
        if (q == PK_SIGN) { pending |= 1u << i; } else { word |= q << (i * bits); }
      }
    }
    words[out + w] = word;
    if (pending != 0u) {
      let e = atomicAdd(&fixes.count, 1u);
      if (e < params.fix_capacity) { fixes.entries[e] = vec2<u32>(out + w, pending); }
    }
  }
}
