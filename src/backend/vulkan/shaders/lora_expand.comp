#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// LoRA, second half (Punica's SGMV expand): out[r, m] += sum_j t[r, j] * b[slot(r) * M + m, j] for every
// batch row r whose slot (row_slot) is not -1. One invocation per output element, reading its row of b
// 16 bytes at a time where rows are aligned (p.vec: R a multiple of 8 16-bit or 4 f32 values).
#include "common.glsl"
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint T = 0;
layout(std430, binding = 0) readonly buffer TT { float d[]; } t;
layout(std430, binding = 1) readonly buffer B { uvec4 d[]; } b;
layout(std430, binding = 2) readonly buffer S { int d[]; } rs;
layout(std430, binding = 3) buffer O { float d[]; } o;
layout(push_constant) uniform P { uint t_off, t_stride, b_off, b_stride, s_off, o_off, o_stride, M, R, n, vec; } p;

const uint E = T == DT_F32 ? 4u : 8u;

#include "unpack.glsl"


void main() {
    uint m = gl_GlobalInvocationID.x, row = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    if (m >= p.M || row >= p.n) return;
    int slot = rs.d[p.s_off + row];
    if (slot < 0) return;
    uint wb = p.b_off + (uint(slot) * p.M + m) * p.b_stride, tb = p.t_off + row * p.t_stride;
    float acc = 0.0;
    if (p.vec != 0u) {
        for (uint j = 0u; j < p.R; j += E) {
            float f[8];
            unpack8(b.d[(wb + j) / E], f);
            [[unroll]] for (uint e = 0u; e < E; e++) acc += t.d[tb + j + e] * f[e];
        }
    } else {
        for (uint j = 0u; j < p.R; j++) acc += t.d[tb + j] * LOADT4(b, T, wb + j);
    }
    o.d[p.o_off + row * p.o_stride + m] += acc;
}
