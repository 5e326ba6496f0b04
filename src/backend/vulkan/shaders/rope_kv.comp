#version 450
#extension GL_GOOGLE_include_directive : require
// RoPE and the KV-cache write in one pass (what rope(q), rope(k), kv_write(k)
// and kv_write(v) do one after another): per token, q is rotated in place
// (one pair (i, i + rot/2) per invocation), and the K and V rows are written
// to their cache slot two adjacent elements per invocation, K rotated on the
// way from the unrotated activation. Negative slots write nothing.
#include "common.glsl"
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint T = 0; // cache dtype
layout(std430, binding = 0) buffer Q { float d[]; } q;
layout(std430, binding = 1) readonly buffer K { float d[]; } k;
layout(std430, binding = 2) readonly buffer V { float d[]; } v;
layout(std430, binding = 3) readonly buffer Pos { int d[]; } pos;
layout(std430, binding = 4) readonly buffer F { float d[]; } fr;
layout(std430, binding = 5) readonly buffer S { int d[]; } slot;
layout(std430, binding = 6) writeonly buffer KC { uint d[]; } kc;
layout(std430, binding = 7) writeonly buffer VC { uint d[]; } vc;
layout(push_constant) uniform P {
    uint q_off, q_stride, k_off, k_stride, v_off, v_stride, p_off, f_off, s_off;
    uint kc_off, vc_off, c_stride, n, Hq, Hk, HD, rot, rows;
    float mscale; // cos and sin multiplied by it (longrope's attention factor)
} p;

vec2 cs_of(uint t, uint i) { // cos, sin of pos * inv_freq, reduced to [-pi, pi] first
    float ang = float(pos.d[p.p_off + t]) * fr.d[p.f_off + i];
    float kk = floor(ang * 0.15915494309189535 + 0.5);
    float r = (ang - kk * 6.28125) - kk * 0.0019353071795864769;
    return vec2(cos(r), sin(r)) * p.mscale;
}

// element d of K row t after rotation
float k_rot(uint t, uint hb, uint d) {
    uint half_ = p.rot / 2u;
    float x = k.d[hb + d];
    if (d >= p.rot) return x;
    uint i = d % half_;
    vec2 cs = cs_of(t, i);
    return d < half_ ? x * cs.x - k.d[hb + d + half_] * cs.y : x * cs.x + k.d[hb + d - half_] * cs.y;
}

void put(uint which, uint at, float a, float b) { // elements at, at + 1 of a cache row
    if (T == DT_F32) {
        if (which == 0u) { kc.d[at] = floatBitsToUint(a); kc.d[at + 1u] = floatBitsToUint(b); }
        else { vc.d[at] = floatBitsToUint(a); vc.d[at + 1u] = floatBitsToUint(b); }
    } else {
        uint wv = f32_to_t(a, T) | (f32_to_t(b, T) << 16);
        if (which == 0u) kc.d[at >> 1]= wv; else vc.d[at >> 1] = wv;
    }
}

void main() {
    uint t = gl_WorkGroupID.y, e = gl_GlobalInvocationID.x;
    if (t >= p.n) return;
    uint half_ = p.rot / 2u, nq = p.Hq * half_, nkv = p.Hk * p.HD / 2u;
    if (e < nq) { // q, in place
        uint h = e / half_, i = e % half_;
        vec2 cs = cs_of(t, i);
        uint b = p.q_off + t * p.q_stride + h * p.HD + i;
        float x0 = q.d[b], x1 = q.d[b + half_];
        q.d[b] = x0 * cs.x - x1 * cs.y;
        q.d[b + half_] = x1 * cs.x + x0 * cs.y;
        return;
    }
    e -= nq;
    if (e >= 2u * nkv) return;
    int s = slot.d[p.s_off + t];
    if (s < 0 || uint(s) >= p.rows) return;
    uint which = e / nkv, c = (e % nkv) * 2u; // element pair c, c + 1 of the K (0) or V (1) row
    uint h = c / p.HD, d = c % p.HD;
    if (which == 0u) {
        uint hb = p.k_off + t * p.k_stride + h * p.HD;
        put(0u, p.kc_off + uint(s) * p.c_stride + c, k_rot(t, hb, d), k_rot(t, hb, d + 1u));
    } else {
        uint vb = p.v_off + t * p.v_stride + c;
        put(1u, p.vc_off + uint(s) * p.c_stride + c, v.d[vb], v.d[vb + 1u]);
    }
}
