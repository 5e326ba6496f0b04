#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
// out = x @ w^T (+ bias) on tensor cores (VK_NV_cooperative_matrix, NVIDIA).
// A workgroup of eight 32-wide subgroups owns BT = 32 * FT tokens x 128 weight
// rows; each subgroup 16 * FT tokens x 32 rows as FT x 2 fragments of 16 x 16
// with f32 accumulators. FT (constant_id 2) is 2 for few tokens (batched decode:
// more workgroups) and 4 for prefill (each weight tile converted once per 128
// tokens instead of 64, and 10 fragment loads per 16 products instead of 6 per 8).
// K advances 32 at a time through shared memory; the next step's global loads
// (16 bytes each) are issued before this step's products, into registers.
// Precision: weights (f16, or bf16 widened) are exact in f16 apart from
// subnormals; with SPLIT activations are split x = hi + lo into two f16 parts and both
// products are accumulated, so x keeps about 21 bits instead of f16's 11; without, they are
// rounded to f16 (more than the 8 bits of a bf16 model's own activations), half the products
// and shared memory, which lets K advance 64 at a time (BK64).
// Needs K % 8 == 0 and aligned rows (the host checks; matmul.comp covers the rest).
#include "common.glsl"
#define BM 128u
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint T = 0;
layout(constant_id = 1) const uint VARIANT = 0; // measurement only: 1 skips the lo products, 2 the hi ones,
                                                // 3 stores bf16 weights unconverted (wrong results, the time)
layout(constant_id = 2) const uint FT = 2;      // 16 x 16 fragments per subgroup along the tokens: 2 or 4
layout(constant_id = 3) const uint SPLIT = 1;   // activations as hi + lo (1) or rounded to f16 (0)
layout(constant_id = 4) const uint BK64 = 0;    // K steps of 64 instead of 32 (only without SPLIT: shared memory)
const uint BK = BK64 != 0u ? 64u : 32u;
const uint BKP = BK + 8u; // padded row (f16 elements) against bank conflicts
const uint BT = 32u * FT;
layout(std430, binding = 0) readonly buffer X { vec4 d[]; } x;
layout(std430, binding = 1) readonly buffer W { uvec4 d[]; } w;
layout(std430, binding = 2) readonly buffer B { float d[]; } bias;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(std430, binding = 4) writeonly buffer O1 { float d[]; } o1;
layout(std430, binding = 5) writeonly buffer O2 { float d[]; } o2;
layout(push_constant) uniform P {
    uint x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M;
    uint k_chunk, split_stride; // split-K: workgroup z sums K in [z * k_chunk, +k_chunk) into plane z of o
    // stacked weights (q/k/v or gate/up in one buffer, one GEMM): rows [0, e1) go to o, [e1, e2) to o1 and
    // [e2, M) to o2, each from its own column 0 (e1 = e2 = M: o alone)
    uint e1, e2, o_off1, o_stride1, o_off2, o_stride2;
} p;
// f16 tiles, packed 8 halves per uvec4 (fragment loads count in those units). uvec4, never uvec2, and
// every array a multiple of 16 bytes: cooperative-matrix loads want 16-byte aligned addresses, and the
// driver places an array of 8-byte elements on an 8-byte boundary (measured on the H100: with Al one
// uvec2 long, Ah began 8 bytes off and the f16 form read garbage; session 10 found the same in matmul_cd)
shared uvec4 Ah[BT * BKP / 8u];
shared uvec4 Al[SPLIT != 0u ? BT * BKP / 8u : 1u];
shared uvec4 Bs[BM * BKP / 8u];
shared uvec4 Cw[8][64]; // one 16 x 16 staging tile per subgroup (uvec4: 16-byte aligned too)

const uint E = T == DT_F32 ? 4u : 8u;
const uint WL = BM * BK / E / 256u; // 16-byte weight loads per invocation per step (2 for 16-bit, 4 for f32)
const uint XL = BT * BK / 4u / 256u; // 16-byte activation loads per invocation per step (FT, 2 FT with BK64)

vec4 xr[XL];
uvec4 wr[WL];

