// Library (no entry point): core's per-channel step (src/core/quantize.ts channelScale) computed
// exactly from the channel's min and max with u32 arithmetic, so the packed weights need not store
// it: every kernel that dequantizes recomputes it from the (min, max) pair it reads anyway, and the
// adapt kernel uses the same function, so all of them agree bit for bit with core. Also the u16
// channel index, words-per-row, width-group and unpacking helpers of the packed layout
// (src/gpu/packed-layout.ts).
// The programs prepend this text (src/gpu/wgsl-libs.ts).
//
// Straight-line u32 code on purpose: it runs once per invocation of every dequantizing kernel, and
// SIMD implementations on a CPU (SwiftShader) pay for every instruction of a shader whatever
// branches the lanes take.

const PK_SIGN: u32 = 0x80000000u;

fn f32_mant(bits: u32) -> u32 {
  let f = bits & 0x7fffffu;
  return select(f | 0x800000u, f, ((bits >> 23u) & 0xffu) == 0u);
}
fn f32_exp(bits: u32) -> i32 {
  let e = i32((bits >> 23u) & 0xffu);
  return select(e - 150, -149, e == 0);
}

// f32 bits of sm * 2^e (1 <= sm <= 2^24), known to be representable.
fn f32_bits(sm: u32, e: i32) -> u32 {
  let t = firstLeadingBit(sm);
  var m24 = sm;
  var e2 = e;
  if (t <= 23u) {
    m24 = sm << (23u - t);
    e2 = e - i32(23u - t);
  } else {
    m24 = sm >> (t - 23u);
    e2 = e + i32(t - 23u);
  }
  let biased = e2 + 150;
  if (biased >= 1) { return (u32(biased) << 23u) | (m24 & 0x7fffffu); }
  return m24 >> u32(1 - biased);
}

// core's channelScale as f32 bits for a channel with min `lo` < max `hi` (f32 bits, -0 normalised
// to +0, |values| < 2^125); 0 for a constant channel and for an off channel (bits 0, whose range
// is (0, 0) anyway: n = 0 must not reach the division below).
//
// core: D = fl64(M - m); x = fl64(D / n); s = smallest f32 >= max(x, 2^-149) with at most
// 24 - bits significant bits (n = 2^bits - 1). Rounding the quotient never matters: D has a 53-bit
// significand, so D / n lies more than 2^-53 (relative) away from any such value it does not equal.
// Rounding D matters in one case only: M and m of opposite signs with the smaller magnitude S at
// most half an f64 ulp of the larger L, where fl64(L + S) = L; anywhere else the exact difference
// gives the same s. So: s = smallest such value with n * s >= D, D = exact M - m (or L in that
// case), worked out on D at the scale 2^base, base = floor(log2 L) - 29, where L is exact and D
// fits in 31 bits; bits of S below 2^base only tell whether D lies a little above an integer.
fn channel_scale_bits(lo: u32, hi: u32, bits: u32) -> u32 {
  if (lo == hi || bits == 0u) { return 0u; }
  let n = (1u << bits) - 1u;
  let opposite = ((lo ^ hi) & PK_SIGN) != 0u;
  let big = max(lo & ~PK_SIGN, hi & ~PK_SIGN); // magnitudes compare as their bit patterns
  let small = min(lo & ~PK_SIGN, hi & ~PK_SIGN);
  let big_m = f32_mant(big);
  let big_e = f32_exp(big) + i32(firstLeadingBit(big_m)); // floor(log2 L)
  let base = big_e - 29;
  let big_i = big_m << u32(f32_exp(big) - base); // shift in 6..29
  let small_m = f32_mant(small);
  let shift = f32_exp(small) - base;
  let right = u32(clamp(-shift, 0, 31));
  var small_i = select(small_m >> right, small_m << u32(clamp(shift, 0, 31)), shift >= 0);
  if (shift <= -32) { small_i = 0u; }
  let sticky = shift < 0 && select((small_i << right) != small_m, small_m != 0u, shift <= -32);
  // S <= 2^(floor(log2 L) - 53), compared as bit patterns: fl64(L + S) = L.
  let half_ulp_exp = big_e - 53;
  var half_ulp = u32(max(half_ulp_exp + 127, 0)) << 23u;
  if (half_ulp_exp < -126) { half_ulp = select(0u, 1u << u32(max(half_ulp_exp + 149, 0)), half_ulp_exp >= -149); }
  let up = opposite && sticky && small > half_ulp; // D is a little above d
  let d = select(big_i - small_i, big_i + small_i, opposite); // D = d * 2^base, minus a little when same-sign sticky
  let t = firstLeadingBit(d);
  // floor(log2(D / n)) = floor(log2 D) - bits, plus 1 when the top `bits` bits of D are all ones
  // (D >= n * 2^(t - bits + 1)).
  let tb = i32(t) - i32(bits) + 1;
  let top_bits = select(d << u32(clamp(-tb, 0, 31)), d >> u32(clamp(tb, 0, 31)), tb >= 0);
  let log_q = i32(t) + base - i32(bits) + select(0, 1, top_bits == n);
  // Quantum of s: 2^(floor(log2(D / n)) - (23 - bits)), at least 2^-149; s = ceil(D / (n * 2^q)) * 2^q.
  let q = max(log_q - 23 + i32(bits), -149);
  let j = q - base;
  let jr = u32(clamp(j, 0, 31));
  let rest = d & ((1u << jr) - 1u);
  var a = select(d << u32(clamp(-j, 0, 31)), (d >> jr) + select(0u, 1u, rest != 0u || up), j >= 0);
  if (j >= 32) { a = 1u; }
  return f32_bits((a + n - 1u) / n, q);
}

