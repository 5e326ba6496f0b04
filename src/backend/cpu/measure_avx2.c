/* measure_avx2: the AVX2 halves of the machine measurements (see kernels.h). */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__)
#if !defined(__AVX2__) || !defined(__FMA__)
#error "measure_avx2.c must be compiled with -mavx2 -mfma -mf16c"
#endif

#include <immintrin.h>

void cpu_avx2_triad(float *a, const float *b, const float *c, float s, size_t n) {
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(a + i, _mm256_fmadd_ps(vs, _mm256_loadu_ps(c + i), _mm256_loadu_ps(b + i)));
        _mm256_storeu_ps(a + i + 8, _mm256_fmadd_ps(vs, _mm256_loadu_ps(c + i + 8), _mm256_loadu_ps(b + i + 8)));
    }
    for (; i < n; i++) a[i] = b[i] + s * c[i];
}

float cpu_avx2_fma_loop(long iters) {
    /* 12 independent chains: enough to cover 4-cycle latency on 2 FMA ports */
    __m256 acc[12];
    __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int j = 0; j < 12; j++) acc[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) acc[j] = _mm256_fmadd_ps(acc[j], m, a);
    }
    __m256 s = acc[0];
    for (int j = 1; j < 12; j++) s = _mm256_add_ps(s, acc[j]);
    return _mm256_cvtss_f32(s);
}

#else
typedef int cpu_measure_avx2_unused; /* not x86-64: nothing to build */
#endif
