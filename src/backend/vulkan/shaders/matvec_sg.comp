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
// Fused forms (push constants, no extra pipelines): the weight's rows may be up to three
// matrices that lie one after another in the binding (q, k, v), rows [0, e1), [e1, e2), [e2, M),
// each part with its own output (o, o1, o2: separate buffers) and its bias offset; with glu != 0 the rows m and
// m + M of the binding are a gate and an up row and out[m] = act(gate) * up (1 silu, 2 gelu_tanh,
// as eltwise.comp computes them), one output row per subgroup (per workgroup when WIDE).
// nrm != 0: x is read as rmsnorm(x) = x / rms(x) * (nw + nw_add) (rms over K, as rmsnorm.comp): the
// products take x * (nw + nw_add) and each token's sum of squares rides along; the sums are scaled at the
// end. acc != 0: the outputs are added to (a residual), not overwritten.
#include "common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint T = 0;
layout(constant_id = 1) const uint NT = 1;  // tokens: 1, 2, 4 or 8
layout(constant_id = 2) const uint RPW = 4; // row pairs per workgroup (128 / subgroup size)
layout(constant_id = 3) const uint WIDE = 0; // 1: the whole workgroup on one row pair, K split across it
layout(std430, binding = 0) readonly buffer X { vec4 d[]; } x;
layout(std430, binding = 1) readonly buffer W { uvec4 d[]; } w;
layout(std430, binding = 2) readonly buffer B { float d[]; } bias;
layout(std430, binding = 3) buffer O { float d[]; } o;
layout(std430, binding = 4) buffer O1 { float d[]; } o1; // the second and third parts' outputs
layout(std430, binding = 5) buffer O2 { float d[]; } o2;
layout(std430, binding = 6) readonly buffer NW { vec4 d[]; } nw; // nrm: the norm's weight, f32 [K]
layout(push_constant) uniform P {
    uint x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M, k_chunk, split_stride; // mm_push (the last two: matmul_coop's, unused here)
    uint e1, e2, o_off1, o_stride1, o_off2, o_stride2, b_off1, b_off2, glu;
    uint nrm, nw_off, acc;
    float eps, nw_add;
} p;

const uint E = T == DT_F32 ? 4u : 8u; // elements per 16-byte load

#include "unpack.glsl"

// acc0[j] += wa . x[token j][k..k+E), acc1[j] += wb . x[token j][k..k+E): x is read once for both rows
// (nrm: x times the norm's weight, ss[j] += its squares)
void fma2(uvec4 wa, uvec4 wb, uint k, inout float acc0[8], inout float acc1[8], inout float ss[8]) {
    float fa[8], fb[8];
    unpack8(wa, fa);
    unpack8(wb, fb);
    [[unroll]] for (uint j = 0u; j < NT; j++) { // NT is a constant: acc0/acc1 stay in registers
        if (j >= p.n) continue;
        uint xb = (p.x_off + j * p.x_stride + k) >> 2;
        vec4 x0 = x.d[xb];
        if (p.nrm != 0u) {
            ss[j] += dot(x0, x0);
            x0 *= nw.d[(p.nw_off + k) >> 2] + p.nw_add;
        }
        float s0 = dot(vec4(fa[0], fa[1], fa[2], fa[3]), x0), s1 = dot(vec4(fb[0], fb[1], fb[2], fb[3]), x0);
        if (E == 8u) {
            vec4 x1 = x.d[xb + 1u];
            if (p.nrm != 0u) {
                ss[j] += dot(x1, x1);
                x1 *= nw.d[((p.nw_off + k) >> 2) + 1u] + p.nw_add;
            }
            s0 += dot(vec4(fa[4], fa[5], fa[6], fa[7]), x1);
            s1 += dot(vec4(fb[4], fb[5], fb[6], fb[7]), x1);
        }
        acc0[j] += s0;
        acc1[j] += s1;
    }
}

// Output row m (of all the parts) of token j: into its part's output, its bias added.
void store(uint m, uint j, float v) {
    if (m >= p.e2) {
        if (p.has_bias != 0u) v += bias.d[p.b_off2 + m - p.e2];
        uint i = p.o_off2 + j * p.o_stride2 + m - p.e2;
        o2.d[i] = p.acc != 0u ? o2.d[i] + v : v;
    } else if (m >= p.e1) {
        if (p.has_bias != 0u) v += bias.d[p.b_off1 + m - p.e1];
        uint i = p.o_off1 + j * p.o_stride1 + m - p.e1;
        o1.d[i] = p.acc != 0u ? o1.d[i] + v : v;
    } else {
        if (p.has_bias != 0u) v += bias.d[p.b_off + m];
        uint i = p.o_off + j * p.o_stride + m;
        o.d[i] = p.acc != 0u ? o.d[i] + v : v;
    }
}

