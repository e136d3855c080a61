// Library (no entry point): per-row min-max fake quantization of activations with core's exact
// definitions (src/core/quantize.ts channelScale / dequantizeCode, src/core/forward/ops.ts
// fakeQuantRange). The TypeScript program prepends this text to the kernels that quantize
// (layer_norm, quantize_rows); one invocation quantizes one row.
//
//   s      = smallest f32 with <= 24 - bits significant bits such that n * s >= hi - lo (exactly)
//   q      = clamp(roundHalfEven((v - lo) / s), 0, n)            n = 2^bits - 1
//   deq(q) = q == n ? hi : lo + q * s                               (q * s is exact in f32)
//
// The scale is exact: the f32 estimate (hi - lo) / n is rounded up to the grid of such values and
// then moved along the grid with exact "lo + n * s >= hi" tests. The codes use the f32 quotient, so
// a value within f32 error of a .5 boundary may round the other way than the CPU's f64 quotient.

const FQ_BIG: f32 = 3.4028234e38;

// lo + p >= hi in exact arithmetic (p >= 0). Rounding is monotonic, so the rounded sum decides
// unless it equals hi; then the sign of its rounding error (TwoSum, exact in f32) does.
fn fq_covers(lo: f32, p: f32, hi: f32) -> bool {
  let t = lo + p;
  if (t != hi) { return t > hi; }
  let pv = t - lo;
  let lv = t - pv;
  return (lo - lv) + (p - pv) >= 0.0;
}

// core's channelScale(lo, hi, bits) for finite lo <= hi; 0 for a constant row.
fn fq_scale(lo: f32, hi: f32, bits: u32) -> f32 {
  if (!(hi > lo)) { return 0.0; }
  let n = f32((1u << bits) - 1u);
  // One grid step in the bit pattern: values with <= 24 - bits significant bits have their low
  // `bits` mantissa bits clear; a carry into the exponent lands on the next power of two, which is
  // on the grid too, so stepping the pattern walks the grid across binades.
  let step = 1u << bits;
  var s = (bitcast<u32>((hi - lo) / n) + step - 1u) & ~(step - 1u);
  for (var i = 0; i < 4; i++) {
    if (fq_covers(lo, n * bitcast<f32>(s), hi)) { break; }
    s += step;
  }
  for (var i = 0; i < 4; i++) {
    let c = s - step;
    if (c == 0u || !fq_covers(lo, n * bitcast<f32>(c), hi)) { break; }
    s = c;
  }
  return bitcast<f32>(s);
}

fn fq_apply(v: f32, lo: f32, hi: f32, s: f32, bits: u32) -> f32 {
  if (s == 0.0) { return lo; }
  let n = (1u << bits) - 1u;
  let q = u32(clamp(round((v - lo) / s), 0.0, f32(n)));
  return select(lo + f32(q) * s, hi, q == n);
}

// (min, max) of n values of act from `start`. `act` (the engine's activations) is declared by
// engine_run_lib.wgsl, which the same programs prepend.
fn fq_range(start: u32, n: u32) -> vec2<f32> {
  var lo = FQ_BIG;
  var hi = -FQ_BIG;
  for (var j = 0u; j < n; j++) {
    let v = act[start + j];
    lo = min(lo, v);
    hi = max(hi, v);
  }
  return vec2<f32>(lo, hi);
}

// act[dst + j] = fake-quantized act[src + j] for j < n, one range for all of them.
fn fq_row(src: u32, dst: u32, n: u32, bits: u32) {
  let range = fq_range(src, n);
  let s = fq_scale(range.x, range.y, bits);
  for (var j = 0u; j < n; j++) {
    act[dst + j] = fq_apply(act[src + j], range.x, range.y, s, bits);
  }
}
