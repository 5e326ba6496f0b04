#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// out[t, m] = x[t, :] . w[m, :] (+ bias[m]) for few tokens (decode), streaming
// the weights at full width: one subgroup per weight row, each lane reading
// 16 bytes (8 f16/bf16 or 4 f32 values) per load, four loads in flight, then
// one subgroupAdd per token. Needs 16-byte aligned weight rows and 4-float
// aligned x rows (the host checks; matvec.comp covers the rest). RPW rows per
// workgroup, whatever subgroup size the device picks.
#include "common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint T = 0;
layout(constant_id = 1) const uint NT = 1;  // tokens: 1, 2, 4 or 8
layout(constant_id = 2) const uint RPW = 4; // rows per workgroup (128 / subgroup size)
layout(std430, binding = 0) readonly buffer X { vec4 d[]; } x;
layout(std430, binding = 1) readonly buffer W { uvec4 d[]; } w;
layout(std430, binding = 2) readonly buffer B { float d[]; } bias;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M;
} p;

const uint E = T == DT_F32 ? 4u : 8u; // elements per 16-byte load

// acc[j] += w[0..E) . x[token j][k..k+E)
void fma_chunk(uvec4 wv, uint k, inout float acc[8]) {
    float f[8];
    if (T == DT_F32) {
        f[0] = uintBitsToFloat(wv.x); f[1] = uintBitsToFloat(wv.y);
        f[2] = uintBitsToFloat(wv.z); f[3] = uintBitsToFloat(wv.w);
    } else if (T == DT_F16) {
        vec2 a = unpackHalf2x16(wv.x), b = unpackHalf2x16(wv.y), c = unpackHalf2x16(wv.z), d = unpackHalf2x16(wv.w);
        f[0] = a.x; f[1] = a.y; f[2] = b.x; f[3] = b.y; f[4] = c.x; f[5] = c.y; f[6] = d.x; f[7] = d.y;
    } else {
        f[0] = bf16_lo(wv.x); f[1] = bf16_hi(wv.x); f[2] = bf16_lo(wv.y); f[3] = bf16_hi(wv.y);
        f[4] = bf16_lo(wv.z); f[5] = bf16_hi(wv.z); f[6] = bf16_lo(wv.w); f[7] = bf16_hi(wv.w);
    }
    for (uint j = 0u; j < NT; j++) {
        if (j >= p.n) break;
        uint xb = (p.x_off + j * p.x_stride + k) >> 2;
        vec4 x0 = x.d[xb];
        float s = dot(vec4(f[0], f[1], f[2], f[3]), x0);
        if (E == 8u) s += dot(vec4(f[4], f[5], f[6], f[7]), x.d[xb + 1u]);
        acc[j] += s;
    }
}

void main() {
    uint lane = gl_SubgroupInvocationID, S = gl_SubgroupSize;
    uint step = S * E;
    for (uint r = gl_SubgroupID; r < RPW; r += gl_NumSubgroups) {
        uint m = flat_group() * RPW + r;
        if (m >= p.M) break;
        float acc[8] = float[8](0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        uint wb = (p.w_off + m * p.w_stride) / E; // in uvec4 units
        uint k = lane * E;
        for (; k + 3u * step < p.K; k += 4u * step) { // four 16-byte loads in flight
            uvec4 a = w.d[wb + k / E], b = w.d[wb + (k + step) / E];
            uvec4 c = w.d[wb + (k + 2u * step) / E], d = w.d[wb + (k + 3u * step) / E];
            fma_chunk(a, k, acc);
            fma_chunk(b, k + step, acc);
            fma_chunk(c, k + 2u * step, acc);
            fma_chunk(d, k + 3u * step, acc);
        }
        for (; k < p.K; k += step) fma_chunk(w.d[wb + k / E], k, acc);
        for (uint j = 0u; j < NT; j++) {
            float v = subgroupAdd(acc[j]);
            if (lane == 0u && j < p.n) {
                if (p.has_bias != 0u) v += bias.d[p.b_off + m];
                o.d[p.o_off + j * p.o_stride + m] = v;
            }
        }
    }
}
