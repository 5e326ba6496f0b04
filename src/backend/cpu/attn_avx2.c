/* AVX2 inner loops of paged attention (see cpu_attention.c): the G query heads
 * that share one KV head are scored against a run of consecutive cache slots
 * together, so each K/V row is loaded and converted once for all of them. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "backend/cpu/kernels.h"

static inline __m256 ld8(be_dtype dt, const char *p) {
    if (dt == BE_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    if (dt == BE_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    return _mm256_loadu_ps((const float *)p);
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The loops below with G a compile-time constant (the public functions switch on it): with a run-time G the
 * accumulator array lived on the stack, a load and a store around every FMA (seen in `perf annotate`). The
 * arithmetic and its order are the same for every G. */
#define AI static inline __attribute__((always_inline))

enum { KPF = 4 }; /* keys ahead whose K rows are prefetched: the row loads waited on memory (~60% of qk) */

AI void qk_g(const int G, const float *q, int hd, const char *k, be_dtype kt, size_t es, int64_t kstride, int count,
             float scale, float *scores, int64_t lds) {
    int hd8 = hd & ~7;
    size_t rowb = (size_t)hd * es;
    for (int j = 0; j < count; j++) {
        const char *kr = k + (size_t)(j * kstride) * es;
        if (j + KPF < count)
            for (size_t b = 0; b < rowb; b += 64) _mm_prefetch(kr + (size_t)(KPF * kstride) * es + b, _MM_HINT_T0);
        __m256 acc[CPU_ATTN_MAX_GROUP];
        for (int g = 0; g < G; g++) acc[g] = _mm256_setzero_ps();
        for (int c = 0; c < hd8; c += 8) {
            __m256 kv = ld8(kt, kr + (size_t)c * es);
            for (int g = 0; g < G; g++) acc[g] = _mm256_fmadd_ps(_mm256_loadu_ps(q + (int64_t)g * hd + c), kv, acc[g]);
        }
        for (int g = 0; g < G; g++) {
            float s = hsum(acc[g]);
            for (int c = hd8; c < hd; c++) s += q[(int64_t)g * hd + c] * cpu_elem_f32(kt, kr, c);
            scores[(int64_t)g * lds + j] = s * scale;
        }
    }
}

void cpu_avx2_attn_qk(const float *q, int G, int hd, const void *k, be_dtype kt, int64_t kstride, int count,
                      float scale, float *scores, int64_t lds) {
    size_t es = be_dtype_size(kt);
    switch (G) {
#define QK(n) case n: qk_g(n, q, hd, k, kt, es, kstride, count, scale, scores, lds); break;
        QK(1) QK(2) QK(3) QK(4) QK(5) QK(6) QK(7) QK(8)
#undef QK
    default: qk_g(G, q, hd, k, kt, es, kstride, count, scale, scores, lds); break;
    }
}

AI void pv_g(const int G, float *o, int hd, const float *p, int64_t lds, const char *v, be_dtype vt, size_t es,
             int64_t vstride, int count) {
    int hd8 = hd & ~7;
    for (int c = 0; c < hd8; c += 8) {
        __m256 acc[CPU_ATTN_MAX_GROUP];
        for (int g = 0; g < G; g++) acc[g] = _mm256_loadu_ps(o + (int64_t)g * hd + c);
        for (int j = 0; j < count; j++) {
            __m256 vv = ld8(vt, v + (size_t)(j * vstride + c) * es);
            for (int g = 0; g < G; g++) acc[g] = _mm256_fmadd_ps(_mm256_set1_ps(p[(int64_t)g * lds + j]), vv, acc[g]);
        }
        for (int g = 0; g < G; g++) _mm256_storeu_ps(o + (int64_t)g * hd + c, acc[g]);
    }
    for (int c = hd8; c < hd; c++)
        for (int j = 0; j < count; j++) {
            float x = cpu_elem_f32(vt, v + (size_t)(j * vstride) * es, c);
            for (int g = 0; g < G; g++) o[(int64_t)g * hd + c] += p[(int64_t)g * lds + j] * x;
        }
}

void cpu_avx2_attn_pv(float *o, int G, int hd, const float *p, int64_t lds, const void *v, be_dtype vt,
                      int64_t vstride, int count) {
    size_t es = be_dtype_size(vt);
    switch (G) {
#define PV(n) case n: pv_g(n, o, hd, p, lds, v, vt, es, vstride, count); break;
        PV(1) PV(2) PV(3) PV(4) PV(5) PV(6) PV(7) PV(8)
#undef PV
    default: pv_g(G, o, hd, p, lds, v, vt, es, vstride, count); break;
    }
}
#endif
