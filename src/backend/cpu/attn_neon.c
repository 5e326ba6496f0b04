/* NEON inner loops of paged attention (aarch64; see cpu_attention.c and attn_avx2.c): the G query
 * heads that share one KV head are scored against a run of consecutive cache slots in chunks of 4, 2
 * or 1 heads, so each K/V row is loaded and converted once per chunk. The chunk size and the dtype are
 * compile-time constants after inlining, which keeps the accumulators (two per head) in registers;
 * with a run-time head count they would live on the stack. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include "backend/cpu/kernels.h"
#include "backend/cpu/neon_inl.h"

/* scores[g * lds] = scale * dot(q[g * hd ..], kr) for g < GC (<= 4), one key row kr. */
NEON_AI void qk_heads(const be_dtype dt, const int GC, const float *q, int hd, const char *kr, float scale,
                      float *scores, int64_t lds) {
    float32x4_t a0[4], a1[4];
#pragma GCC unroll 4
    for (int g = 0; g < GC; g++) a0[g] = a1[g] = vdupq_n_f32(0);
    int c = 0;
    for (; c + 8 <= hd; c += 8) {
        float32x4_t k0 = neon_ld4(dt, kr, c), k1 = neon_ld4(dt, kr, c + 4);
#pragma GCC unroll 4
        for (int g = 0; g < GC; g++) {
            a0[g] = vfmaq_f32(a0[g], vld1q_f32(q + (int64_t)g * hd + c), k0);
            a1[g] = vfmaq_f32(a1[g], vld1q_f32(q + (int64_t)g * hd + c + 4), k1);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < GC; g++) {
        float s = vaddvq_f32(vaddq_f32(a0[g], a1[g]));
        for (int cc = c; cc < hd; cc++) s += q[(int64_t)g * hd + cc] * cpu_elem_f32(dt, kr, cc);
        scores[(int64_t)g * lds] = s * scale;
    }
}

NEON_AI void qk_dt(const be_dtype dt, const float *q, int G, int hd, const void *k, int64_t kstride, int count,
                   float scale, float *scores, int64_t lds) {
    int64_t kb = kstride * (dt == BE_F32 ? 4 : 2);
    for (int j = 0; j < count; j++) {
        const char *kr = (const char *)k + j * kb;
        int g = 0;
        for (; g + 4 <= G; g += 4) qk_heads(dt, 4, q + (int64_t)g * hd, hd, kr, scale, scores + g * lds + j, lds);
        if (G - g >= 2) {
            qk_heads(dt, 2, q + (int64_t)g * hd, hd, kr, scale, scores + g * lds + j, lds);
            g += 2;
        }
        if (G - g == 1) qk_heads(dt, 1, q + (int64_t)g * hd, hd, kr, scale, scores + g * lds + j, lds);
    }
}

void cpu_neon_attn_qk(const float *q, int G, int hd, const void *k, be_dtype kt, int64_t kstride, int count,
                      float scale, float *scores, int64_t lds) {
    if (kt == BE_F16) qk_dt(BE_F16, q, G, hd, k, kstride, count, scale, scores, lds);
    else if (kt == BE_BF16) qk_dt(BE_BF16, q, G, hd, k, kstride, count, scale, scores, lds);
    else qk_dt(BE_F32, q, G, hd, k, kstride, count, scale, scores, lds);
}

/* o[g * hd + c .. + 8) += sum_j p[g * lds + j] * v_j[c .. + 8) for g < GC (<= 4); v_j = v + j * vb bytes. */
NEON_AI void pv_heads(const be_dtype dt, const int GC, float *o, int hd, const float *p, int64_t lds, const char *v,
                      int64_t vb, int count, int c) {
    float32x4_t a0[4], a1[4];
#pragma GCC unroll 4
    for (int g = 0; g < GC; g++) {
        a0[g] = vld1q_f32(o + (int64_t)g * hd + c);
        a1[g] = vld1q_f32(o + (int64_t)g * hd + c + 4);
    }
    for (int j = 0; j < count; j++) {
        float32x4_t v0 = neon_ld4(dt, v + j * vb, c), v1 = neon_ld4(dt, v + j * vb, c + 4);
#pragma GCC unroll 4
        for (int g = 0; g < GC; g++) {
            float pg = p[(int64_t)g * lds + j];
            a0[g] = vfmaq_n_f32(a0[g], v0, pg);
            a1[g] = vfmaq_n_f32(a1[g], v1, pg);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < GC; g++) {
        vst1q_f32(o + (int64_t)g * hd + c, a0[g]);
        vst1q_f32(o + (int64_t)g * hd + c + 4, a1[g]);
    }
}

NEON_AI void pv_dt(const be_dtype dt, float *o, int G, int hd, const float *p, int64_t lds, const void *v,
                   int64_t vstride, int count) {
    int64_t vb = vstride * (dt == BE_F32 ? 4 : 2);
    int c = 0;
    for (; c + 8 <= hd; c += 8) {
        int g = 0;
        for (; g + 4 <= G; g += 4) pv_heads(dt, 4, o + (int64_t)g * hd, hd, p + g * lds, lds, v, vb, count, c);
        if (G - g >= 2) {
            pv_heads(dt, 2, o + (int64_t)g * hd, hd, p + g * lds, lds, v, vb, count, c);
            g += 2;
        }
        if (G - g == 1) pv_heads(dt, 1, o + (int64_t)g * hd, hd, p + g * lds, lds, v, vb, count, c);
    }
    for (; c < hd; c++) /* the columns past the last 8 */
        for (int j = 0; j < count; j++) {
            float x = cpu_elem_f32(dt, (const char *)v + j * vb, c);
            for (int g = 0; g < G; g++) o[(int64_t)g * hd + c] += p[(int64_t)g * lds + j] * x;
        }
}

void cpu_neon_attn_pv(float *o, int G, int hd, const float *p, int64_t lds, const void *v, be_dtype vt,
                      int64_t vstride, int count) {
    if (vt == BE_F16) pv_dt(BE_F16, o, G, hd, p, lds, v, vstride, count);
    else if (vt == BE_BF16) pv_dt(BE_BF16, o, G, hd, p, lds, v, vstride, count);
    else pv_dt(BE_F32, o, G, hd, p, lds, v, vstride, count);
}
#else
typedef int cpu_attn_neon_unused; /* not aarch64: nothing to build */
#endif
