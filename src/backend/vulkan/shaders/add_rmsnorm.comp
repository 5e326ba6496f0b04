#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// The residual add and the next RMSNorm in one pass, one workgroup per row:
// x += h; out = x / rms(x) * (w + w_offset). out may be h: every element is
// read and written by the same invocation, before and after the reduction.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer X { float d[]; } x;
layout(std430, binding = 1) readonly buffer H { float d[]; } h;
layout(std430, binding = 2) readonly buffer W { float d[]; } w;
layout(std430, binding = 3) buffer O { float d[]; } o;
layout(std430, binding = 0) buffer X4 { vec4 d[]; } x4;
layout(std430, binding = 1) readonly buffer H4 { vec4 d[]; } h4;
layout(std430, binding = 2) readonly buffer W4 { vec4 d[]; } w4;
layout(std430, binding = 3) buffer O4 { vec4 d[]; } o4;
layout(push_constant) uniform P {
    uint x_off, x_stride, h_off, h_stride, w_off, o_off, o_stride, D, n;
    float eps, w_offset;
    uint vec; // every offset, stride and D a multiple of 4
} p;
shared float part[64];
void main() {
    uint r = flat_group(), t = gl_LocalInvocationID.x;
    if (r >= p.n) return;
    uint xb = p.x_off + r * p.x_stride, hb = p.h_off + r * p.h_stride, ob = p.o_off + r * p.o_stride;
    float ss = 0.0;
    if (p.vec != 0u) {
        for (uint j = t; j < p.D / 4u; j += 256u) {
            vec4 v = x4.d[xb / 4u + j] + h4.d[hb / 4u + j];
            x4.d[xb / 4u + j] = v;
            ss += dot(v, v);
        }
    } else {
        for (uint j = t; j < p.D; j += 256u) {
            float v = x.d[xb + j] + h.d[hb + j];
            x.d[xb + j] = v;
            ss += v * v;
        }
    }
    ss = subgroupAdd(ss);
    if (subgroupElect()) part[gl_SubgroupID] = ss;
    barrier();
    float tot = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) tot += part[i];
    float inv = 1.0 / sqrt(tot / float(p.D) + p.eps);
    if (p.vec != 0u) {
        for (uint j = t; j < p.D / 4u; j += 256u) // x as this invocation wrote it
            o4.d[ob / 4u + j] = (x4.d[xb / 4u + j] * inv) * (w4.d[p.w_off / 4u + j] + p.w_offset);
    } else {
        for (uint j = t; j < p.D; j += 256u) o.d[ob + j] = (x.d[xb + j] * inv) * (w.d[p.w_off + j] + p.w_offset);
    }
}
