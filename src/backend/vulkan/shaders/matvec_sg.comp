#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// out[t, m] = x[t, :] . w[m, :] (+ bias[m]) for few tokens (decode), streaming
// the weights at full width: one subgroup per two weight rows (x is read once
// for both), each lane reading 16 bytes (8 f16/bf16 or 4 f32 values) per load,
// four loads in flight, then one subgroupAdd per token and row. Needs 16-byte aligned weight rows and 4-float
// aligned x rows (the host checks; matvec.comp covers the rest). RPW rows per
// workgroup, whatever subgroup size the device picks.
#include "common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint T = 0;
layout(constant_id = 1) const uint NT = 1;  // tokens: 1, 2, 4 or 8
layout(constant_id = 2) const uint RPW = 4; // row pairs per workgroup (128 / subgroup size)
layout(constant_id = 3) const uint WIDE = 0; // 1: the whole workgroup on one row pair, K split across it
layout(std430, binding = 0) readonly buffer X { vec4 d[]; } x;
layout(std430, binding = 1) readonly buffer W { uvec4 d[]; } w;
layout(std430, binding = 2) readonly buffer B { float d[]; } bias;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M;
} p;

const uint E = T == DT_F32 ? 4u : 8u; // elements per 16-byte load

#include "unpack.glsl"

// acc0[j] += wa . x[token j][k..k+E), acc1[j] += wb . x[token j][k..k+E): x is read once for both rows
void fma2(uvec4 wa, uvec4 wb, uint k, inout float acc0[8], inout float acc1[8]) {
    float fa[8], fb[8];
    unpack8(wa, fa);
    unpack8(wb, fb);
    [[unroll]] for (uint j = 0u; j < NT; j++) { // NT is a constant: acc0/acc1 stay in registers
        if (j >= p.n) continue;
        uint xb = (p.x_off + j * p.x_stride + k) >> 2;
        vec4 x0 = x.d[xb];
        float s0 = dot(vec4(fa[0], fa[1], fa[2], fa[3]), x0), s1 = dot(vec4(fb[0], fb[1], fb[2], fb[3]), x0);
        if (E == 8u) {
            vec4 x1 = x.d[xb + 1u];
            s0 += dot(vec4(fa[4], fa[5], fa[6], fa[7]), x1);
            s1 += dot(vec4(fb[4], fb[5], fb[6], fb[7]), x1);
        }
        acc0[j] += s0;
        acc1[j] += s1;
    }
}

shared float part[32][16]; // WIDE: per subgroup, 2 rows x NT partial sums

// WIDE: the 128 invocations split K of one row pair (many workgroups for a matrix of few rows,
// where one subgroup per pair would leave most of the GPU idle); sums meet in shared memory.
void main_wide() {
    uint tid = gl_LocalInvocationID.x, step = 128u * E;
    uint m = flat_group() * 2u;
    if (m >= p.M) return;
    uint m1 = min(m + 1u, p.M - 1u);
    float acc0[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    float acc1[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    uint wa = (p.w_off + m * p.w_stride) / E, wb = (p.w_off + m1 * p.w_stride) / E;
    uint k = tid * E;
    for (; k + step < p.K; k += 2u * step) {
        uvec4 a0 = w.d[wa + k / E], b0 = w.d[wb + k / E];
        uvec4 a1 = w.d[wa + (k + step) / E], b1 = w.d[wb + (k + step) / E];
        fma2(a0, b0, k, acc0, acc1);
        fma2(a1, b1, k + step, acc0, acc1);
    }
    if (k < p.K) fma2(w.d[wa + k / E], w.d[wb + k / E], k, acc0, acc1);
    [[unroll]] for (uint j = 0u; j < NT; j++) {
        float v0 = subgroupAdd(acc0[j]), v1 = subgroupAdd(acc1[j]);
        if (subgroupElect()) { part[gl_SubgroupID][j] = v0; part[gl_SubgroupID][8u + j] = v1; }
    }
    barrier();
    if (tid < 2u * NT) {
        uint row = tid / NT, j = tid % NT;
        float v = 0.0;
        for (uint i = 0u; i < gl_NumSubgroups; i++) v += part[i][row * 8u + j];
        uint mm = row == 0u ? m : m1;
        if (j < p.n && (row == 0u || m1 != m)) {
            if (p.has_bias != 0u) v += bias.d[p.b_off + mm];
            o.d[p.o_off + j * p.o_stride + mm] = v;
        }
    }
}

// Two rows per subgroup (m, m + 1), RPW subgroups' worth of row pairs per workgroup.
void main() {
    if (WIDE != 0u) {
        main_wide();
        return;
    }
    uint lane = gl_SubgroupInvocationID, S = gl_SubgroupSize;
    uint step = S * E;
    for (uint r = gl_SubgroupID; r < RPW; r += gl_NumSubgroups) {
        uint m = (flat_group() * RPW + r) * 2u;
        if (m >= p.M) break;
        uint m1 = min(m + 1u, p.M - 1u); // an odd last row is computed twice, written once
        float acc0[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        float acc1[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        uint wa = (p.w_off + m * p.w_stride) / E, wb = (p.w_off + m1 * p.w_stride) / E; // in uvec4 units
        uint k = lane * E;
        for (; k + step < p.K; k += 2u * step) { // four 16-byte loads in flight
            uvec4 a0 = w.d[wa + k / E], b0 = w.d[wb + k / E];
            uvec4 a1 = w.d[wa + (k + step) / E], b1 = w.d[wb + (k + step) / E];
            fma2(a0, b0, k, acc0, acc1);
            fma2(a1, b1, k + step, acc0, acc1);
        }
        if (k < p.K) fma2(w.d[wa + k / E], w.d[wb + k / E], k, acc0, acc1);
        [[unroll]] for (uint j = 0u; j < NT; j++) {
            float v0 = subgroupAdd(acc0[j]), v1 = subgroupAdd(acc1[j]);
            if (lane == 0u && j < p.n) {
                if (p.has_bias != 0u) { v0 += bias.d[p.b_off + m]; v1 += bias.d[p.b_off + m1]; }
                o.d[p.o_off + j * p.o_stride + m] = v0;
                if (m1 != m) o.d[p.o_off + j * p.o_stride + m1] = v1;
            }
        }
    }
}
