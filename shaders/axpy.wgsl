// y[i] = a * x[i] + y[i]. The harness smoke kernel: proves that a WGSL file from shaders/ compiles,
// dispatches and reads back on whatever adapter the page gets (SwiftShader in CI).
struct Params { a: f32, n: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i < params.n) {
    y[i] = params.a * x[i] + y[i];
  }
}