// glu: out[j][m] = act(gate) * up
void store_glu(uint m, uint j, float g, float u) {
    o.d[p.o_off + j * p.o_stride + m] = p.glu == 1u ? silu_mul1(g, u) : gelu_tanh_mul1(g, u);
}

// 1 / rms of a token's x from its sum of squares over K (rmsnorm.comp's arithmetic); 1 without nrm
float inv_rms(float ss) { return p.nrm != 0u ? 1.0 / sqrt(ss / float(p.K) + p.eps) : 1.0; }

shared float part[32][24]; // WIDE: per subgroup, 2 rows x NT partial sums, then NT sums of squares

// WIDE: the 128 invocations split K of one row pair (many workgroups for a matrix of few rows,
// where one subgroup per pair would leave most of the GPU idle); sums meet in shared memory.
void main_wide() {
    uint tid = gl_LocalInvocationID.x, step = 128u * E;
    uint m = p.glu != 0u ? flat_group() : flat_group() * 2u;
    if (m >= p.M) return;
    uint m1 = p.glu != 0u ? m + p.M : min(m + 1u, p.M - 1u);
    float acc0[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    float acc1[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    float ss[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    uint wa = (p.w_off + m * p.w_stride) / E, wb = (p.w_off + m1 * p.w_stride) / E;
    uint k = tid * E;
    for (; k + step < p.K; k += 2u * step) {
        uvec4 a0 = w.d[wa + k / E], b0 = w.d[wb + k / E];
        uvec4 a1 = w.d[wa + (k + step) / E], b1 = w.d[wb + (k + step) / E];
        fma2(a0, b0, k, acc0, acc1, ss);
        fma2(a1, b1, k + step, acc0, acc1, ss);
    }
    if (k < p.K) fma2(w.d[wa + k / E], w.d[wb + k / E], k, acc0, acc1, ss);
    [[unroll]] for (uint j = 0u; j < NT; j++) {
        float v0 = subgroupAdd(acc0[j]), v1 = subgroupAdd(acc1[j]), q = subgroupAdd(ss[j]);
        if (subgroupElect()) {
            part[gl_SubgroupID][j] = v0;
            part[gl_SubgroupID][8u + j] = v1;
            part[gl_SubgroupID][16u + j] = q;
        }
    }
    barrier();
    if (p.glu != 0u) {
        if (tid < NT && tid < p.n) {
            float g = 0.0, u = 0.0, q = 0.0;
            for (uint i = 0u; i < gl_NumSubgroups; i++) { g += part[i][tid]; u += part[i][8u + tid]; q += part[i][16u + tid]; }
            float s = inv_rms(q);
            store_glu(m, tid, g * s, u * s);
        }
    } else if (tid < 2u * NT) {
        uint row = tid / NT, j = tid % NT;
        float v = 0.0, q = 0.0;
        for (uint i = 0u; i < gl_NumSubgroups; i++) { v += part[i][row * 8u + j]; q += part[i][16u + j]; }
        if (j < p.n && (row == 0u || m1 != m)) store(row == 0u ? m : m1, j, v * inv_rms(q));
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
        uint m = (flat_group() * RPW + r) * (p.glu != 0u ? 1u : 2u);
        if (m >= p.M) break;
        // an odd last row is computed twice, written once; glu: the gate row and its up row
        uint m1 = p.glu != 0u ? m + p.M : min(m + 1u, p.M - 1u);
        float acc0[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        float acc1[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        float ss[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        uint wa = (p.w_off + m * p.w_stride) / E, wb = (p.w_off + m1 * p.w_stride) / E; // in uvec4 units
        uint k = lane * E;
        for (; k + step < p.K; k += 2u * step) { // four 16-byte loads in flight
            uvec4 a0 = w.d[wa + k / E], b0 = w.d[wb + k / E];
            uvec4 a1 = w.d[wa + (k + step) / E], b1 = w.d[wb + (k + step) / E];
            fma2(a0, b0, k, acc0, acc1, ss);
            fma2(a1, b1, k + step, acc0, acc1, ss);
        }
        if (k < p.K) fma2(w.d[wa + k / E], w.d[wb + k / E], k, acc0, acc1, ss);
        [[unroll]] for (uint j = 0u; j < NT; j++) {
            float s = p.nrm != 0u ? inv_rms(subgroupAdd(ss[j])) : 1.0;
            float v0 = subgroupAdd(acc0[j]) * s, v1 = subgroupAdd(acc1[j]) * s;
            if (lane == 0u && j < p.n) {
                if (p.glu != 0u) {
                    store_glu(m, j, v0, v1);
                } else {
                    store(m, j, v0);
                    if (m1 != m) store(m1, j, v1);
                }
            }
        }
    }
}
