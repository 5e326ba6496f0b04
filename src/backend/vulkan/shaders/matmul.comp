#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// out = x @ w^T (+ bias) for many tokens (prefill, large batches): 64 x 64
// output tiles, K in steps of 16 through shared memory (weights widened to
// f32 once per tile), 4 x 4 outputs per invocation.
#include "common.glsl"
#define BM 64u
#define BN 64u
#define BK 16u
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint T = 0;
layout(std430, binding = 0) readonly buffer X { float d[]; } x;
layout(std430, binding = 1) readonly buffer W { uint d[]; } w;
layout(std430, binding = 2) readonly buffer B { float d[]; } bias;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M;
} p;
shared float xs[BK][BM + 1u];
shared float ws[BK][BN + 1u];
void main() {
    uint tid = gl_LocalInvocationID.x;
    uint n0 = gl_WorkGroupID.x * BN, t0 = gl_WorkGroupID.y * BM;
    uint tr = (tid / 16u) * 4u, tc = (tid % 16u) * 4u; // this invocation's 4 tokens x 4 rows
    float acc[4][4];
    [[unroll]] for (uint i = 0u; i < 4u; i++)
        [[unroll]] for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;
    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        for (uint e = tid; e < BM * BK; e += 256u) {
            uint rr = e / BK, kk = e % BK;
            uint t = t0 + rr, k = k0 + kk;
            xs[kk][rr] = (t < p.n && k < p.K) ? x.d[p.x_off + t * p.x_stride + k] : 0.0;
            uint m = n0 + rr;
            ws[kk][rr] = (m < p.M && k < p.K) ? LOADT(w, T, p.w_off + m * p.w_stride + k) : 0.0;
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk++) {
            float a[4], b[4];
            [[unroll]] for (uint i = 0u; i < 4u; i++) { a[i] = xs[kk][tr + i]; b[i] = ws[kk][tc + i]; }
            [[unroll]] for (uint i = 0u; i < 4u; i++)
                [[unroll]] for (uint j = 0u; j < 4u; j++) acc[i][j] += a[i] * b[j];
        }
        barrier();
    }
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        uint t = t0 + tr + i;
        if (t >= p.n) continue;
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            uint m = n0 + tc + j;
            if (m >= p.M) continue;
            float v = acc[i][j];
            if (p.has_bias != 0u) v += bias.d[p.b_off + m];
            o.d[p.o_off + t * p.o_stride + m] = v;
        }
    }
}
