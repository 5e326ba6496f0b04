#version 450
#extension GL_GOOGLE_include_directive : require
// out[r, c] = f32(table[ids[r] - row_base, c]) for ids in [row_base, row_base + row_count):
// a table larger than one storage-buffer binding is gathered in row ranges.
#include "common.glsl"
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint T = 0;
layout(std430, binding = 0) readonly buffer Tab { uint d[]; } tab;
layout(std430, binding = 1) readonly buffer Ids { int d[]; } ids;
layout(std430, binding = 2) writeonly buffer Out { float d[]; } o;
layout(push_constant) uniform P {
    uint t_off, t_stride, i_off, o_off, o_stride, n, D, row_base, row_count;
} p;
void main() {
    uint r = gl_WorkGroupID.y, c = gl_GlobalInvocationID.x;
    if (r >= p.n || c >= p.D) return;
    int id = ids.d[p.i_off + r] - int(p.row_base);
    if (id < 0 || uint(id) >= p.row_count) return;
    o.d[p.o_off + r * p.o_stride + c] = LOADT(tab, T, p.t_off + uint(id) * p.t_stride + c);
}
