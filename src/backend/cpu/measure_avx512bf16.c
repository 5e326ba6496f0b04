/* measure_avx512bf16: the AVX-512 BF16 half of the machine measurements (see kernels.h). Compiled with
 * -mavx512f -mavx512bw -mavx512bf16; called only after cpu_have_avx512bf16(). */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__)
#if !defined(__AVX512F__) || !defined(__AVX512BF16__)
#error "measure_avx512bf16.c must be compiled with -mavx512f -mavx512bw -mavx512bf16"
#endif

#include <immintrin.h>

float cpu_avx512bf16_dot_loop(long iters) {
    /* 12 independent chains: covers VDPBF16PS's latency (~6 cycles) on 2 pipes */
    __m512 acc[12];
    __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
    for (int j = 0; j < 12; j++) acc[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) acc[j] = _mm512_dpbf16_ps(acc[j], a, a);
    }
    __m512 s = acc[0];
    for (int j = 1; j < 12; j++) s = _mm512_add_ps(s, acc[j]);
    return _mm512_reduce_add_ps(s);
}

#else
typedef int cpu_measure_avx512bf16_unused; /* not x86-64: nothing to build */
#endif
