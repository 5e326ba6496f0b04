/* avx2_inl: AVX2 building blocks shared by matmul_avx2.c and matmul_avx512.c
 * (both compiled with at least -mavx2 -mfma -mf16c): weight loads that
 * convert to f32, horizontal sums, and the GEMM's panel packing. */
#ifndef VLLMC_BACKEND_CPU_AVX2_INL_H
#define VLLMC_BACKEND_CPU_AVX2_INL_H

#include <immintrin.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/half.h"

#define AI static inline __attribute__((always_inline))

/* ---- loads ---- */

AI __m256 ld8_bf16(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

AI __m256 ld8_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

/* 8 elements of a dt row starting at element i, as f32 */
AI __m256 ld8(const int dt, const void *row, int64_t i) {
    if (dt == BE_F32) return _mm256_loadu_ps((const float *)row + i);
    if (dt == BE_F16) return ld8_f16((const uint16_t *)row + i);
    return ld8_bf16((const uint16_t *)row + i);
}

AI float ld1(const int dt, const void *row, int64_t i) {
    if (dt == BE_F32) return ((const float *)row)[i];
    if (dt == BE_F16) return vc_f16_to_f32(((const uint16_t *)row)[i]);
    return vc_bf16_to_f32(((const uint16_t *)row)[i]);
}

AI float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* [hsum(a), hsum(b), hsum(c), hsum(d)] */
AI __m128 hsum8x4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    __m256 s = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

AI void transpose8(__m256 *r) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* wp[k*MR + r] = f32(w[r][k0 + k]) for r < rows (<= MR, a multiple of 8; rows past it are 0), k < kc. */
AI void pack_panel(const int dt, const char *w, int64_t ldwb, int rows, int k0, int kc, float *wp, const int MR) {
    for (int g = 0; g < MR / 8; g++) {
        int rg = rows - g * 8;
        int k = 0;
        if (rg >= 8) {
            const char *wg = w + (int64_t)g * 8 * ldwb;
            for (; k + 8 <= kc; k += 8) {
                __m256 v[8];
#pragma GCC unroll 8
                for (int r = 0; r < 8; r++) v[r] = ld8(dt, wg + r * ldwb, k0 + k);
                transpose8(v);
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) _mm256_store_ps(wp + (k + j) * MR + g * 8, v[j]);
            }
        }
        for (; k < kc; k++)
            for (int r = 0; r < 8; r++)
                wp[k * MR + g * 8 + r] = r < rg ? ld1(dt, w + (int64_t)(g * 8 + r) * ldwb, k0 + k) : 0.0f;
    }
}

#endif
