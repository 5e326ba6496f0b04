#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// LoRA, first half (Punica's SGMV shrink): t[r, j] = x[r, :] . a[slot(r) * R + j, :] for j < R, for
// every batch row r whose slot (row_slot) is not -1. One workgroup per (row, block of 8 rank columns):
// at decode (few rows) that is rows x R/8 workgroups, each thread holding 8 dot products over its part
// of K, all its loads independent (16 bytes each where rows are aligned: p.vec), then one subgroupAdd per
// column and a sum over the subgroups in shared memory. (The first version ran one workgroup per row, 8
// columns at a time with a tree reduction: latency-bound, ~30 ms per step on an 8B model, PERFORMANCE.md.)
#include "common.glsl"
#define WG 256u
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint T = 0;
layout(std430, binding = 0) readonly buffer X { vec4 d[]; } x;
layout(std430, binding = 1) readonly buffer A { uvec4 d[]; } a;
layout(std430, binding = 2) readonly buffer S { int d[]; } rs;
layout(std430, binding = 3) writeonly buffer TT { float d[]; } t;
layout(push_constant) uniform P { uint x_off, x_stride, a_off, a_stride, s_off, t_off, t_stride, K, R, n, vec; } p;
shared float part[8][WG / 4u]; // per column, one partial sum per subgroup (subgroups of 4 lanes or more)

const uint E = T == DT_F32 ? 4u : 8u; // elements per 16-byte load of a

#include "unpack.glsl"

float xs(uint i) { return x.d[i >> 2][i & 3u]; }

void main() {
    uint row = gl_WorkGroupID.x, j0 = gl_WorkGroupID.y * 8u, tid = gl_LocalInvocationID.x;
    if (row >= p.n) return;
    int slot = rs.d[p.s_off + row];
    if (slot < 0) return; // the same for the whole workgroup: no barrier is left waiting
    float acc[8];
    [[unroll]] for (uint i = 0u; i < 8u; i++) acc[i] = 0.0;
    uint xb = p.x_off + row * p.x_stride, ab = p.a_off + (uint(slot) * p.R + j0) * p.a_stride;
    if (p.vec != 0u) {
        for (uint k = tid * E; k < p.K; k += WG * E) {
            float xv[8];
            vec4 x0 = x.d[(xb + k) >> 2], x1 = E == 8u ? x.d[(xb + k + 4u) >> 2] : vec4(0.0);
            xv[0] = x0.x; xv[1] = x0.y; xv[2] = x0.z; xv[3] = x0.w;
            xv[4] = x1.x; xv[5] = x1.y; xv[6] = x1.z; xv[7] = x1.w;
            [[unroll]] for (uint i = 0u; i < 8u; i++) {
                if (j0 + i >= p.R) break;
                float f[8];
                unpack8(a.d[(ab + i * p.a_stride + k) / E], f);
                [[unroll]] for (uint e = 0u; e < E; e++) acc[i] += xv[e] * f[e];
            }
        }
    } else {
        for (uint k = tid; k < p.K; k += WG) {
            float xv = xs(xb + k);
            [[unroll]] for (uint i = 0u; i < 8u; i++)
                if (j0 + i < p.R) acc[i] += xv * LOADT4(a, T, ab + i * p.a_stride + k);
        }
    }
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        float v = subgroupAdd(acc[i]);
        if (subgroupElect()) part[i][gl_SubgroupID] = v;
    }
    barrier();
    if (tid < 8u && j0 + tid < p.R) {
        float v = 0.0;
        for (uint s = 0u; s < gl_NumSubgroups; s++) v += part[tid][s];
        t.d[p.t_off + row * p.t_stride + j0 + tid] = v;
    }
}
