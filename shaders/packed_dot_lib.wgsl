// Library (no entry point): the dot product of one packed row with activations, the inner loop of
// every dequantizing kernel (matmul_mixed, matmul_fused, caser_conv_h, caser_conv_v). It walks the
// row's words once, unpacking each word's codes in registers (packed_weight, packed_scale_lib.wgsl),
// k ascending: the order of src/core/forward/ops.ts linearRows.
// The programs prepend this text after packed_scale_lib.wgsl (src/gpu/wgsl-libs.ts, 'packedDot').
//
// The kernel declares what is multiplied:
//   var<storage, read> words: array<u32>                    the packed words (any binding);
//   alias PackedDotAcc = f32 | vecN<f32> | matCxR<f32>       what one call accumulates (one row or several);
//   PackedDotRows                                           any type locating the activations;
//   fn packed_dot_x(rows: PackedDotRows, k: u32) -> PackedDotAcc   activation k (of each row).
// A kernel that multiplies several rows by one weight returns them all from packed_dot_x, so each
// code is unpacked once per word for all of them.

// sum_k packed_dot_x(rows, k) * w[k] over the row of `row_length` codes whose first word is `word_base`.
fn packed_dot(row: PackedRow, word_base: u32, row_length: u32, rows: PackedDotRows) -> PackedDotAcc {
  var acc = PackedDotAcc();
  for (var w = 0u; w < row.words; w++) {
    let word = words[word_base + w];
    let k0 = w * row.vpw;
    let count = min(row.vpw, row_length - k0);
    for (var i = 0u; i < count; i++) {
      acc += packed_dot_x(rows, k0 + i) * packed_weight(row, word, i);
    }
  }
  return acc;
}
