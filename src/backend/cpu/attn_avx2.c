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

void cpu_avx2_attn_qk(const float *q, int G, int hd, const void *k, be_dtype kt, int64_t kstride, int count,
                      float scale, float *scores, int64_t lds) {
    size_t es = be_dtype_size(kt);
    int hd8 = hd & ~7;
    for (int j = 0; j < count; j++) {
        const char *kr = (const char *)k + (size_t)(j * kstride) * es;
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

void cpu_avx2_attn_pv(float *o, int G, int hd, const float *p, int64_t lds, const void *v, be_dtype vt,
                      int64_t vstride, int count) {
    size_t es = be_dtype_size(vt);
    int hd8 = hd & ~7;
    for (int c = 0; c < hd8; c += 8) {
        __m256 acc[CPU_ATTN_MAX_GROUP];
        for (int g = 0; g < G; g++) acc[g] = _mm256_loadu_ps(o + (int64_t)g * hd + c);
        for (int j = 0; j < count; j++) {
            __m256 vv = ld8(vt, (const char *)v + (size_t)(j * vstride + c) * es);
            for (int g = 0; g < G; g++) acc[g] = _mm256_fmadd_ps(_mm256_set1_ps(p[(int64_t)g * lds + j]), vv, acc[g]);
        }
        for (int g = 0; g < G; g++) _mm256_storeu_ps(o + (int64_t)g * hd + c, acc[g]);
    }
    for (int c = hd8; c < hd; c++)
        for (int j = 0; j < count; j++) {
            float x = cpu_elem_f32(vt, (const char *)v + (size_t)(j * vstride) * es, c);
            for (int g = 0; g < G; g++) o[(int64_t)g * hd + c] += p[(int64_t)g * lds + j] * x;
        }
}
#endif
