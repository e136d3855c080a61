// Library (no entry point): the work split and the bindings both adaptation kernels share
// (adapt_quantize_pack.wgsl, then adapt_fix_ties.wgsl in the same pass). src/gpu/adapt-program.ts
// prepends this text and packed_scale_lib.wgsl. Each kernel declares its own Params (binding 0),
// ranges (5) and fix list (6): the first writes them, the second reads them.

// A width group of one layer: channels of one width at consecutive packed positions
// (buildAdaptSegments in src/gpu/packed-layout.ts, SEGMENT_STRIDE u32).
struct Segment {
  first_tile: u32,   // first workgroup (tile) of the segment
  table_start: u32,  // index into chan / ranges of the segment's first packed position
  count: u32,        // channels in the segment
  bits: u32,
  weight_start: u32, // the layer's first weight in `weights`
  row_length: u32,
  word_start: u32,   // the segment's first word in `words`
  _pad: u32,
}

// Frozen f32 weights (bits) of all layers, concatenated.
@group(0) @binding(1) var<storage, read> weights: array<u32>;
@group(0) @binding(2) var<storage, read> segments: array<Segment>;
// u16 channel index per packed position, two per u32.
@group(0) @binding(3) var<storage, read> chan: array<u32>;
@group(0) @binding(4) var<storage, read_write> words: array<u32>;

// Index of the last of the `count` segments whose first tile (or, with by_word, first word) is
// <= at: segments ascend in both. An off segment packs no words, so it shares its first word with
// the next segment, which, being later, wins: a word is never attributed to an off segment.
fn segment_at(count: u32, at: u32, by_word: bool) -> u32 {
  var si = 0u;
  for (var i = 1u; i < count; i++) {
    if (at >= select(segments[i].first_tile, segments[i].word_start, by_word)) { si = i; }
  }
  return si;
}
