#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
// Causal paged attention (flash-decoding). One workgroup per (query row, KV
// head, block of its query heads, split of the context): K/V rows of that KV
// head are read once for all query heads that share them (GQA), and a long
// context is cut into splits so that a decode step still fills the GPU. Keys
// go in chunks of 128, one per invocation for the scores (16-byte loads of K
// where aligned), with an online softmax per head (f32 running max and sum);
// then invocation t accumulates 4 output dims for the keys t / (HD/4) (mod
// 128 / (HD/4)) of the chunk. With one split the result is written; with
// several, each writes (acc, max, sum) to scratch and attn_combine.comp merges.
// gpt-oss's sinks (has_sinks): head h's logit sinks[h] joins the row's max and
// denominator where the splits meet (here with one split, else in the combine),
// so it counts once per row whatever the number of splits.
// Groups (WGS = 128 x NG invocations, opt-in): the workgroup's NG groups of 128 take the split's chunks in
// turn, each with its own running max and sum, and are merged in shared memory at the end, so a context of
// up to NG chunks needs no second workgroup (nor attn_combine) and its chunks' load chains run side by side.
#include "common.glsl"
#define WG 128u
#define GMAX 8u
layout(local_size_x_id = 2) in;
layout(constant_id = 0) const uint T = 0;
layout(constant_id = 1) const uint VU = 16; // V loads in flight per invocation (0: one at a time, for A/B runs)
layout(constant_id = 2) const uint WGS = 128; // invocations: NG groups of 128 (the host checks shared memory)
const uint NG = WGS / WG;
layout(std430, binding = 0) readonly buffer Q { float d[]; } q;
layout(std430, binding = 1) readonly buffer KC { uint d[]; } kc;
layout(std430, binding = 2) readonly buffer VC { uint d[]; } vc;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(std430, binding = 4) readonly buffer QS { int d[]; } qs;
layout(std430, binding = 5) readonly buffer SL { int d[]; } sl;
layout(std430, binding = 6) readonly buffer BT { int d[]; } bt;
layout(std430, binding = 1) readonly buffer KC4 { uvec4 d[]; } kc4;
layout(std430, binding = 2) readonly buffer VC2 { uvec2 d[]; } vc2;
layout(std430, binding = 2) readonly buffer VC4 { uvec4 d[]; } vc4;
layout(std430, binding = 7) writeonly buffer SC { float d[]; } part; // [row][head][split][HD + 2]
layout(std430, binding = 8) readonly buffer SK { float d[]; } sk; // f32 [1, H] (has_sinks)
layout(push_constant) uniform P {
    uint q_off, q_stride, k_off, v_off, c_stride, o_off, o_stride;
    uint qs_off, sl_off, bt_off, bt_stride, n_seqs, block_size;
    uint H, HKV, HD, window, vec, GB, n_split, split_keys, vvec;
    float scale, softcap; // softcap > 0: scores become tanh(s / softcap) * softcap (Gemma 2)
    uint has_sinks, sk_off;
    uint skip_q; // > 0: rows of sequences with at least skip_q query rows are attn_prefill.comp's (skipped here)
    uint kstage; // K rows read together through shared memory (needs vec and HD / E a power of two)
} p;
shared float qv[1024];      // GB * HD <= 1024
shared uint slots[NG * WG];      // cache slot of each key of the group's chunk
shared float fm[NG * GMAX], fl[NG * GMAX]; // final max and sum per group and head
shared float red[NG * GMAX * 32]; // per group, head and subgroup (subgroups of 4 or more invocations)
// the chunk's K rows staged for the scores (kstage); the probabilities of each group's chunk, [group][head][key]
// (after the scores: a barrier apart from the staged K); then (after the loop) the partial outputs of the key
// groups x GB x HD, as floats
shared uvec4 stage[1024];
#define FIN(i) stage[(i) >> 2][(i) & 3u]
#define PR(i) FIN(i) // the same floats, in the loop (the probabilities) instead of after it

const uint E = T == DT_F32 ? 4u : 8u;

