#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_16bit_storage : require
// out = x @ w^T (+ bias) on tensor cores (VK_NV_cooperative_matrix, NVIDIA), weights loaded
// straight from device memory into the fragments ("direct"): no shared-memory tile, no barrier
// for them. A workgroup of four 32-wide subgroups owns BT = 16 * FT tokens x 128 weight rows;
// each subgroup 32 rows (2 fragments) x all BT tokens (FT fragments), f32 accumulators.
// Only the activations go through shared memory: f32 converted to f16 once per workgroup per
// 64-deep K block, double-buffered (one barrier per block); the global loads of the next block
// are issued before this block's products.
// bf16 weights: a fragment is loaded as 16-bit words and each element widened in registers
// (bf16 bits -> f32 -> f16): exact in f16 apart from subnormals, as in matmul_coop.comp.
// Precision of the activations: f16 (11 significant bits, more than the bf16 a bf16 model computes
// in); SPLIT = 1 adds the f16 remainder x - hi as a second product (about 21 bits).
// For few tokens (batched decode) the grid is split along K (gl_WorkGroupID.z: plane z of o,
// summed by matmul_reduce.comp). Needs K % 16 == 0, M % 16 == 0, k_chunk % 64 == 0 and 16-byte
// aligned rows (the host checks).
#include "common.glsl"
#define BM 128u
#define KB 64u
#define KBP 72u // padded row of the activation tile (f16 elements) against bank conflicts
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint T = DT_BF16;
layout(constant_id = 1) const uint SPLIT = 0; // 1: activations as hi + lo (two products)
layout(constant_id = 2) const uint FT = 4;    // 16 x 16 fragments per subgroup along the tokens: 1, 2 or 4
const uint BT = 16u * FT;
const uint XL = BT * KB / 4u / 128u; // 16-byte activation loads per invocation per block (2, 4 or 8)
const uint TILE = BT * KBP / 8u;     // one buffer of the activation tile, in uvec4 (8 halves)
layout(std430, binding = 0) readonly buffer X { vec4 d[]; } x;
layout(std430, binding = 1) readonly buffer WH { float16_t d[]; } wh; // bf16 bits too (read as f16, widened by CVT)
layout(std430, binding = 2) readonly buffer B { float d[]; } bias;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M;
    uint k_chunk, split_stride; // split-K: workgroup z sums K in [z * k_chunk, +k_chunk) into plane z of o
} p;
// uvec4, not uvec2: a cooperative-matrix load wants 16-byte aligned addresses, and an 8-byte element type
// let the driver place the array on an 8-byte boundary (measured: every load began 8 bytes early)
shared uvec4 Ah[2u * TILE];
shared uvec4 Al[SPLIT != 0u ? 2u * TILE : 1u];
shared uvec4 Cw[4][64]; // one 16 x 16 staging tile per subgroup (vec4: 16-byte aligned too)

vec4 xr[8];

void load_x(uint k0, uint ke, uint tid, uint t0) {
    [[unroll]] for (uint i = 0u; i < XL; i++) {
        uint e = tid + i * 128u, r = e / (KB / 4u), q = e % (KB / 4u), t = t0 + r, k = k0 + q * 4u;
        xr[i] = (t < p.n && k < ke) ? x.d[(p.x_off + t * p.x_stride + k) >> 2] : vec4(0.0);
    }
}

void store_x(uint tid, uint base) {
    [[unroll]] for (uint i = 0u; i < XL; i++) {
        uint e = tid + i * 128u, r = e / (KB / 4u), q = e % (KB / 4u), at = base + (r * KBP + q * 4u) / 8u;
        vec4 v = xr[i];
        // hi: the low 13 mantissa bits cleared (integer ops: nothing folds it away); lo: the remainder
        vec4 hv = SPLIT != 0u ? uintBitsToFloat(floatBitsToUint(v) & uvec4(0xffffe000u)) : v;
        uvec2 h = uvec2(packHalf2x16(hv.xy), packHalf2x16(hv.zw));
        if ((q & 1u) == 0u) Ah[at].xy = h; else Ah[at].zw = h;
        if (SPLIT != 0u) {
            uvec2 l = uvec2(packHalf2x16(v.xy - hv.xy), packHalf2x16(v.zw - hv.zw));
            if ((q & 1u) == 0u) Al[at].xy = l; else Al[at].zw = l;
        }
    }
}

#define FRAG fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define HALF fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>

