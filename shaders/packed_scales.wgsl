// Verification only (readPacked, tests/browser/pages/weights-probes.ts): the step of every packed position of one
// layer, as the dequantizing kernels compute it from the stored (min, max) and the position's
// width (packed_scale_lib.wgsl), so checks can compare it with core's channelScale bit for bit.

struct Params {
  table_start: u32,
  count: u32,
  group_count: u32,
  _pad: u32,
  // Per width group: (bits, first packed position, end packed position, unused).
  groups: array<vec4<u32>, MAX_GROUPS>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ranges: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> scales: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let p = gid.x;
  if (p >= params.count) { return; }
  var bits = params.groups[0].x;
  for (var i = 1u; i < params.group_count; i++) {
    if (p >= params.groups[i].y) { bits = params.groups[i].x; }
  }
  let range = ranges[params.table_start + p];
  scales[p] = channel_scale_bits(range.x, range.y, bits);
}
