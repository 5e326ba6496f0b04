/* The AVX2 paths of MXFP4 weights (see mxfp4.c): per block, the 32 codes become int8 values of twice the
 * e2m1 value through one byte shuffle (so 1.5 is 3), then f32 times half the block's power of two. Every
 * product is exact, so the decode equals the portable one's (but for the sign of zero codes). Rows are
 * decoded into a panel for several tokens, or straight into the dot products for one. */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/kernels.h"

/* 2^(e - 128) (half the block scale) from its bits, without a libm call per block: e = 0 and 1 are the
 * subnormals 2^-128 and 2^-127; e = 255 is torch.ldexp's overflow of 2^128 to inf. */
static inline float half_scale(uint8_t e) {
    uint32_t bits = e >= 2 ? (e == 255 ? 0x7f800000u : (uint32_t)(e - 1) << 23) : 0x00200000u << e;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline void put8(float *d, __m128i v8, __m256 sc) {
    _mm256_storeu_ps(d, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v8)), sc));
}

void cpu_avx2_mxfp4_decode_row(float *dst, const uint8_t *src, int K) {
    const __m128i lut = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    for (int b = 0; b < K / BE_MXFP4_BLOCK; b++) {
        const uint8_t *blk = src + (size_t)b * BE_MXFP4_BLOCK_BYTES;
        __m256 sc = _mm256_set1_ps(half_scale(blk[0]));
        __m128i q = _mm_loadu_si128((const __m128i *)(blk + 1));
        __m128i lo = _mm_shuffle_epi8(lut, _mm_and_si128(q, m4));
        __m128i hi = _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(q, 4), m4));
        __m128i a = _mm_unpacklo_epi8(lo, hi), c = _mm_unpackhi_epi8(lo, hi); /* elements 0..15, 16..31 */
        float *d = dst + (size_t)b * BE_MXFP4_BLOCK;
        put8(d, a, sc);
        put8(d + 8, _mm_srli_si128(a, 8), sc);
        put8(d + 16, c, sc);
        put8(d + 24, _mm_srli_si128(c, 8), sc);
    }
}

/* ---- fused decode and dot for one token (decode steps, single-token expert groups) ---- */

/* The 32 codes of a block as int8 (twice the e2m1 value): elements 0..15 in *a, 16..31 in *c. */
static inline void block_i8(const uint8_t *blk, __m128i *a, __m128i *c) {
    const __m128i lut = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m128i q = _mm_loadu_si128((const __m128i *)(blk + 1));
    __m128i lo = _mm_shuffle_epi8(lut, _mm_and_si128(q, m4));
    __m128i hi = _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(q, 4), m4));
    *a = _mm_unpacklo_epi8(lo, hi);
    *c = _mm_unpackhi_epi8(lo, hi);
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 i8f(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

/* One row's block against x: the 32 products summed in two accumulators, then times the scale. */
static inline __m256 row_block(const uint8_t *blk, __m256 x0, __m256 x1, __m256 x2, __m256 x3, __m256 acc) {
    __m128i a, c;
    block_i8(blk, &a, &c);
    __m256 s0 = _mm256_mul_ps(i8f(a), x0), s1 = _mm256_mul_ps(i8f(_mm_srli_si128(a, 8)), x1);
    s0 = _mm256_fmadd_ps(i8f(c), x2, s0);
    s1 = _mm256_fmadd_ps(i8f(_mm_srli_si128(c, 8)), x3, s1);
    return _mm256_fmadd_ps(_mm256_add_ps(s0, s1), _mm256_set1_ps(half_scale(blk[0])), acc);
}

/* Rows [0, rows) for one token: four rows at a time share each loaded piece of x. */
void cpu_avx2_mxfp4_gemv1(const float *x, int K, const void *w, int64_t ldwb, int rows, const float *bias, float *y) {
    const uint8_t *wb = w;
    int nb = K / BE_MXFP4_BLOCK, r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *w0 = wb + r * ldwb, *w1 = w0 + ldwb, *w2 = w1 + ldwb, *w3 = w2 + ldwb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0; b < nb; b++) {
            const float *xb = x + (int64_t)b * BE_MXFP4_BLOCK;
            __m256 x0 = _mm256_loadu_ps(xb), x1 = _mm256_loadu_ps(xb + 8);
            __m256 x2 = _mm256_loadu_ps(xb + 16), x3 = _mm256_loadu_ps(xb + 24);
            int64_t o = (int64_t)b * BE_MXFP4_BLOCK_BYTES;
            a0 = row_block(w0 + o, x0, x1, x2, x3, a0);
            a1 = row_block(w1 + o, x0, x1, x2, x3, a1);
            a2 = row_block(w2 + o, x0, x1, x2, x3, a2);
            a3 = row_block(w3 + o, x0, x1, x2, x3, a3);
        }
        y[r] = hsum8(a0), y[r + 1] = hsum8(a1), y[r + 2] = hsum8(a2), y[r + 3] = hsum8(a3);
    }
    for (; r < rows; r++) {
        __m256 a0 = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const float *xb = x + (int64_t)b * BE_MXFP4_BLOCK;
            a0 = row_block(wb + r * ldwb + (int64_t)b * BE_MXFP4_BLOCK_BYTES, _mm256_loadu_ps(xb),
                           _mm256_loadu_ps(xb + 8), _mm256_loadu_ps(xb + 16), _mm256_loadu_ps(xb + 24), a0);
        }
        y[r] = hsum8(a0);
    }
    for (int i = 0; bias && i < rows; i++) y[i] += bias[i];
}