// rows m .. m+15 x k .. k+15 of the weight (colMajor: a column of B is a weight row). Addresses are
// clamped into the weight instead of branching, so the eight loads of a block issue back to back: rows
// past M compute outputs nobody stores, and k-steps past ke are skipped by KSTEP.
#define LOAD_B(b, m, k) coopMatLoadNV(b, wh.d, p.w_off + min(m, p.M - 16u) * p.w_stride + min(k, ke - 16u), p.w_stride, true);
#define LOAD_BLOCK(b, k)                                                                      \
    LOAD_B(b##00, m0, k) LOAD_B(b##01, m0 + 16u, k)                                           \
    LOAD_B(b##10, m0, k + 16u) LOAD_B(b##11, m0 + 16u, k + 16u)                               \
    LOAD_B(b##20, m0, k + 32u) LOAD_B(b##21, m0 + 16u, k + 32u)                               \
    LOAD_B(b##30, m0, k + 48u) LOAD_B(b##31, m0 + 16u, k + 48u)
// bf16 weights: each element's bits (loaded as an f16's) widened to f32 and rounded to f16, in registers
#define CVT(b)                                                                                \
    if (T == DT_BF16) {                                                                       \
        [[unroll]] for (uint i = 0u; i < b.length(); i += 2u) {                               \
            uint u = packFloat2x16(f16vec2(b[i], b[i + 1u]));                                 \
            b[i] = float16_t(uintBitsToFloat(u << 16));                                       \
            b[i + 1u] = float16_t(uintBitsToFloat(u & 0xffff0000u));                          \
        }                                                                                     \
    }

#define MMA2(c0, c1, a, b0, b1) c0 = coopMatMulAddNV(a, b0, c0); c1 = coopMatMulAddNV(a, b1, c1)

// the products of one 16-deep step s of the block: token fragment i times both row fragments
#define KSTEP(A, s, b0, b1)                                                                   \
    if (k0 + 16u * (s) < ke) {                                                                \
        HALF a;                                                                               \
        coopMatLoadNV(a, A, base + (16u * (s)) / 8u, KBP / 8u, false);                        \
        MMA2(c00, c01, a, b0, b1);                                                            \
        if (FT >= 2u) {                                                                       \
            coopMatLoadNV(a, A, base + (16u * KBP + 16u * (s)) / 8u, KBP / 8u, false);        \
            MMA2(c10, c11, a, b0, b1);                                                        \
        }                                                                                     \
        if (FT == 4u) {                                                                       \
            coopMatLoadNV(a, A, base + (32u * KBP + 16u * (s)) / 8u, KBP / 8u, false);        \
            MMA2(c20, c21, a, b0, b1);                                                        \
            coopMatLoadNV(a, A, base + (48u * KBP + 16u * (s)) / 8u, KBP / 8u, false);        \
            MMA2(c30, c31, a, b0, b1);                                                        \
        }                                                                                     \
    }

void main() {
    uint tid = gl_LocalInvocationID.x, sg = tid / 32u, lane = tid % 32u;
    uint m0 = gl_WorkGroupID.x * BM + sg * 32u, t0 = gl_WorkGroupID.y * BT;
    uint kb = gl_WorkGroupID.z * p.k_chunk, ke = min(kb + p.k_chunk, p.K);
    uint o_off = p.o_off + gl_WorkGroupID.z * p.split_stride;
    // fragments as separate variables, not arrays (an array indexed in a loop may live in local memory)
    FRAG c00 = FRAG(0.0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    HALF b00, b01, b10, b11, b20, b21, b30, b31, n00, n01, n10, n11, n20, n21, n30, n31;
    load_x(kb, ke, tid, t0);
    LOAD_BLOCK(b, kb)
    uint blk = 0u;
    for (uint k0 = kb; k0 < ke; k0 += KB, blk++) {
        uint base = (blk & 1u) * TILE;
        // the other buffer was last read before the previous block's barrier: safe to overwrite
        store_x(tid, base);
        barrier();
        if (k0 + KB < ke) { // the next block's loads, in flight during this block's products
            load_x(k0 + KB, ke, tid, t0);
            LOAD_BLOCK(n, k0 + KB)
        }
        CVT(b00) CVT(b01) CVT(b10) CVT(b11) CVT(b20) CVT(b21) CVT(b30) CVT(b31)
        KSTEP(Ah, 0u, b00, b01) KSTEP(Ah, 1u, b10, b11) KSTEP(Ah, 2u, b20, b21) KSTEP(Ah, 3u, b30, b31)
        if (SPLIT != 0u) {
            KSTEP(Al, 0u, b00, b01) KSTEP(Al, 1u, b10, b11) KSTEP(Al, 2u, b20, b21) KSTEP(Al, 3u, b30, b31)
        }
        b00 = n00, b01 = n01, b10 = n10, b11 = n11, b20 = n20, b21 = n21, b30 = n30, b31 = n31;
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
            uint t = t0 + i * 16u + e / 16u, m = m0 + j * 16u + e % 16u;
            if (t < p.n && m < p.M) {
                float v = uintBitsToFloat(Cw[sg][e >> 2][e & 3u]);
                if (p.has_bias != 0u) v += bias.d[p.b_off + m];
                o.d[o_off + t * p.o_stride + m] = v;
            }
        }
        subgroupBarrier(); // the tile is read before the next store overwrites it
    }
}
