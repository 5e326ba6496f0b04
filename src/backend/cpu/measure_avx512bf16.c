/* measure_avx512bf16: the AVX-512 BF16 and AMX half of the machine measurements (see kernels.h). Compiled
 * with -mavx512f -mavx512bw -mavx512bf16 -mamx-tile -mamx-bf16; called only after cpu_have_avx512bf16()
 * (cpu_have_amx() for the AMX loop). */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__)
#if !defined(__AVX512F__) || !defined(__AVX512BF16__) || !(defined(__AMX_TILE__) || defined(__AMXTILE__)) || \
    !(defined(__AMX_BF16__) || defined(__AMXBF16__))
#error "measure_avx512bf16.c must be compiled with -mavx512f -mavx512bw -mavx512bf16 -mamx-tile -mamx-bf16"
#endif

#include <immintrin.h>
#include <string.h>

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

float cpu_amx_dot_loop(long iters) {
    /* 4 independent accumulator tiles fed by 2 A and 2 B tiles: TDPBF16PS back to back */
    _Alignas(64) cpu_amx_cfg cfg;
    _Alignas(64) uint16_t src[16 * 32];
    _Alignas(64) float out[16 * 16];
    cpu_amx_cfg_16x64(&cfg);
    for (int i = 0; i < 16 * 32; i++) src[i] = 0x3a83; /* ~1e-3 in bf16 */
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, src, 64);
    _tile_loadd(5, src, 64);
    _tile_loadd(6, src, 64);
    _tile_loadd(7, src, 64);
    for (long i = 0; i < iters; i++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    _tile_release();
    return out[0];
}

#else
typedef int cpu_measure_avx512bf16_unused; /* not x86-64: nothing to build */
#endif
