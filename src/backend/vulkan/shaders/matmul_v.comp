#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// out = x @ w^T (+ bias) for many tokens on f32 FMA units: 64 tokens x 128
// weight rows per workgroup of 256, each invocation 4 tokens x 8 rows (32
// accumulators); K in steps of 16 through shared memory, filled with one
// 16-byte load of x and one of w per invocation (weights widened to f32 on
// the way), the next step's loads issued before this step's products. Needs
// K % 8 == 0 and aligned rows (the host checks; matmul.comp covers the rest).
#include "common.glsl"
#define BT 64u
#define BN 128u
#define BK 16u
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint T = 0;
layout(std430, binding = 0) readonly buffer X { vec4 d[]; } x;
layout(std430, binding = 1) readonly buffer W { uvec4 d[]; } w;
layout(std430, binding = 2) readonly buffer B { float d[]; } bias;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M;
} p;
shared vec4 xs[BK][BT / 4u + 1u];  // [k][token / 4]: 4 tokens per vec4
shared vec4 ws[BK][BN / 4u + 1u];  // [k][row / 4]

const uint E = T == DT_F32 ? 4u : 8u;
const uint WL = BN * BK / E / 256u; // 16-byte weight loads per invocation per step: 1 (16-bit) or 2 (f32)

vec4 xr;
uvec4 wr[2];

void load(uint k0, uint tid, uint t0, uint m0) {
    { // x: 64 tokens x 16 k = 256 vec4, one per invocation
        uint t = t0 + tid / 4u, k = k0 + (tid % 4u) * 4u;
        xr = (t < p.n && k < p.K) ? x.d[(p.x_off + t * p.x_stride + k) >> 2] : vec4(0.0);
    }
    [[unroll]] for (uint i = 0u; i < WL; i++) {
        uint e = tid + i * 256u, m = m0 + e / (BK / E), k = k0 + (e % (BK / E)) * E;
        wr[i] = (m < p.M && k < p.K) ? w.d[(p.w_off + m * p.w_stride + k) / E] : uvec4(0u);
    }
}

void put_w(uint k, uint m, float v) { ws[k][m / 4u][m % 4u] = v; }

void store(uint tid) {
    { // transpose into [k][token]
        uint t = tid / 4u, k = (tid % 4u) * 4u;
        xs[k][t / 4u][t % 4u] = xr.x;
        xs[k + 1u][t / 4u][t % 4u] = xr.y;
        xs[k + 2u][t / 4u][t % 4u] = xr.z;
        xs[k + 3u][t / 4u][t % 4u] = xr.w;
    }
    [[unroll]] for (uint i = 0u; i < WL; i++) {
        uint e = tid + i * 256u, m = e / (BK / E), k = (e % (BK / E)) * E;
        uvec4 u = wr[i];
        if (T == DT_F32) {
            put_w(k, m, uintBitsToFloat(u.x)); put_w(k + 1u, m, uintBitsToFloat(u.y));
            put_w(k + 2u, m, uintBitsToFloat(u.z)); put_w(k + 3u, m, uintBitsToFloat(u.w));
        } else {
            [[unroll]] for (uint j = 0u; j < 4u; j++) {
                vec2 f = T == DT_F16 ? unpackHalf2x16(u[j]) : vec2(bf16_lo(u[j]), bf16_hi(u[j]));
                put_w(k + 2u * j, m, f.x);
                put_w(k + 2u * j + 1u, m, f.y);
            }
        }
    }
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint m0 = gl_WorkGroupID.x * BN, t0 = gl_WorkGroupID.y * BT;
    uint tq = tid / 16u, mq = tid % 16u; // tokens 4*tq .. +3; rows 4*mq .. +3 and 64 + 4*mq .. +3
    vec4 acc[8]; // acc[r] over 4 tokens, r = the 8 rows
    [[unroll]] for (uint r = 0u; r < 8u; r++) acc[r] = vec4(0.0);
    load(0u, tid, t0, m0);
    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        barrier();
        store(tid);
        barrier();
        if (k0 + BK < p.K) load(k0 + BK, tid, t0, m0);
        for (uint kk = 0u; kk < BK; kk++) {
            vec4 a = xs[kk][tq], b0 = ws[kk][mq], b1 = ws[kk][16u + mq];
            acc[0] += a * b0.x; acc[1] += a * b0.y; acc[2] += a * b0.z; acc[3] += a * b0.w;
            acc[4] += a * b1.x; acc[5] += a * b1.y; acc[6] += a * b1.z; acc[7] += a * b1.w;
        }
    }
    [[unroll]] for (uint r = 0u; r < 8u; r++) {
        uint m = m0 + (r < 4u ? 4u * mq + r : 64u + 4u * mq + r - 4u);
        if (m >= p.M) continue;
        float bv = p.has_bias != 0u ? bias.d[p.b_off + m] : 0.0;
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            uint t = t0 + 4u * tq + j;
            if (t < p.n) o.d[p.o_off + t * p.o_stride + m] = acc[r][j] + bv;
        }
    }
}
