#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// out[t, m] = x[t, :] . w[m, :] (+ bias[m]) for few tokens (decode): each
// workgroup owns ROWS weight rows and NT tokens; invocations stride over K so
// each weight word is read once per workgroup, then one shared-memory tree
// reduces all ROWS x NT sums together.
#include "common.glsl"
#define ROWS 4u
#define WG 128u
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint T = 0;
layout(constant_id = 1) const uint NT = 1; // tokens per workgroup: 1, 2, 4 or 8
layout(std430, binding = 0) readonly buffer X { float d[]; } x;
layout(std430, binding = 1) readonly buffer W { uint d[]; } w;
layout(std430, binding = 2) readonly buffer B { float d[]; } bias;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M;
} p;
shared float red[ROWS * 8u][WG];
void main() {
    uint tid = gl_LocalInvocationID.x;
    uint m0 = flat_group() * ROWS, t0 = gl_WorkGroupID.z * NT;
    float acc[ROWS * 8u];
    [[unroll]] for (uint i = 0u; i < ROWS * NT; i++) acc[i] = 0.0;
    for (uint k = tid; k < p.K; k += WG) {
        float xv[8];
        [[unroll]] for (uint j = 0u; j < NT; j++) xv[j] = (t0 + j < p.n) ? x.d[p.x_off + (t0 + j) * p.x_stride + k] : 0.0;
        [[unroll]] for (uint r = 0u; r < ROWS; r++) {
            float wv = (m0 + r < p.M) ? LOADT(w, T, p.w_off + (m0 + r) * p.w_stride + k) : 0.0;
            [[unroll]] for (uint j = 0u; j < NT; j++) acc[r * NT + j] += wv * xv[j];
        }
    }
    [[unroll]] for (uint i = 0u; i < ROWS * NT; i++) red[i][tid] = acc[i];
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s)
            [[unroll]] for (uint i = 0u; i < ROWS * NT; i++) red[i][tid] += red[i][tid + s];
        barrier();
    }
    if (tid < ROWS * NT) {
        uint r = tid / NT, j = tid % NT;
        if (m0 + r < p.M && t0 + j < p.n) {
            float v = red[tid][0];
            if (p.has_bias != 0u) v += bias.d[p.b_off + m0 + r];
            o.d[p.o_off + (t0 + j) * p.o_stride + m0 + r] = v;
        }
    }
}
