#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// Causal paged attention. One workgroup per (query row, KV head, block of up
// to 8 of its query heads): the K/V rows of that KV head are read once for
// all the query heads that share them (GQA). Keys go in chunks of 128, one
// per invocation: a dot product against every query head (16-byte loads of
// the K row where aligned), then a flash-style online softmax per head
// (running max and sum in f32); then invocation d accumulates output dim d
// (and d + 128) of every head over the chunk's values.
#include "common.glsl"
#define WG 128u
#define GMAX 8u
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint T = 0;
layout(std430, binding = 0) readonly buffer Q { float d[]; } q;
layout(std430, binding = 1) readonly buffer KC { uint d[]; } kc;
layout(std430, binding = 2) readonly buffer VC { uint d[]; } vc;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(std430, binding = 4) readonly buffer QS { int d[]; } qs;
layout(std430, binding = 5) readonly buffer SL { int d[]; } sl;
layout(std430, binding = 6) readonly buffer BT { int d[]; } bt;
layout(std430, binding = 1) readonly buffer KC4 { uvec4 d[]; } kc4;
layout(push_constant) uniform P {
    uint q_off, q_stride, k_off, v_off, c_stride, o_off, o_stride;
    uint qs_off, sl_off, bt_off, bt_stride, n_seqs, block_size;
    uint H, HKV, HD, window, vec;
    float scale;
} p;
shared float qv[GMAX * 256u];
shared float pr[GMAX][WG];
shared float red[GMAX][32]; // per subgroup (subgroups of 4 or more invocations)

const uint E = T == DT_F32 ? 4u : 8u;

float red_max(float v, uint g) {
    v = subgroupMax(v);
    if (subgroupElect()) red[g][gl_SubgroupID] = v;
    barrier();
    float r = red[g][0];
    for (uint i = 1u; i < gl_NumSubgroups; i++) r = max(r, red[g][i]);
    barrier();
    return r;
}

float red_sum(float v, uint g) {
    v = subgroupAdd(v);
    if (subgroupElect()) red[g][gl_SubgroupID] = v;
    barrier();
    float r = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) r += red[g][i];
    barrier();
    return r;
}

void unpack(uvec4 u, out float f[8]) {
    if (T == DT_F32) {
        f[0] = uintBitsToFloat(u.x); f[1] = uintBitsToFloat(u.y); f[2] = uintBitsToFloat(u.z); f[3] = uintBitsToFloat(u.w);
        f[4] = 0.0; f[5] = 0.0; f[6] = 0.0; f[7] = 0.0;
    } else if (T == DT_F16) {
        vec2 a = unpackHalf2x16(u.x), b = unpackHalf2x16(u.y), c = unpackHalf2x16(u.z), d = unpackHalf2x16(u.w);
        f[0] = a.x; f[1] = a.y; f[2] = b.x; f[3] = b.y; f[4] = c.x; f[5] = c.y; f[6] = d.x; f[7] = d.y;
    } else {
        f[0] = bf16_lo(u.x); f[1] = bf16_hi(u.x); f[2] = bf16_lo(u.y); f[3] = bf16_hi(u.y);
        f[4] = bf16_lo(u.z); f[5] = bf16_hi(u.z); f[6] = bf16_lo(u.w); f[7] = bf16_hi(u.w);
    }
}

void main() {
    uint r = gl_WorkGroupID.y, kvh = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    uint G = p.H / p.HKV, g0 = gl_WorkGroupID.z * GMAX, GB = min(GMAX, G - g0);
    int lo = 0, hi = int(p.n_seqs) - 1; // the sequence that owns row r (q_start is sorted)
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (qs.d[p.qs_off + uint(mid)] <= int(r)) lo = mid; else hi = mid - 1;
    }
    uint s = uint(lo);
    int q0 = qs.d[p.qs_off + s], q1 = qs.d[p.qs_off + s + 1u];
    int pos = sl.d[p.sl_off + s] - (q1 - q0) + (int(r) - q0);
    int j0 = 0;
    if (p.window > 0u && pos + 1 > int(p.window)) j0 = pos + 1 - int(p.window);
    for (uint e = tid; e < GB * p.HD; e += WG)
        qv[e] = q.d[p.q_off + r * p.q_stride + (kvh * G + g0) * p.HD + e];
    barrier();
    float m[GMAX], l[GMAX], acc[GMAX][2];
    for (uint g = 0u; g < GMAX; g++) { m[g] = -1.0 / 0.0; l[g] = 0.0; acc[g][0] = 0.0; acc[g][1] = 0.0; }
    uint btb = p.bt_off + s * p.bt_stride;
    for (int c0 = j0; c0 <= pos; c0 += int(WG)) {
        int j = c0 + int(tid);
        float sc[GMAX];
        for (uint g = 0u; g < GMAX; g++) sc[g] = 0.0;
        if (j <= pos) {
            uint slot = uint(bt.d[btb + uint(j) / p.block_size]) * p.block_size + uint(j) % p.block_size;
            uint kb = p.k_off + slot * p.c_stride + kvh * p.HD;
            if (p.vec != 0u) {
                for (uint d0 = 0u; d0 < p.HD; d0 += E) {
                    float f[8];
                    unpack(kc4.d[(kb + d0) / E], f);
                    for (uint g = 0u; g < GB; g++)
                        for (uint i = 0u; i < E; i++) sc[g] += qv[g * p.HD + d0 + i] * f[i];
                }
            } else {
                for (uint d = 0u; d < p.HD; d++) {
                    float kv_ = LOADT(kc, T, kb + d);
                    for (uint g = 0u; g < GB; g++) sc[g] += qv[g * p.HD + d] * kv_;
                }
            }
        }
        float corr[GMAX];
        for (uint g = 0u; g < GB; g++) {
            float sv = j <= pos ? sc[g] * p.scale : -1.0 / 0.0;
            float mn = max(m[g], red_max(sv, g));
            float pj = j <= pos ? exp(sv - mn) : 0.0;
            pr[g][tid] = pj;
            corr[g] = exp(m[g] - mn); // 0 on the first chunk
            l[g] = l[g] * corr[g] + red_sum(pj, g);
            m[g] = mn;
        }
        barrier();
        int cn = min(int(WG), pos + 1 - c0);
        for (uint a = 0u; a < 2u; a++) {
            uint d = tid + a * WG;
            if (d >= p.HD) break;
            float v[GMAX];
            for (uint g = 0u; g < GB; g++) v[g] = acc[g][a] * corr[g];
            for (int jj = 0; jj < cn; jj++) {
                uint jt = uint(c0 + jj);
                uint slot = uint(bt.d[btb + jt / p.block_size]) * p.block_size + jt % p.block_size;
                float vv = LOADT(vc, T, p.v_off + slot * p.c_stride + kvh * p.HD + d);
                for (uint g = 0u; g < GB; g++) v[g] += pr[g][jj] * vv;
            }
            for (uint g = 0u; g < GB; g++) acc[g][a] = v[g];
        }
        barrier();
    }
    for (uint a = 0u; a < 2u; a++) {
        uint d = tid + a * WG;
        if (d < p.HD)
            for (uint g = 0u; g < GB; g++) o.d[p.o_off + r * p.o_stride + (kvh * G + g0 + g) * p.HD + d] = acc[g][a] / l[g];
    }
}
