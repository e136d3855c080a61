// Second step of the adaptation (after adapt_quantize_pack.wgsl, same pass): fills in the codes
// the f32 fast path left open, i.e. weights whose quotient lies within f32 error of a .5 rounding
// boundary, exactly as core computes them in f64 (src/core/quantize.ts):
//   q = clamp(roundHalfEven(fl64(fl64(w - m) / s)), 0, n)
// fl64(w - m) is formed exactly (sub_f32_as_f64); it has a 53-bit significand, so its exact quotient
// by s lies more than 2^-53 (relative) away from a .5 boundary it does not equal, and the f64
// rounding of the quotient cannot move it across one: rounding the exact quotient (integer
// division, quantize_exact) gives core's code.
//
// Input: the list of (word index, slot mask) entries the first kernel appended, one per word at
// most, so no two invocations touch the same word. A few workgroups stride over the list: it is
// short (for the benchmark's SASRec, about 0.18% of the weights and 1.6-1.9% of the words), and
// this code stays out of the first kernel's hot loop.

// ---- fl64(a - b) of two f32 values, for quantize_exact ----

// u64 as vec2<u32> (x = low word, y = high word). Shift amounts are < 64.
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
  let a_neg = (a & PK_SIGN) != 0u;
  let b_neg = (b & PK_SIGN) != 0u;
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

struct Params {
  segment_count: u32,
  fix_capacity: u32,
}

// The first kernel's list (struct Fixes there), read here.
struct Fixes {
  count: u32,
  _pad: u32,
  entries: array<vec2<u32>>,
}

@group(0) @binding(0) var<uniform> params: Params;
// Bindings 1-4 (weights, segments, chan, words): adapt_segments_lib.wgsl.
@group(0) @binding(5) var<storage, read> ranges: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read> fixes: Fixes;

// roundHalfEven(fl64(fl64(w - lo) / s)) clamped to n, exactly (see the file comment); w >= lo.
fn quantize_exact(w: u32, lo: u32, s: u32, n: u32) -> u32 {
  let d = sub_f32_as_f64(w, lo);
  if (is_zero64(d.mant)) { return 0u; }
  // s = sm * 2^se with sm odd: the fewest significant bits keep the integer quotient small.
  var sm = f32_mant(s);
  let tz = countTrailingZeros(sm);
  sm = sm >> tz;
  let se = f32_exp(s) + i32(tz);
  // u = floor(2 (w - lo) / s) = floor(floor(Dm / 2^sh) / sm) with sh = se - e - 1; the quotient
  // is at most 2n + 1 < 2^9 and sm < 2^23, so floor(Dm / 2^sh) fits in u32.
  let sh = se - d.exp - 1;
  if (sh <= 0) { return n; }
  var hi = 0u;
  var below = true; // nonzero bits of Dm below 2^sh
  if (sh < 64) {
    let v = shr64(d.mant, u32(sh));
    if (v.y != 0u) { return n; }
    hi = v.x;
    below = any(shl64(v, u32(sh)) != d.mant);
  }
  let u = hi / sm;
  let exact = !below && hi % sm == 0u;
  let k = u >> 1u;
  var q = k;
  if ((u & 1u) == 1u) {
    // Fraction >= .5: up, except an exact tie rounds to even.
    q = select(k + 1u, k + (k & 1u), exact);
  }
  return min(q, n);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let total = min(fixes.count, params.fix_capacity);
  for (var e = gid.x; e < total; e += nwg.x * WORKGROUP_SIZE) {
    let word_index = fixes.entries[e].x;
    var pending = fixes.entries[e].y;
    // The word's segment: the last one starting at or before it.
    let seg = segments[segment_at(params.segment_count, word_index, true)];
    let bits = seg.bits;
    let n = (1u << bits) - 1u;
    let vpw = values_per_word(bits);
    let len = seg.row_length;
    let per_row = words_per_row(bits, len);
    let local = (word_index - seg.word_start) / per_row;
    let w = (word_index - seg.word_start) % per_row;
    let t = seg.table_start + local;
    let range = ranges[t];
    let s = channel_scale_bits(range.x, range.y, bits);
    let first = seg.weight_start + u16_at(chan[t >> 1u], t) * len + w * vpw;
    var word = words[word_index];
    while (pending != 0u) {
      let i = firstTrailingBit(pending);
      pending &= pending - 1u;
      word |= quantize_exact(weights[first + i], range.x, s, n) << (i * bits);
    }
    words[word_index] = word;
  }
}
