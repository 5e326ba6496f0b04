#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// out = x @ w^T (+ bias) for many tokens with MXFP4 weights (mxfp4.glsl) on f32 FMA units: the tiling
// of matmul_v.comp (64 tokens x 128 weight rows per workgroup of 256, each invocation 4 tokens x 8 rows)
// with K in steps of one 32-element block. Each step every invocation loads 8 activations and two code
// words (8 weights each, of two rows' blocks) with their scale bytes, and puts them in shared memory as
// f32 (code times its power-of-two scale: exact, as the CPU decodes them); the next step's loads are
// issued before this step's products. w_off and w_stride are in bytes; K is a multiple of 32.
#include "common.glsl"
#define BT 64u
#define BN 128u
#define BK 32u
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float d[]; } x;
layout(std430, binding = 0) readonly buffer X4 { vec4 d[]; } x4;
layout(std430, binding = 1) readonly buffer W { uint d[]; } w;
layout(std430, binding = 2) readonly buffer B { float d[]; } bias;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M, xvec;
} p;
shared vec4 xs[BK][BT / 4u + 1u];  // [k][token / 4]: 4 tokens per vec4 (8.5 KiB)
shared vec4 ws[BK][BN / 4u + 1u];  // [k][row / 4] (16.5 KiB)

#include "mxfp4.glsl"

vec4 xr[2];    // this invocation's 8 activations of the next step
uint wc[2];    // its two code words
float wsc[2];  // and their blocks' scales

void load(uint k0, uint tid, uint t0, uint m0) {
    { // x: 64 tokens x 32 k, 8 consecutive k per invocation
        uint t = t0 + tid / 4u, b = p.x_off + t * p.x_stride + k0 + (tid % 4u) * 8u;
        if (t >= p.n) {
            xr[0] = vec4(0.0), xr[1] = vec4(0.0);
        } else if (p.xvec != 0u) {
            xr[0] = x4.d[b >> 2], xr[1] = x4.d[(b >> 2) + 1u];
        } else {
            xr[0] = vec4(x.d[b], x.d[b + 1u], x.d[b + 2u], x.d[b + 3u]);
            xr[1] = vec4(x.d[b + 4u], x.d[b + 5u], x.d[b + 6u], x.d[b + 7u]);
        }
    }
    [[unroll]] for (uint i = 0u; i < 2u; i++) { // w: 128 rows x 4 code words of the step's block
        uint e = tid + i * 256u, m = m0 + e / 4u;
        wc[i] = 0u, wsc[i] = 0.0;
        if (m < p.M) {
            uint a = p.w_off + m * p.w_stride + 17u * (k0 / 32u);
            wsc[i] = mx_scale((w.d[a >> 2] >> (8u * (a & 3u))) & 255u);
            wc[i] = mx_word(a + 1u + 4u * (e % 4u));
        }
    }
}

void put_w(uint k, uint m, float v) { ws[k][m / 4u][m % 4u] = v; }

void store(uint tid) {
    { // transpose into [k][token]
        uint t = tid / 4u, k = (tid % 4u) * 8u;
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            xs[k + j][t / 4u][t % 4u] = xr[0][j];
            xs[k + 4u + j][t / 4u][t % 4u] = xr[1][j];
        }
    }
    [[unroll]] for (uint i = 0u; i < 2u; i++) {
        uint e = tid + i * 256u, m = e / 4u, k = (e % 4u) * 8u;
        vec4 lo, hi;
        mx_decode8(wc[i], lo, hi);
        lo *= wsc[i], hi *= wsc[i];
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            put_w(k + j, m, lo[j]);
            put_w(k + 4u + j, m, hi[j]);
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
