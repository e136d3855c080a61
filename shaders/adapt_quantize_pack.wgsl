// One-pass adaptation: per output channel, min-max quantize the frozen f32 weights to the channel's
// width and pack the codes, producing exactly the bytes of src/core/packing.ts (words, scale, zero,
// max). One workgroup per channel (packed position) of the whole model, so `bits` is uniform in a
// workgroup and no atomics are needed: each invocation owns whole output words.
//
// Bit-exactness with the CPU reference (src/core/quantize.ts), which computes in f64:
//   m, M  = channel min / max, -0 normalised to +0      (integer compare on order-preserving keys)
//   D     = fl64(M - m); x = fl64(D / n)                (emulated f64, n = 2^bits - 1)
//   scale = smallest f32 >= max(x, 2^-149) with <= 24 - bits significant bits
//   q     = clamp(roundHalfEven(fl64(fl64(w - m) / scale)), 0, n)
// WGSL f32 division is not correctly rounded, so the per-weight quotient is first computed in f32
// and only used when it lies clearly away from a .5 rounding boundary; otherwise (rare) the f64
// path is emulated with u32 arithmetic. Weights are read as raw bits (array<u32>) so subnormals
// survive drivers that flush them in float arithmetic.

struct Params {
  row_count: u32,
  // Verification mode: 1 sends every weight through the emulated-f64 path (no f32 fast path).
  exact_only: u32,
}

// One quantizable row (= one output channel), in packed order of its layer.
struct Row {
  weight_start: u32, // index of the row's first weight in `weights`
  row_length: u32,
  word_start: u32,   // index of the row's first word in `words` (layer base + core's wordOffset)
  bits: u32,
  table_index: u32,  // index into scale / zero / maxv (layer table base + packed position)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read> rows: array<Row>;
@group(0) @binding(3) var<storage, read_write> words: array<u32>;
@group(0) @binding(4) var<storage, read_write> scale_out: array<u32>;
@group(0) @binding(5) var<storage, read_write> zero_out: array<u32>;
@group(0) @binding(6) var<storage, read_write> max_out: array<u32>;

const WG: u32 = 64u;
const SIGN: u32 = 0x80000000u;


// ---- f32 total order on bits: key(a) < key(b) <=> a < b (with -0 < +0). ----
fn order_key(bits: u32) -> u32 {
  return select(bits | SIGN, ~bits, (bits & SIGN) != 0u);
}
fn from_order_key(key: u32) -> u32 {
  return select(~key, key & ~SIGN, (key & SIGN) != 0u);
}

// ---- u64 as vec2<u32> (x = low word, y = high word). Shift amounts are < 64. ----
fn shl64(a: vec2<u32>, s: u32) -> vec2<u32> {
  if (s == 0u) { return a; }
  if (s >= 32u) { return vec2<u32>(0u, a.x << (s - 32u)); }
  return vec2<u32>(a.x << s, (a.y << s) | (a.x >> (32u - s)));
}
fn shr64(a: vec2<u32>, s: u32) -> vec2<u32> {
  if (s == 0u) { return a; }
  if (s >= 32u) { return vec2<u32>(a.y >> (s - 32u), 0u); }
  return vec2<u32>((a.x >> s) | (a.y << (32u - s)), a.y >> s);
}
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let lo = a.x + b.x;
  return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}
fn sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  return vec2<u32>(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}
fn lt64(a: vec2<u32>, b: vec2<u32>) -> bool {
  return a.y < b.y || (a.y == b.y && a.x < b.x);
}
fn is_zero64(a: vec2<u32>) -> bool {
  return a.x == 0u && a.y == 0u;
}
// Index of the highest set bit; a must be non-zero.
fn top_bit64(a: vec2<u32>) -> u32 {
  if (a.y != 0u) { return 32u + firstLeadingBit(a.y); }
  return firstLeadingBit(a.x);
}

// ---- Emulated binary64: value = mant * 2^exp, mant zero or with its top bit at bit 52. ----
struct F64 {
  mant: vec2<u32>,
  exp: i32,
}

