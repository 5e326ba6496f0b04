#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
// Causal paged attention for the rows of prompts (flash attention): one workgroup per block of BR query rows
// of one sequence and one KV head, with the GB query heads of that KV head that the block takes (GQA):
// 32 query vectors (BR x GB) share every K and V row the workgroup reads, where attention.comp (one
// workgroup per query row) reads them once per row. Keys go in chunks of 32 through shared memory: K,
// then the scores (each invocation 2 query vectors x 4 keys, 8-dim dot steps), an online softmax per
// query vector (f32 running max and sum, reduced over the 8 invocations of a query pair by shuffles),
// then V over the same buffer and the products (each invocation QPI query vectors x 8 dims). The next
// chunk's K and this chunk's V are loaded into registers while the shared copy of the other is in use.
// A block whose rows belong to several sequences takes them in turn; sequences with fewer than min_q
// rows are left to attention.comp (its workgroups skip the rows taken here, and the reverse).
// Caches in f16/bf16 with HD of 64 or 128 (16-byte loads: the host checks the alignment); the other
// cases run attention.comp. gpt-oss's sinks join each row's max and denominator at the end.
#include "common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 0) const uint T = DT_BF16; // cache dtype: DT_F16 or DT_BF16
layout(constant_id = 1) const uint HD = 128u;   // head dim: 64 or 128
const uint QN = 32u;           // query vectors per workgroup
const uint CK = 32u;           // keys per chunk
const uint DG = HD / 8u;       // 16-byte loads per K/V row
const uint RW = DG + 1u;       // a K/V row in shared memory (uvec4): one of padding, so 8 rows read together
                               // by the score loop fall in distinct banks
const uint QPI = HD / 32u;     // products: query vectors per invocation (128 / DG invocations' groups)
const uint LPI = CK * DG / 128u; // 16-byte K (or V) loads per invocation per chunk
const uint PR = 9u;            // a row of ps: 32 probabilities + 4 of padding, in vec4
layout(std430, binding = 0) readonly buffer Q { float d[]; } q;
layout(std430, binding = 1) readonly buffer KC { uvec4 d[]; } kc;
layout(std430, binding = 2) readonly buffer VC { uvec4 d[]; } vc;
layout(std430, binding = 3) writeonly buffer O { float d[]; } o;
layout(std430, binding = 4) readonly buffer QS { int d[]; } qs;
layout(std430, binding = 5) readonly buffer SL { int d[]; } sl;
layout(std430, binding = 6) readonly buffer BT { int d[]; } bt;
layout(std430, binding = 7) readonly buffer SK { float d[]; } sk; // f32 [1, H] (has_sinks)
layout(push_constant) uniform P {
    uint q_off, q_stride, k_off, v_off, c_stride, o_off, o_stride;
    uint qs_off, sl_off, bt_off, bt_stride, n_seqs, block_size;
    uint H, HKV, window, GB, BR, min_q, has_sinks, sk_off;
    float scale, softcap; // softcap > 0: scores become tanh(s / softcap) * softcap (Gemma 2)
} p;
shared vec2 qt[HD * (QN / 2u)]; // Q transposed: [dim][query pair]
shared uvec4 kv[CK * RW];       // the chunk's K rows, then its V rows
shared vec4 ps[CK * PR];        // probabilities [key][query]
shared float cs[QN], ls[QN], ms[QN]; // per query vector: this chunk's correction, the final sum and max

#include "unpack.glsl"

uint kvh, g0, gb, btb;

// The 16-byte loads of this invocation for keys [c0, c0 + CK) of binding B (keys past jhi read jhi's row)
#define LOAD_CHUNK(B, off, c0, jhi, r)                                                                        \
    [[unroll]] for (uint i = 0u; i < LPI; i++) {                                                              \
        uint e = gl_LocalInvocationID.x + i * 128u, key = e / DG;                                              \
        int j = min(c0 + int(key), jhi);                                                                      \
        uint slot = uint(bt.d[btb + uint(j) / p.block_size]) * p.block_size + uint(j) % p.block_size;         \
        r[i] = B.d[(off + slot * p.c_stride + kvh * HD) / 8u + e % DG];                                       \
    }