void load_global(uint k0, uint ke, uint tid, uint t0, uint m0) {
    [[unroll]] for (uint i = 0u; i < XL; i++) {
        uint e = tid + i * 256u, r = e / (BK / 4u), q = e % (BK / 4u), t = t0 + r, k = k0 + q * 4u;
        xr[i] = (t < p.n && k < ke) ? x.d[(p.x_off + t * p.x_stride + k) >> 2] : vec4(0.0);
    }
    [[unroll]] for (uint i = 0u; i < WL; i++) {
        uint e = tid + i * 256u, r = e / (BK / E), q = e % (BK / E), m = m0 + r, k = k0 + q * E;
        wr[i] = (m < p.M && k < ke) ? w.d[(p.w_off + m * p.w_stride + k) / E] : uvec4(0u);
    }
}

uint pack_f16(vec2 v) { return packHalf2x16(v); }

void store_shared(uint tid) {
    [[unroll]] for (uint i = 0u; i < XL; i++) {
        uint e = tid + i * 256u, r = e / (BK / 4u), q = e % (BK / 4u);
        vec4 v = xr[i];
        uint at = (r * BKP) / 8u + q / 2u; // 4 halves: the first or second half of a uvec4
        // with SPLIT, hi: v with its low 13 mantissa bits cleared (integer ops, so no compiler can fold the
        // split away), exact in f16 within its range; lo: the exact f32 remainder, rounded to f16
        vec4 hv = SPLIT != 0u ? uintBitsToFloat(floatBitsToUint(v) & uvec4(0xffffe000u)) : v;
        uvec2 h = uvec2(packHalf2x16(hv.xy), packHalf2x16(hv.zw));
        if ((q & 1u) == 0u) Ah[at].xy = h; else Ah[at].zw = h;
        if (SPLIT == 0u) continue;
        uvec2 l = uvec2(packHalf2x16(v.xy - hv.xy), packHalf2x16(v.zw - hv.zw));
        if ((q & 1u) == 0u) Al[at].xy = l; else Al[at].zw = l;
    }
    [[unroll]] for (uint i = 0u; i < WL; i++) {
        uint e = tid + i * 256u, r = e / (BK / E), q = e % (BK / E);
        uvec4 u = wr[i];
        if (T == DT_F32) { // 4 values: half of a packed uvec4
            uvec2 h = uvec2(packHalf2x16(vec2(uintBitsToFloat(u.x), uintBitsToFloat(u.y))),
                            packHalf2x16(vec2(uintBitsToFloat(u.z), uintBitsToFloat(u.w))));
            uint at = (r * BKP + q * 4u) / 8u;
            if ((q & 1u) == 0u) { Bs[at].x = h.x; Bs[at].y = h.y; } else { Bs[at].z = h.x; Bs[at].w = h.y; }
        } else if (T == DT_F16 || VARIANT == 3u) {
            Bs[(r * BKP) / 8u + q] = u;
        } else {
            Bs[(r * BKP) / 8u + q] = uvec4(pack_f16(vec2(bf16_lo(u.x), bf16_hi(u.x))), pack_f16(vec2(bf16_lo(u.y), bf16_hi(u.y))),
                                           pack_f16(vec2(bf16_lo(u.z), bf16_hi(u.z))), pack_f16(vec2(bf16_lo(u.w), bf16_hi(u.w))));
        }
    }
}

#define FRAG fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define HALF fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define MMA2(c0, c1, a) c0 = coopMatMulAddNV(a, b0, c0); c1 = coopMatMulAddNV(a, b1, c1)