// Rounds (v + sticky*epsilon) * 2^e to 53 significant bits, half to even; sticky means "the exact
// value is a little above v" (any nonzero amount below bit 0).
fn round53(v: vec2<u32>, sticky: bool, e: i32) -> F64 {
  if (is_zero64(v)) { return F64(v, 0); }
  let t = top_bit64(v);
  if (t <= 52u) { return F64(shl64(v, 52u - t), e - i32(52u - t)); }
  let k = t - 52u;
  var m = shr64(v, k);
  let rest = sub64(v, shl64(m, k));
  let half = shl64(vec2<u32>(1u, 0u), k - 1u);
  let above = lt64(half, rest);
  let tie = rest.x == half.x && rest.y == half.y;
  if (above || (tie && (sticky || (m.x & 1u) == 1u))) { m = add64(m, vec2<u32>(1u, 0u)); }
  var ee = e + i32(k);
  if (m.y == (1u << 21u)) { // carried into bit 53
    m = shr64(m, 1u);
    ee += 1;
  }
  return F64(m, ee);
}

fn f32_mant(bits: u32) -> u32 {
  let f = bits & 0x7fffffu;
  return select(f | 0x800000u, f, ((bits >> 23u) & 0xffu) == 0u);
}
fn f32_exp(bits: u32) -> i32 {
  let e = i32((bits >> 23u) & 0xffu);
  return select(e - 150, -149, e == 0);
}

// One f32 term placed at 2^base: magnitude bits and whether nonzero bits fell below 2^base.
struct Term {
  v: vec2<u32>,
  sticky: bool,
}
fn place(bits: u32, base: i32) -> Term {
  let m = f32_mant(bits);
  let s = f32_exp(bits) - base; // <= 39 by choice of base
  if (s >= 0) { return Term(shl64(vec2<u32>(m, 0u), u32(s)), false); }
  if (s <= -32) { return Term(vec2<u32>(0u, 0u), m != 0u); }
  let kept = m >> u32(-s);
  return Term(vec2<u32>(kept, 0u), (kept << u32(-s)) != m);
}

// fl64(a - b) for f32 bit patterns with a >= b. Both are aligned to 2^(maxExp - 39): a 24-bit
// significand then spans bits 39..62, and anything shifted below bit 0 only matters as sticky
// (it is more than 2^-16 ulp below the 53-bit rounding point).
fn sub_f32_as_f64(a: u32, b: u32) -> F64 {
  let base = max(f32_exp(a), f32_exp(b)) - 39;
  let ta = place(a, base);
  let tb = place(b, base);
  let a_neg = (a & SIGN) != 0u;
  let b_neg = (b & SIGN) != 0u;
  if (a_neg != b_neg) { // a >= 0 >= b: |a| + |b|
    return round53(add64(ta.v, tb.v), ta.sticky || tb.sticky, base);
  }
  // Same sign: the larger magnitude minus the smaller; a >= b makes the result non-negative.
  var big = ta;
  var small = tb;
  if (a_neg) {
    big = tb;
    small = ta;
  }
  if (small.sticky) { // big - (small + eps) = (big - small - 1) + (1 - eps)
    return round53(sub64(sub64(big.v, small.v), vec2<u32>(1u, 0u)), true, base);
  }
  return round53(sub64(big.v, small.v), big.sticky, base);
}

// fl64(x / (d * 2^d_exp)) for 1 <= d < 2^24, by restoring division until the quotient has >= 55
// significant bits; the remainder is the sticky bit.
fn div_f64(x: F64, d: u32, d_exp: i32) -> F64 {
  if (is_zero64(x.mant)) { return x; }
  var r = 0u;
  var q = vec2<u32>(0u, 0u);
  for (var i = 52i; i >= 0i; i--) {
    r = (r << 1u) | (shr64(x.mant, u32(i)).x & 1u);
    q = shl64(q, 1u);
    if (r >= d) {
      r -= d;
      q.x |= 1u;
    }
  }
  var k = 0i;
  while (q.y < (1u << 22u)) { // q < 2^54
    r = r << 1u;
    q = shl64(q, 1u);
    if (r >= d) {
      r -= d;
      q.x |= 1u;
    }
    k++;
  }
  return round53(q, r != 0u, x.exp - d_exp - k);
}

