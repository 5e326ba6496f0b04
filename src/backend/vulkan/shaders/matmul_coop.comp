#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
// out = x @ w^T (+ bias) on tensor cores (VK_NV_cooperative_matrix, NVIDIA):
// 64 tokens x 64 weight rows per workgroup of four 32-wide subgroups, each
// owning 32 x 32 outputs as 2 x 2 fragments of 16 x 16 with f32 accumulators.
// x (f32) and w (f32/f16/bf16) are widened or narrowed to f16 through shared
// memory, 32 columns of K at a time, with 16-byte loads (K % 8 == 0 and
// aligned rows: the host checks, matmul.comp covers the rest).
#include "common.glsl"
#define BT 64u
#define BM 64u
#define BK 32u
#define BKP 40u // padded row (f16 elements) against bank conflicts
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint T = 0;
layout(std430, binding = 0) readonly buffer X { vec4 d[]; } x;
layout(std430, binding = 1) readonly buffer W { uvec4 d[]; } w;
layout(std430, binding = 2) readonly buffer B { float d[]; } bias;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M;
} p;
shared float16_t As[BT * BKP];
shared float16_t Bs[BM * BKP];
shared float Cs[BT * BM];

const uint E = T == DT_F32 ? 4u : 8u; // weight elements per 16-byte load

void main() {
    uint tid = gl_LocalInvocationID.x, sg = tid / 32u;
    uint m0 = gl_WorkGroupID.x * BM, t0 = gl_WorkGroupID.y * BT;
    uint wt = sg / 2u, wm = sg % 2u;
    fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> c[2][2];
    for (uint i = 0u; i < 2u; i++)
        for (uint j = 0u; j < 2u; j++) c[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        // x tile: BT rows x BK columns = 512 vec4
        for (uint e = tid; e < BT * BK / 4u; e += 128u) {
            uint r = e / (BK / 4u), q = e % (BK / 4u), t = t0 + r, k = k0 + q * 4u;
            vec4 v = (t < p.n && k < p.K) ? x.d[(p.x_off + t * p.x_stride + k) >> 2] : vec4(0.0);
            uint a = r * BKP + q * 4u;
            As[a] = float16_t(v.x); As[a + 1u] = float16_t(v.y); As[a + 2u] = float16_t(v.z); As[a + 3u] = float16_t(v.w);
        }
        // w tile: BM rows x BK columns
        for (uint e = tid; e < BM * BK / E; e += 128u) {
            uint r = e / (BK / E), q = e % (BK / E), m = m0 + r, k = k0 + q * E;
            uvec4 u = (m < p.M && k < p.K) ? w.d[(p.w_off + m * p.w_stride + k) / E] : uvec4(0u);
            uint b = r * BKP + q * E;
            if (T == DT_F32) {
                Bs[b] = float16_t(uintBitsToFloat(u.x)); Bs[b + 1u] = float16_t(uintBitsToFloat(u.y));
                Bs[b + 2u] = float16_t(uintBitsToFloat(u.z)); Bs[b + 3u] = float16_t(uintBitsToFloat(u.w));
            } else {
                uint wd[4] = uint[4](u.x, u.y, u.z, u.w);
                for (uint i = 0u; i < 4u; i++) {
                    vec2 f = T == DT_F16 ? unpackHalf2x16(wd[i]) : vec2(bf16_lo(wd[i]), bf16_hi(wd[i]));
                    Bs[b + 2u * i] = float16_t(f.x);
                    Bs[b + 2u * i + 1u] = float16_t(f.y);
                }
            }
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk += 16u) {
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[2], b[2];
            for (uint i = 0u; i < 2u; i++) coopMatLoadNV(a[i], As, (wt * 32u + i * 16u) * BKP + kk, BKP, false);
            for (uint j = 0u; j < 2u; j++) coopMatLoadNV(b[j], Bs, (wm * 32u + j * 16u) * BKP + kk, BKP, true);
            for (uint i = 0u; i < 2u; i++)
                for (uint j = 0u; j < 2u; j++) c[i][j] = coopMatMulAddNV(a[i], b[j], c[i][j]);
        }
        barrier();
    }
    for (uint i = 0u; i < 2u; i++)
        for (uint j = 0u; j < 2u; j++)
            coopMatStoreNV(c[i][j], Cs, (wt * 32u + i * 16u) * BM + wm * 32u + j * 16u, BM, false);
    barrier();
    for (uint e = tid; e < BT * BM; e += 128u) {
        uint r = e / BM, cl = e % BM, t = t0 + r, m = m0 + cl;
        if (t < p.n && m < p.M) {
            float v = Cs[e];
            if (p.has_bias != 0u) v += bias.d[p.b_off + m];
            o.d[p.o_off + t * p.o_stride + m] = v;
        }
    }
}