// The u16 at index t of an array of u32 holding two per word (low half first).
fn u16_at(word: u32, t: u32) -> u32 {
  return (word >> ((t & 1u) * 16u)) & 0xffffu;
}

// Codes per word: 32 / bits, and 0 for an off channel (bits 0), which stores no words. WGSL's
// u32 division by zero yields the dividend, so 0 needs its own case.
fn values_per_word(bits: u32) -> u32 {
  return select(32u / max(bits, 1u), 0u, bits == 0u);
}

// Words of a row of `row_length` codes of `bits` bits (no code straddles two words); 0 when off.
fn words_per_row(bits: u32, row_length: u32) -> u32 {
  let vpw = 32u / max(bits, 1u);
  return select((row_length + vpw - 1u) / vpw, 0u, bits == 0u);
}

// ---- Reading packed rows (the dequantizing kernels) ----

// The width group holding tile `tile` of a layer whose uniform lists `count` groups as (bits,
// first packed position, end, first tile) (groupTiles in src/gpu/packed-layer-ref.ts), and the word
// where the group's rows start: the layer's `word_start` plus the rows of the groups before it.
struct WidthGroup {
  bits: u32,
  start: u32,
  end: u32,
  first_tile: u32,
  first_word: u32,
}

fn width_group(groups: array<vec4<u32>, MAX_GROUPS>, count: u32, word_start: u32, row_length: u32, tile: u32) -> WidthGroup {
  var g = groups[0];
  var first_word = word_start;
  for (var i = 1u; i < count; i++) {
    let gi = groups[i];
    if (tile >= gi.w) {
      first_word += (g.z - g.y) * words_per_row(g.x, row_length);
      g = gi;
    }
  }
  return WidthGroup(g.x, g.y, g.z, g.w, first_word);
}

// One packed row: `vpw` codes of `bits` bits per word (low bits first), `words` words, and core's
// dequantization select(lo + f32(q) * step, hi, q == mask) with (lo, hi) the channel's (min, max)
// and the step recomputed exactly (channel_scale_bits). The product is exact in f32 by
// construction of the step, so the weights equal core's bit for bit whether or not the compiler
// fuses the multiply-add. An off channel (bits 0) has no words: packed_dot adds nothing, so the
// output is +0 plus the bias, as core's sum over all-zero weights.
struct PackedRow {
  bits: u32,
  vpw: u32,
  mask: u32,   // 2^bits - 1: the code of the max
  words: u32,
  lo: f32,
  step: f32,
  hi: f32,
}

fn packed_row(range: vec2<u32>, bits: u32, row_length: u32) -> PackedRow {
  let vpw = values_per_word(bits);
  return PackedRow(
    bits,
    vpw,
    (1u << bits) - 1u,
    words_per_row(bits, row_length),
    bitcast<f32>(range.x),
    bitcast<f32>(channel_scale_bits(range.x, range.y, bits)),
    bitcast<f32>(range.y),
  );
}

// The weight in slot i of one of the row's words.
fn packed_weight(row: PackedRow, word: u32, i: u32) -> f32 {
  let q = (word >> (i * row.bits)) & row.mask;
  return select(row.lo + f32(q) * row.step, row.hi, q == row.mask);
}