// v[g] := the maximum (red_max) or sum (red_sum) of v[g] over the workgroup, for every head g < GB at
// once: one pair of barriers for all heads (the per-head reductions were a pair each)
// a group's subgroups (subgroups never straddle groups: 128 is a multiple of the subgroup size)
uint group_subgroups() { return gl_NumSubgroups / NG; }
uint red_at(uint g, uint i) { return ((gl_LocalInvocationID.x / WG) * GMAX + g) * 32u + i; }

void red_max(inout float v[GMAX], uint GB) {
    uint ns = group_subgroups(), me = gl_SubgroupID % ns;
    [[unroll]] for (uint g = 0u; g < GMAX; g++) {
        if (g >= GB) continue;
        float t = subgroupMax(v[g]);
        if (subgroupElect()) red[red_at(g, me)] = t;
    }
    barrier();
    [[unroll]] for (uint g = 0u; g < GMAX; g++) {
        if (g >= GB) continue;
        float r = red[red_at(g, 0u)];
        for (uint i = 1u; i < ns; i++) r = max(r, red[red_at(g, i)]);
        v[g] = r;
    }
    barrier();
}

void red_sum(inout float v[GMAX], uint GB) {
    uint ns = group_subgroups(), me = gl_SubgroupID % ns;
    [[unroll]] for (uint g = 0u; g < GMAX; g++) {
        if (g >= GB) continue;
        float t = subgroupAdd(v[g]);
        if (subgroupElect()) red[red_at(g, me)] = t;
    }
    barrier();
    [[unroll]] for (uint g = 0u; g < GMAX; g++) {
        if (g >= GB) continue;
        float r = 0.0;
        for (uint i = 0u; i < ns; i++) r += red[red_at(g, i)];
        v[g] = r;
    }
    barrier();
}

#include "unpack.glsl"

// The scores of this invocation's key (sc[g] += q_g . k) with the chunk's K rows read through shared memory:
// KP keys at a time, each row's 16-byte pieces read by neighbouring invocations (whole rows per load
// instruction, all of an invocation's loads in flight together), stored with the piece index XORed by the key
// (so the 8 rows that 8 neighbouring invocations read at once fall in distinct banks). Opt-in (kstage): on the
// H100 a decode step ran 2-5% slower with it than with each invocation reading its key's row itself
// (PERFORMANCE.md, session 14).
void scores_staged(int c0, int je, uint kvh, uint GB, inout float sc[GMAX]) {
    uint tid = gl_LocalInvocationID.x, DG = p.HD / E, KP = min(WG, 1024u / DG), sw = min(DG, 8u) - 1u;
    barrier(); // slots[] written
    for (uint k0 = 0u; k0 < WG; k0 += KP) {
        uvec4 r[8];
        [[unroll]] for (uint i = 0u; i < 8u; i++) {
            uint e = tid + i * WG, key = k0 + e / DG;
            r[i] = uvec4(0u);
            if (e < KP * DG && c0 + int(key) < je)
                r[i] = kc4.d[(p.k_off + slots[key] * p.c_stride + kvh * p.HD) / E + e % DG];
        }
        [[unroll]] for (uint i = 0u; i < 8u; i++) {
            uint e = tid + i * WG, kl = e / DG;
            if (e < KP * DG) stage[kl * DG + ((e % DG) ^ (kl & sw))] = r[i];
        }
        barrier();
        if (tid >= k0 && tid < k0 + KP && c0 + int(tid) < je) {
            uint kl = tid - k0;
            for (uint d8 = 0u; d8 < DG; d8++) {
                float f[8];
                unpack8(stage[kl * DG + (d8 ^ (kl & sw))], f);
                [[unroll]] for (uint g = 0u; g < GMAX; g++)
                    if (g < GB)
                        [[unroll]] for (uint i = 0u; i < E; i++) sc[g] += qv[g * p.HD + d8 * E + i] * f[i];
            }
        }
        barrier();
    }
}