// Math.round-style half-to-even of a non-negative F64, clamped to n.
fn round_half_even_clamped(x: F64, n: u32) -> u32 {
  if (is_zero64(x.mant)) { return 0u; }
  if (x.exp >= 0) { return n; }
  let s = u32(-x.exp);
  if (s > 53u) { return 0u; } // x < 0.5
  let ip = shr64(x.mant, s);
  let frac = sub64(x.mant, shl64(ip, s));
  let half = shl64(vec2<u32>(1u, 0u), s - 1u);
  if (ip.y != 0u || ip.x >= n) { return n; }
  var q = ip.x;
  let tie = frac.x == half.x && frac.y == half.y;
  if (lt64(half, frac) || (tie && (q & 1u) == 1u)) { q += 1u; }
  return min(q, n);
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

// core's channelScale for m < M: smallest f32 >= max(fl64(D / n), 2^-149) with <= 24 - bits
// significant bits.
fn channel_scale_bits(lo: u32, hi: u32, bits: u32) -> u32 {
  let n = (1u << bits) - 1u;
  let x = div_f64(sub_f32_as_f64(hi, lo), n, 0);
  let top = 52 + x.exp; // floor(log2 x)
  if (top < -149) { return 1u; } // 2^-149
  let sig = 24 - i32(bits);
  let qe = max(top - sig + 1, -149);
  let drop = u32(qe - x.exp);
  var sm = 1u;
  if (drop < 64u) {
    let kept = shr64(x.mant, drop);
    let exact = all(shl64(kept, drop) == x.mant);
    sm = kept.x + select(1u, 0u, exact);
  }
  return f32_bits(sm, qe);
}

// Code of weight `w` (bits) in a channel with min `lo` and scale `s` (bits, nonzero).
fn quantize(w: u32, lo: u32, s: u32, n: u32) -> u32 {
  // Fast path: the f32 quotient is within ~2^-13 of the f64 one for t <= 256, so its rounding
  // agrees whenever the fraction is farther than 1/64 from .5. Requires a normal, not-tiny scale
  // so that flushed subnormal operands cannot move t by more than 2^-26.
  if (params.exact_only == 0u && ((s >> 23u) & 0xffu) >= 27u) {
    let t = (bitcast<f32>(w) - bitcast<f32>(lo)) / bitcast<f32>(s);
    let fl = floor(t);
    let fr = t - fl;
    if (abs(fr - 0.5) > 0.015625) {
      let q = u32(max(fl, 0.0)) + select(0u, 1u, fr > 0.5);
      return min(q, n);
    }
  }
  let t = div_f64(sub_f32_as_f64(w, lo), f32_mant(s), f32_exp(s));
  return round_half_even_clamped(t, n);
}

@compute @workgroup_size(64)
fn main(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  // Experiment: one invocation per row, no workgroup memory, no barriers.
  let r = gid.y * nwg.x * WG + gid.x;
  if (r >= params.row_count) { return; }
  let row = rows[r];
  var lo = order_key(weights[row.weight_start]);
  var hi = lo;
  for (var k = 1u; k < row.row_length; k++) {
    let key = order_key(weights[row.weight_start + k]);
    lo = min(lo, key);
    hi = max(hi, key);
  }
  var lo_bits = from_order_key(lo);
  var hi_bits = from_order_key(hi);
  if (lo_bits == SIGN) { lo_bits = 0u; }
  if (hi_bits == SIGN) { hi_bits = 0u; }
  let n = (1u << row.bits) - 1u;
  let is_constant = lo_bits == hi_bits;
  var s = 0u;
  if (!is_constant) { s = channel_scale_bits(lo_bits, hi_bits, row.bits); }
  scale_out[row.table_index] = s;
  zero_out[row.table_index] = lo_bits;
  max_out[row.table_index] = hi_bits;
  let vpw = 32u / row.bits;
  let word_count = (row.row_length + vpw - 1u) / vpw;
  for (var w = 0u; w < word_count; w++) {
    var word = 0u;
    if (!is_constant) {
      let k0 = w * vpw;
      let count = min(vpw, row.row_length - k0);
      for (var i = 0u; i < count; i++) {
        let q = quantize(weights[row.weight_start + k0 + i], lo_bits, s, n);
        word |= q << (i * row.bits);
      }
    }
    words[row.word_start + w] = word;
  }
}