void main() {
    uint tid = gl_LocalInvocationID.x, sg = tid / 32u, lane = tid % 32u;
    uint m0 = gl_WorkGroupID.x * BM, t0 = gl_WorkGroupID.y * BT;
    uint wt = sg / 4u, wm = sg % 4u; // 2 x 4 subgroups: tokens wt*16*FT.., rows wm*32..
    // fragments as separate variables, not arrays: an array of cooperative matrices indexed in a loop
    // may live in local memory (measured: the products ran 50x below the tensor cores' rate)
    FRAG c00 = FRAG(0.0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    uint ra = (wt * 16u * FT) * BKP, rb = (wm * 32u) * BKP;
    uint kb = gl_WorkGroupID.z * p.k_chunk, ke = min(kb + p.k_chunk, p.K);
    uint o_off = p.o_off + gl_WorkGroupID.z * p.split_stride;
    load_global(kb, ke, tid, t0, m0);
    for (uint k0 = kb; k0 < ke; k0 += BK) {
        barrier();
        store_shared(tid);
        barrier();
        if (k0 + BK < ke) load_global(k0 + BK, ke, tid, t0, m0);
        [[unroll]] for (uint kk = 0u; kk < BK; kk += 16u) {
            HALF a, b0, b1;
            coopMatLoadNV(b0, Bs, (rb + kk) / 8u, BKP / 8u, true);
            coopMatLoadNV(b1, Bs, (rb + 16u * BKP + kk) / 8u, BKP / 8u, true);
            if (SPLIT != 0u && VARIANT != 1u) { // the lo parts
                coopMatLoadNV(a, Al, (ra + kk) / 8u, BKP / 8u, false);
                MMA2(c00, c01, a);
                coopMatLoadNV(a, Al, (ra + 16u * BKP + kk) / 8u, BKP / 8u, false);
                MMA2(c10, c11, a);
                if (FT == 4u) {
                    coopMatLoadNV(a, Al, (ra + 32u * BKP + kk) / 8u, BKP / 8u, false);
                    MMA2(c20, c21, a);
                    coopMatLoadNV(a, Al, (ra + 48u * BKP + kk) / 8u, BKP / 8u, false);
                    MMA2(c30, c31, a);
                }
            }
            if (VARIANT != 2u) { // the hi parts
                coopMatLoadNV(a, Ah, (ra + kk) / 8u, BKP / 8u, false);
                MMA2(c00, c01, a);
                coopMatLoadNV(a, Ah, (ra + 16u * BKP + kk) / 8u, BKP / 8u, false);
                MMA2(c10, c11, a);
                if (FT == 4u) {
                    coopMatLoadNV(a, Ah, (ra + 32u * BKP + kk) / 8u, BKP / 8u, false);
                    MMA2(c20, c21, a);
                    coopMatLoadNV(a, Ah, (ra + 48u * BKP + kk) / 8u, BKP / 8u, false);
                    MMA2(c30, c31, a);
                }
            }
        }
    }
    // each subgroup writes its fragments through its own staging tile, with bounds and bias
    [[unroll]] for (uint f = 0u; f < 2u * FT; f++) {
        uint i = f / 2u, j = f % 2u;
        switch (f) {
        case 0u: coopMatStoreNV(c00, Cw[sg], 0u, 4u, false); break;
        case 1u: coopMatStoreNV(c01, Cw[sg], 0u, 4u, false); break;
        case 2u: coopMatStoreNV(c10, Cw[sg], 0u, 4u, false); break;
        case 3u: coopMatStoreNV(c11, Cw[sg], 0u, 4u, false); break;
        case 4u: coopMatStoreNV(c20, Cw[sg], 0u, 4u, false); break;
        case 5u: coopMatStoreNV(c21, Cw[sg], 0u, 4u, false); break;
        case 6u: coopMatStoreNV(c30, Cw[sg], 0u, 4u, false); break;
        default: coopMatStoreNV(c31, Cw[sg], 0u, 4u, false); break;
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        for (uint e = lane; e < 256u; e += 32u) {
            uint t = t0 + wt * 16u * FT + i * 16u + e / 16u, m = m0 + wm * 32u + j * 16u + e % 16u;
            if (t < p.n && m < p.M) {
                float v = uintBitsToFloat(Cw[sg][e >> 2][e & 3u]);
                if (p.has_bias != 0u) v += bias.d[p.b_off + m];
                if (m < p.e1) o.d[o_off + t * p.o_stride + m] = v;
                else if (m < p.e2) o1.d[p.o_off1 + t * p.o_stride1 + (m - p.e1)] = v;
                else o2.d[p.o_off2 + t * p.o_stride2 + (m - p.e2)] = v;
            }
        }
        subgroupBarrier(); // the tile is read before the next store overwrites it
    }
}