void main() {
    uint nb = (p.H / p.HKV + p.GB - 1u) / p.GB;
    uint kvh = gl_WorkGroupID.x / nb, r = gl_WorkGroupID.y, z = gl_WorkGroupID.z;
    uint gi = gl_LocalInvocationID.x / WG, tid = gl_LocalInvocationID.x % WG; // group, and place in it
    uint G = p.H / p.HKV, g0 = (gl_WorkGroupID.x % nb) * p.GB, GB = min(p.GB, G - g0);
    int lo = 0, hi = int(p.n_seqs) - 1; // the sequence that owns row r (q_start is sorted)
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (qs.d[p.qs_off + uint(mid)] <= int(r)) lo = mid; else hi = mid - 1;
    }
    uint s = uint(lo);
    int q0 = qs.d[p.qs_off + s], q1 = qs.d[p.qs_off + s + 1u];
    if (p.skip_q > 0u && uint(q1 - q0) >= p.skip_q) return; // the whole workgroup: r is uniform
    int pos = sl.d[p.sl_off + s] - (q1 - q0) + (int(r) - q0);
    int j0 = 0;
    if (p.window > 0u && pos + 1 > int(p.window)) j0 = pos + 1 - int(p.window);
    int jb = j0 + int(z * p.split_keys), je = min(pos + 1, jb + int(p.split_keys)); // this split's keys [jb, je)
    for (uint e = gl_LocalInvocationID.x; e < GB * p.HD; e += WGS)
        qv[e] = q.d[p.q_off + r * p.q_stride + (kvh * G + g0) * p.HD + e];
    barrier();
    uint DG = p.HD / 4u, KG = WG / DG, dg = tid % DG, kg = tid / DG; // PV: 4 dims x every KG-th key
    float m[GMAX], l[GMAX], acc[GMAX][4];
    [[unroll]] for (uint g = 0u; g < GMAX; g++) {
        m[g] = -1.0 / 0.0; l[g] = 0.0;
        [[unroll]] for (uint i = 0u; i < 4u; i++) acc[g][i] = 0.0;
    }
    uint btb = p.bt_off + s * p.bt_stride, sb = gi * WG, prb = gi * GMAX * WG; // the group's slots and PR
    // every group runs the same number of rounds (the barriers): in the last, some groups may have no chunk
    int rounds = je > jb ? (je - jb + int(WG * NG) - 1) / int(WG * NG) : 0;
    for (int it = 0; it < rounds; it++) {
        int c0 = jb + (it * int(NG) + int(gi)) * int(WG);
        int j = c0 + int(tid);
        bool valid = j < je;
        float sc[GMAX];
        [[unroll]] for (uint g = 0u; g < GMAX; g++) sc[g] = 0.0;
        if (valid) {
            uint slot = uint(bt.d[btb + uint(j) / p.block_size]) * p.block_size + uint(j) % p.block_size;
            slots[sb + tid] = slot;
        }
        if (p.kstage != 0u) scores_staged(c0, je, kvh, GB, sc);
        else if (valid) {
            uint slot = slots[sb + tid];
            uint kb = p.k_off + slot * p.c_stride + kvh * p.HD;
            if (p.vec != 0u) {
                for (uint d0 = 0u; d0 < p.HD; d0 += E) {
                    float f[8];
                    unpack8(kc4.d[(kb + d0) / E], f);
                    [[unroll]] for (uint g = 0u; g < GMAX; g++)
                        if (g < GB)
                            [[unroll]] for (uint i = 0u; i < E; i++) sc[g] += qv[g * p.HD + d0 + i] * f[i];
                }
            } else {
                for (uint d = 0u; d < p.HD; d++) {
                    float kv_ = LOADT(kc, T, kb + d);
                    [[unroll]] for (uint g = 0u; g < GMAX; g++)
                        if (g < GB) sc[g] += qv[g * p.HD + d] * kv_;
                }
            }
        }
        float corr[GMAX], red_v[GMAX];
        [[unroll]] for (uint g = 0u; g < GMAX; g++) {
            float sv = sc[g] * p.scale;
            if (p.softcap > 0.0) sv = tanh(clamp(sv / p.softcap, -15.0, 15.0)) * p.softcap;
            sc[g] = valid ? sv : -1.0 / 0.0;
            red_v[g] = sc[g];
        }
        red_max(red_v, GB); // GB is uniform: the barriers inside stay in uniform control flow
        [[unroll]] for (uint g = 0u; g < GMAX; g++) {
            if (g >= GB) continue;
            float mn = max(m[g], red_v[g]); // -inf only while a group has had no key (NG > 1)
            float pj = valid ? exp(sc[g] - mn) : 0.0;
            PR(prb + g * WG + tid) = floatBitsToUint(pj); // read by the products below, after red_sum's barriers
            corr[g] = mn == -1.0 / 0.0 ? 1.0 : exp(m[g] - mn); // 0 on the first chunk
            m[g] = mn;
            red_v[g] = pj;
        }
        red_sum(red_v, GB);
        [[unroll]] for (uint g = 0u; g < GMAX; g++)
            if (g < GB) l[g] = l[g] * corr[g] + red_v[g];
        [[unroll]] for (uint g = 0u; g < GMAX; g++)
            if (g < GB)
                [[unroll]] for (uint i = 0u; i < 4u; i++) acc[g][i] *= corr[g];
        int cn = min(int(WG), je - c0);
        if (VU > 0u && p.vvec != 0u) {
            // VU keys' V loads issued together, then their products. The loop below issues one and waits for
            // it before the next: a decode step's attention was bound by that latency, not by bandwidth
            // (PERFORMANCE.md, session 12: 16 of 37 us a layer on 8B went to the V loads)
            for (int j0 = int(kg); j0 < cn && kg < KG; j0 += int(VU * KG)) {
                uvec4 raw[VU > 0u ? VU : 1u];
                [[unroll]] for (uint b = 0u; b < VU; b++) { // past the chunk: the last key's row (weight 0)
                    uint vb = p.v_off + slots[sb + uint(min(j0 + int(b * KG), cn - 1))] * p.c_stride + kvh * p.HD + dg * 4u;
                    raw[b] = T == DT_F32 ? vc4.d[vb >> 2] : uvec4(vc2.d[vb >> 2], 0u, 0u);
                }
                [[unroll]] for (uint b = 0u; b < VU; b++) {
                    int jj = j0 + int(b * KG);
                    vec4 vv = T == DT_F32 ? uintBitsToFloat(raw[b])
                            : T == DT_F16 ? vec4(unpackHalf2x16(raw[b].x), unpackHalf2x16(raw[b].y))
                                          : vec4(bf16_lo(raw[b].x), bf16_hi(raw[b].x), bf16_lo(raw[b].y), bf16_hi(raw[b].y));
                    [[unroll]] for (uint g = 0u; g < GMAX; g++) {
                        if (g >= GB) continue;
                        float pj = jj < cn ? uintBitsToFloat(PR(prb + g * WG + uint(min(jj, int(WG) - 1)))) : 0.0;
                        acc[g][0] += pj * vv.x; acc[g][1] += pj * vv.y; acc[g][2] += pj * vv.z; acc[g][3] += pj * vv.w;
                    }
                }
            }
        } else
        for (int jj = int(kg); jj < cn && kg < KG; jj += int(KG)) {
            uint vb = p.v_off + slots[sb + uint(jj)] * p.c_stride + kvh * p.HD + dg * 4u;
            vec4 vv;
            if (p.vvec != 0u && T == DT_F32) {
                vv = uintBitsToFloat(vc4.d[vb >> 2]);
            } else if (p.vvec != 0u) {
                uvec2 w2 = vc2.d[vb >> 2];
                vv = T == DT_F16 ? vec4(unpackHalf2x16(w2.x), unpackHalf2x16(w2.y))
                                 : vec4(bf16_lo(w2.x), bf16_hi(w2.x), bf16_lo(w2.y), bf16_hi(w2.y));
            } else {
                vv = vec4(LOADT(vc, T, vb), LOADT(vc, T, vb + 1u), LOADT(vc, T, vb + 2u), LOADT(vc, T, vb + 3u));
            }
            [[unroll]] for (uint g = 0u; g < GMAX; g++) {
                if (g >= GB) continue;
                float pj = uintBitsToFloat(PR(prb + g * WG + uint(jj)));
                acc[g][0] += pj * vv.x; acc[g][1] += pj * vv.y; acc[g][2] += pj * vv.z; acc[g][3] += pj * vv.w;
            }
        }
        barrier();
    }
    // merge the key groups of every group (each group's sums scaled to the workgroup's running max, M), then
    // write (or hand the split's partial to attn_combine). The partial outputs go through FIN in passes of as
    // many as it holds (one pass with one group, in the order of the key groups)
    if (tid == 0u)
        [[unroll]] for (uint g = 0u; g < GMAX; g++) { fm[gi * GMAX + g] = m[g]; fl[gi * GMAX + g] = l[g]; }
    barrier();
    float M[GMAX], L[GMAX], own[GMAX];
    [[unroll]] for (uint g = 0u; g < GMAX; g++) {
        M[g] = fm[g];
        for (uint i = 1u; i < NG; i++) M[g] = max(M[g], fm[i * GMAX + g]);
        L[g] = NG == 1u ? fl[g] : 0.0;
        for (uint i = 0u; NG > 1u && i < NG; i++)
            if (fm[i * GMAX + g] != -1.0 / 0.0) L[g] += fl[i * GMAX + g] * exp(fm[i * GMAX + g] - M[g]);
        own[g] = NG == 1u ? 1.0 : m[g] == -1.0 / 0.0 ? 0.0 : exp(m[g] - M[g]);
    }
    uint lid = gl_LocalInvocationID.x, P = NG * KG, cap = 4096u / (GB * p.HD), slot = gi * KG + kg;
    float vout[1024u / WGS];
    [[unroll]] for (uint i = 0u; i < 1024u / WGS; i++) vout[i] = 0.0;
    for (uint b0 = 0u; b0 < P; b0 += cap) {
        if (kg < KG && slot >= b0 && slot < b0 + cap) // when HD/4 does not divide 128 the last few have no key group
            [[unroll]] for (uint g = 0u; g < GMAX; g++)
                if (g < GB)
                    [[unroll]] for (uint i = 0u; i < 4u; i++)
                        FIN(((slot - b0) * GB + g) * p.HD + dg * 4u + i) =
                            floatBitsToUint(NG == 1u ? acc[g][i] : acc[g][i] * own[g]);
        barrier();
        uint nk = min(cap, P - b0);
        [[unroll]] for (uint i = 0u; i < 1024u / WGS; i++) {
            uint e = lid + i * WGS;
            if (e >= GB * p.HD) continue;
            for (uint k = 0u; k < nk; k++) vout[i] += uintBitsToFloat(FIN((k * GB + e / p.HD) * p.HD + e % p.HD));
        }
        barrier();
    }
    [[unroll]] for (uint i = 0u; i < 1024u / WGS; i++) {
        uint e = lid + i * WGS;
        if (e >= GB * p.HD) continue;
        uint g = e / p.HD, d = e % p.HD, h = kvh * G + g0 + g;
        float v = vout[i], mg = 0.0, lg = 0.0;
        [[unroll]] for (uint gg = 0u; gg < GMAX; gg++) // M[g], L[g] with g computed: select from the registers
            if (gg == g) { mg = M[gg]; lg = L[gg]; }
        if (p.n_split == 1u) {
            float den = lg;
            if (p.has_sinks != 0u) { // out = v e^(m - M) / (l e^(m - M) + e^(sink - M)), M = max(m, sink)
                float sv = sk.d[p.sk_off + h], Ms = max(mg, sv), c = exp(mg - Ms);
                v *= c;
                den = lg * c + exp(sv - Ms);
            }
            o.d[p.o_off + r * p.o_stride + h * p.HD + d] = v / den;
        } else {
            uint pb = ((r * p.H + h) * p.n_split + z) * (p.HD + 2u);
            part.d[pb + d] = v;
            if (d == 0u) { part.d[pb + p.HD] = mg; part.d[pb + p.HD + 1u] = lg; }
        }
    }
}
