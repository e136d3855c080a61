// Library (no entry point): the ranking order of src/core/forward/rank.ts (ranksBefore), shared by
// the two top-k kernels (topk_chunks, topk_merge):
//   1. higher score first; 2. equal scores (+0 == -0): lower index first;
//   3. NaN after every number, NaNs among themselves by index.
// The order is strict and total, so counting the candidates before one gives its rank.

// An empty survivor slot (topk_chunks): ranks after everything, never reported.
const TOPK_NONE: u32 = 0xffffffffu;

// NaN test on the bits: compilers may fold `x != x` away.
fn is_nan(bits: u32) -> bool {
  return (bits & 0x7fffffffu) > 0x7f800000u;
}

// Whether candidate a (score bits sa) ranks strictly before candidate b.
fn before(sa: u32, a: u32, sb: u32, b: u32) -> bool {
  let na = is_nan(sa);
  let nb = is_nan(sb);
  if (na != nb) { return nb; }
  if (!na) {
    let fa = bitcast<f32>(sa);
    let fb = bitcast<f32>(sb);
    if (fa != fb) { return fa > fb; }
  }
  return a < b;
}
