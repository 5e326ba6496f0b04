#version 450
#extension GL_GOOGLE_include_directive : require
// out = x / rms(x) * (w + w_offset), one workgroup per row; in place is allowed
// (each element is read and written by the same invocation after the reduction).
#include "common.glsl"
layout(local_size_x = 128) in;
layout(std430, binding = 0) readonly buffer X { float d[]; } x;
layout(std430, binding = 1) readonly buffer W { float d[]; } w;
layout(std430, binding = 2) buffer O { float d[]; } o;
layout(push_constant) uniform P {
    uint x_off, x_stride, w_off, o_off, o_stride, D, n;
    float eps, w_offset;
} p;
shared float red[128];
void main() {
    uint r = flat_group(), t = gl_LocalInvocationID.x;
    if (r >= p.n) return;
    uint xb = p.x_off + r * p.x_stride, ob = p.o_off + r * p.o_stride;
    float ss = 0.0;
    for (uint j = t; j < p.D; j += 128u) { float v = x.d[xb + j]; ss += v * v; }
    red[t] = ss;
    barrier();
    for (uint s = 64u; s > 0u; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        barrier();
    }
    float inv = 1.0 / sqrt(red[0] / float(p.D) + p.eps);
    for (uint j = t; j < p.D; j += 128u) o.d[ob + j] = (x.d[xb + j] * inv) * (w.d[p.w_off + j] + p.w_offset);
}
