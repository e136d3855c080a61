// Library (no entry point): the page's 8-bit item table (src/core/item-table.ts), read by the
// kernels that look items up (embed_positions, score_candidates) when their params say q8 != 0.
// The kernel declares the `items` binding (u32 words): rows of int8 codes in whole words
// (row_words words per row, code j in byte j % 4 of word j / 4, LSB first), then one f16 scale
// per row, two per word (row r in the low half when r is even). value = f32(code) * scale, exact
// in f32, so it equals core's dequantizeItemTable bit for bit.

// scales_offset: word offset of the scales; row_words: words per row of codes.
fn item_scale(scales_offset: u32, row: u32) -> f32 {
  let pair = unpack2x16float(items[scales_offset + row / 2u]);
  return select(pair.x, pair.y, (row & 1u) == 1u);
}

// Code b (0..3) of a word of codes: sign-extended by moving it to the top byte, then shifting it
// back arithmetically.
fn word_code(word: u32, b: u32) -> f32 {
  return f32(bitcast<i32>(word << (24u - 8u * b)) >> 24u);
}

fn item_code(row_words: u32, row: u32, j: u32) -> f32 {
  return word_code(items[row * row_words + j / 4u], j % 4u);
}
