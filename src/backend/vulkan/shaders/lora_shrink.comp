#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// LoRA, first half (Punica's SGMV shrink): t[r, j] = x[r, :] . a[slot(r) * R + j, :] for j < R, for
// every batch row r whose slot (row_slot) is not -1. One workgroup per row, 8 of the R dots at a time,
// reduced through shared memory.
#include "common.glsl"
#define WG 128u
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint T = 0;
layout(std430, binding = 0) readonly buffer X { float d[]; } x;
layout(std430, binding = 1) readonly buffer A { uint d[]; } a;
layout(std430, binding = 2) readonly buffer S { int d[]; } rs;
layout(std430, binding = 3) writeonly buffer TT { float d[]; } t;
layout(push_constant) uniform P { uint x_off, x_stride, a_off, a_stride, s_off, t_off, t_stride, K, R, n; } p;
shared float red[8][WG];
void main() {
    uint row = flat_group(), tid = gl_LocalInvocationID.x;
    if (row >= p.n) return;
    int slot = rs.d[p.s_off + row];
    if (slot < 0) return; // the same for the whole workgroup: no barrier is left waiting
    for (uint j0 = 0u; j0 < p.R; j0 += 8u) {
        float acc[8];
        [[unroll]] for (uint i = 0u; i < 8u; i++) acc[i] = 0.0;
        for (uint k = tid; k < p.K; k += WG) {
            float xv = x.d[p.x_off + row * p.x_stride + k];
            [[unroll]] for (uint i = 0u; i < 8u; i++)
                if (j0 + i < p.R) acc[i] += xv * LOADT(a, T, p.a_off + (uint(slot) * p.R + j0 + i) * p.a_stride + k);
        }
        [[unroll]] for (uint i = 0u; i < 8u; i++) red[i][tid] = acc[i];
        barrier();
        for (uint s = WG / 2u; s > 0u; s >>= 1) {
            if (tid < s)
                [[unroll]] for (uint i = 0u; i < 8u; i++) red[i][tid] += red[i][tid + s];
            barrier();
        }
        if (tid < 8u && j0 + tid < p.R) t.d[p.t_off + row * p.t_stride + j0 + tid] = red[tid][0];
        barrier();
    }
}
