#version 450
#extension GL_GOOGLE_include_directive : require
// cache[slot[t], :] = k[t, :] in the cache dtype; negative slots are skipped.
// A 16-bit cache is written a word (two elements) per invocation, so its
// offset, row stride and width are even (checked on the host).
#include "common.glsl"
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint T = 0;
layout(std430, binding = 0) readonly buffer K { float d[]; } k;
layout(std430, binding = 1) readonly buffer S { int d[]; } slot;
layout(std430, binding = 2) writeonly buffer C { uint d[]; } cache;
layout(push_constant) uniform P {
    uint k_off, k_stride, s_off, c_off, c_stride, n, C, rows;
} p;
void main() {
    uint t = gl_WorkGroupID.y, e = gl_GlobalInvocationID.x;
    if (t >= p.n) return;
    int s = slot.d[p.s_off + t];
    if (s < 0 || uint(s) >= p.rows) return;
    uint src = p.k_off + t * p.k_stride, dst = p.c_off + uint(s) * p.c_stride;
    if (T == DT_F32) {
        if (e < p.C) cache.d[dst + e] = floatBitsToUint(k.d[src + e]);
    } else {
        uint c = 2u * e;
        if (c >= p.C) return;
        uint lo = f32_to_t(k.d[src + c], T), hi = f32_to_t(k.d[src + c + 1u], T);
        cache.d[(dst + c) >> 1] = lo | (hi << 16);
    }
}