void store_chunk(uvec4 r[LPI]) {
    [[unroll]] for (uint i = 0u; i < LPI; i++) {
        uint e = gl_LocalInvocationID.x + i * 128u;
        kv[(e / DG) * RW + e % DG] = r[i];
    }
}

// Rows [ra, rb) of sequence s (all of them in this block).
void segment(uint s, uint ra, uint rb) {
    uint tid = gl_LocalInvocationID.x, G = p.H / p.HKV;
    int q0 = qs.d[p.qs_off + s], base = sl.d[p.sl_off + s] - (qs.d[p.qs_off + s + 1u] - q0) - q0; // pos = base + row
    uint nq = (rb - ra) * gb;
    for (uint e = tid; e < QN * HD; e += 128u) { // query vector e / HD: row ra + (e / HD) / gb, head g0 + .. % gb
        uint qi = e / HD, d = e % HD;
        float v = 0.0;
        if (qi < nq) v = q.d[p.q_off + (ra + qi / gb) * p.q_stride + (kvh * G + g0 + qi % gb) * HD + d];
        qt[d * (QN / 2u) + qi / 2u][qi & 1u] = v;
    }
    // scores and softmax: invocation u owns query vectors 2 qp, 2 qp + 1 and keys kg + 8 c of a chunk; the 8
    // invocations of a query pair are 8 consecutive lanes of a subgroup (of 8 or more)
    uint u = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID, qp = u / 8u, kg = u % 8u;
    int posq[2], wlo[2];
    float m[2], l[2];
    [[unroll]] for (uint a = 0u; a < 2u; a++) {
        uint qi = 2u * qp + a;
        posq[a] = qi < nq ? base + int(ra + qi / gb) : -1; // -1: no query (every key masked)
        wlo[a] = p.window > 0u ? posq[a] + 1 - int(p.window) : 0;
        m[a] = -1.0 / 0.0;
        l[a] = 0.0;
    }
    // products: invocation tid owns query vectors qg * QPI .. + QPI - 1 and dims dg * 8 .. + 7
    uint dg = tid % DG, qg = tid / DG;
    float acc[QPI][8];
    [[unroll]] for (uint a = 0u; a < QPI; a++)
        [[unroll]] for (uint i = 0u; i < 8u; i++) acc[a][i] = 0.0;
    int jhi = base + int(rb) - 1, jlo = 0;
    if (p.window > 0u) jlo = max(0, base + int(ra) + 1 - int(p.window));
    uvec4 kr[LPI], vr[LPI];
    LOAD_CHUNK(kc, p.k_off, jlo, jhi, kr);
    for (int c0 = jlo; c0 <= jhi; c0 += int(CK)) {
        barrier(); // the previous chunk's products (or the Q stores) are done
        store_chunk(kr);
        barrier();
        LOAD_CHUNK(vc, p.v_off, c0, jhi, vr);
        float sc[2][4];
        [[unroll]] for (uint a = 0u; a < 2u; a++)
            [[unroll]] for (uint c = 0u; c < 4u; c++) sc[a][c] = 0.0;
        for (uint d8 = 0u; d8 < DG; d8++) {
            vec2 qd[8];
            [[unroll]] for (uint i = 0u; i < 8u; i++) qd[i] = qt[(d8 * 8u + i) * (QN / 2u) + qp];
            [[unroll]] for (uint c = 0u; c < 4u; c++) {
                float f[8];
                unpack8(kv[(kg + 8u * c) * RW + d8], f);
                [[unroll]] for (uint i = 0u; i < 8u; i++) {
                    sc[0][c] += qd[i].x * f[i];
                    sc[1][c] += qd[i].y * f[i];
                }
            }
        }
        [[unroll]] for (uint a = 0u; a < 2u; a++) {
            float mx = -1.0 / 0.0;
            [[unroll]] for (uint c = 0u; c < 4u; c++) {
                int j = c0 + int(kg + 8u * c);
                float sv = sc[a][c] * p.scale;
                if (p.softcap > 0.0) sv = tanh(clamp(sv / p.softcap, -15.0, 15.0)) * p.softcap;
                sc[a][c] = j <= posq[a] && j >= wlo[a] ? sv : -1.0 / 0.0; // posq <= jhi: keys past jhi drop too
                mx = max(mx, sc[a][c]);
            }
            mx = max(mx, subgroupShuffleXor(mx, 1u));
            mx = max(mx, subgroupShuffleXor(mx, 2u));
            mx = max(mx, subgroupShuffleXor(mx, 4u));
            float mn = max(m[a], mx), mu = mn == -1.0 / 0.0 ? 0.0 : mn; // nothing seen yet: any finite shift
            float sum = 0.0;
            [[unroll]] for (uint c = 0u; c < 4u; c++) {
                float pj = exp(sc[a][c] - mu); // 0 for masked keys
                ps[(kg + 8u * c) * PR + qp / 2u][2u * (qp & 1u) + a] = pj;
                sum += pj;
            }
            sum += subgroupShuffleXor(sum, 1u);
            sum += subgroupShuffleXor(sum, 2u);
            sum += subgroupShuffleXor(sum, 4u);
            float corr = exp(m[a] - mu); // 0 while m is -inf
            l[a] = l[a] * corr + sum;
            m[a] = mn;
            if (kg == 0u) cs[2u * qp + a] = corr;
        }
        barrier(); // K read, probabilities and corrections written
        store_chunk(vr);
        barrier();
        if (c0 + int(CK) <= jhi) LOAD_CHUNK(kc, p.k_off, c0 + int(CK), jhi, kr);
        [[unroll]] for (uint a = 0u; a < QPI; a++) {
            float cr = cs[qg * QPI + a];
            [[unroll]] for (uint i = 0u; i < 8u; i++) acc[a][i] *= cr;
        }
        int cn = min(int(CK), jhi + 1 - c0);
        for (int k = 0; k < cn; k++) {
            vec4 pv = ps[uint(k) * PR + (qg * QPI) / 4u];
            if (QPI == 2u && (qg & 1u) != 0u) pv.xy = pv.zw;
            float f[8];
            unpack8(kv[uint(k) * RW + dg], f);
            [[unroll]] for (uint a = 0u; a < QPI; a++)
                [[unroll]] for (uint i = 0u; i < 8u; i++) acc[a][i] += pv[a] * f[i];
        }
    }
    if (kg == 0u)
        [[unroll]] for (uint a = 0u; a < 2u; a++) {
            ls[2u * qp + a] = l[a];
            ms[2u * qp + a] = m[a];
        }
    barrier();
    [[unroll]] for (uint a = 0u; a < QPI; a++) {
        uint qi = qg * QPI + a;
        if (qi >= nq) continue;
        uint h = kvh * G + g0 + qi % gb;
        float den = ls[qi], c = 1.0;
        if (p.has_sinks != 0u) { // out = acc e^(m - M) / (l e^(m - M) + e^(sink - M)), M = max(m, sink)
            float sv = sk.d[p.sk_off + h], M = max(ms[qi], sv);
            c = exp(ms[qi] - M);
            den = den * c + exp(sv - M);
        }
        uint ob = p.o_off + (ra + qi / gb) * p.o_stride + h * HD + dg * 8u;
        [[unroll]] for (uint i = 0u; i < 8u; i++) o.d[ob + i] = acc[a][i] * c / den;
    }
    barrier(); // shared memory is free for the next segment
}

void main() {
    uint G = p.H / p.HKV, nb = (G + p.GB - 1u) / p.GB;
    kvh = gl_WorkGroupID.x / nb;
    g0 = (gl_WorkGroupID.x % nb) * p.GB;
    gb = min(p.GB, G - g0);
    uint n = uint(qs.d[p.qs_off + p.n_seqs]), r0 = gl_WorkGroupID.y * p.BR, r1 = min(r0 + p.BR, n);
    uint ra = r0;
    while (ra < r1) { // the block's rows by sequence (uniform: every value here is the workgroup's)
        int lo = 0, hi = int(p.n_seqs) - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (qs.d[p.qs_off + uint(mid)] <= int(ra)) lo = mid; else hi = mid - 1;
        }
        uint s = uint(lo), q1 = uint(qs.d[p.qs_off + s + 1u]), rb = min(r1, q1);
        btb = p.bt_off + s * p.bt_stride;
        if (q1 - uint(qs.d[p.qs_off + s]) >= p.min_q) segment(s, ra, rb);
        ra = rb;
    }
}
