// Library (no entry point): what the rerank engine's per-history kernels share (embed_positions,
// layer_norm, quantize_rows, attention_causal, matmul_fused, score_candidates, topk). Their
// programs prepend this text and list their bindings as 'params', 'run', 'act', then their own
// (runKernelProgram in src/gpu/engine-bindings.ts: binding i = bindings[i]). Each kernel declares
// its own `struct Params` and binding 0 (`params`); this library declares bindings 1 and 2.

// The per-rerank uniform (runUniform in src/gpu/engine-bindings.ts).
struct Run {
  n: u32,          // real history rows
  cand_count: u32,
  k: u32,
  cand_mode: u32,  // CAND_MODE_IDS: catalogue ids, CAND_MODE_EMBEDDINGS: embeddings the shop sent
}

@group(0) @binding(1) var<uniform> run: Run;
// Activations, scratch and scores.
@group(0) @binding(2) var<storage, read_write> act: array<f32>;

// Rows [start, end) of a row mode (src/gpu/shader-constants.ts): ROWS_ALL = [0, run.n),
// ROWS_LAST = the last real row only, ROWS_FIXED = [0, fixed_rows).
fn row_range(row_mode: u32, fixed_rows: u32) -> vec2<u32> {
  switch row_mode {
    case ROWS_LAST: { return vec2<u32>(run.n - 1u, run.n); }
    case ROWS_FIXED: { return vec2<u32>(0u, fixed_rows); }
    case ROWS_ALL, default: { return vec2<u32>(0u, run.n); }
  }
}
