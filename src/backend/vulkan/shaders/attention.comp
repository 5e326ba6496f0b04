#version 450
#extension GL_GOOGLE_include_directive : require
// Causal paged attention, one workgroup per (query row, head): keys in chunks
// of WG positions (one per invocation), flash-style online softmax (running
// max and sum in f32), then each invocation accumulates the output dims
// d = tid, tid + WG, ... (head_dim <= 4 * WG) over the chunk's values.
#include "common.glsl"
#define WG 64u
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint T = 0;
layout(std430, binding = 0) readonly buffer Q { float d[]; } q;
layout(std430, binding = 1) readonly buffer KC { uint d[]; } kc;
layout(std430, binding = 2) readonly buffer VC { uint d[]; } vc;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(std430, binding = 4) readonly buffer QS { int d[]; } qs;
layout(std430, binding = 5) readonly buffer SL { int d[]; } sl;
layout(std430, binding = 6) readonly buffer BT { int d[]; } bt;
layout(push_constant) uniform P {
    uint q_off, q_stride, k_off, v_off, c_stride, o_off, o_stride;
    uint qs_off, sl_off, bt_off, bt_stride, n_seqs, block_size;
    uint H, HKV, HD, window;
    float scale;
} p;
shared float qv[256];
shared float sc[WG];
shared float red[WG];

float reduce_max(float v, uint tid) {
    red[tid] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] = max(red[tid], red[tid + s]);
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

float reduce_sum(float v, uint tid) {
    red[tid] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

void main() {
    uint h = gl_WorkGroupID.x, r = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    // the sequence that owns row r (q_start is sorted)
    int lo = 0, hi = int(p.n_seqs) - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (qs.d[p.qs_off + uint(mid)] <= int(r)) lo = mid; else hi = mid - 1;
    }
    uint s = uint(lo);
    int q0 = qs.d[p.qs_off + s], q1 = qs.d[p.qs_off + s + 1u];
    int pos = sl.d[p.sl_off + s] - (q1 - q0) + (int(r) - q0);
    int j0 = 0;
    if (p.window > 0u && pos + 1 > int(p.window)) j0 = pos + 1 - int(p.window);
    uint kvh = h / (p.H / p.HKV);
    for (uint d = tid; d < p.HD; d += WG) qv[d] = q.d[p.q_off + r * p.q_stride + h * p.HD + d];
    barrier();
    float m = -1.0 / 0.0, l = 0.0;
    float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);
    uint btb = p.bt_off + s * p.bt_stride;
    for (int c0 = j0; c0 <= pos; c0 += int(WG)) {
        int j = c0 + int(tid);
        float score = -1.0 / 0.0;
        if (j <= pos) {
            uint slot = uint(bt.d[btb + uint(j) / p.block_size]) * p.block_size + uint(j) % p.block_size;
            uint kb = p.k_off + slot * p.c_stride + kvh * p.HD;
            float dot_ = 0.0;
            for (uint d = 0u; d < p.HD; d++) dot_ += qv[d] * LOADT(kc, T, kb + d);
            score = dot_ * p.scale;
        }
        float mc = reduce_max(score, tid);
        float mn = max(m, mc);
        float pj = j <= pos ? exp(score - mn) : 0.0;
        sc[tid] = pj;
        float corr = exp(m - mn); // 0 on the first chunk (m = -inf)
        l = l * corr + reduce_sum(pj, tid);
        m = mn;
        int cn = min(int(WG), pos + 1 - c0);
        for (uint a = 0u; a < 4u; a++) {
            uint d = tid + a * WG;
            if (d >= p.HD) break;
            float v = acc[a] * corr;
            for (int jj = 0; jj < cn; jj++) {
                uint jt = uint(c0 + jj);
                uint slot = uint(bt.d[btb + jt / p.block_size]) * p.block_size + jt % p.block_size;
                v += sc[jj] * LOADT(vc, T, p.v_off + slot * p.c_stride + kvh * p.HD + d);
            }
            acc[a] = v;
        }
        barrier();
    }
    for (uint a = 0u; a < 4u; a++) {
        uint d = tid + a * WG;
        if (d < p.HD) o.d[p.o_off + r * p.o_stride + h * p.HD + d] = acc[a] / l;
    }
}
