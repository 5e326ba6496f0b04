/* matmul_avx512: the compute-bound decode matmul (8 <= n < CPU_GEMM_MIN_N
 * tokens) with AVX-512 (F + BW). Compiled with -mavx512f -mavx512bw and called
 * only after a run-time check; CPUs without it use matmul_avx2.c.
 *
 * Why: with 16 ymm registers the AVX2 tile is 4 rows x 3 tokens, and its
 * loads and bf16 conversions share the cycles of 12 FMAs. 32 zmm registers
 * hold a 4-row x 6-token tile (24 accumulators): per 16 weights of a row, one
 * conversion feeds 6 FMAs of 16 lanes. On Zen 4 a zmm FMA costs what two ymm
 * FMAs cost, so the peak is the same; the gain is fewer loads and conversions
 * per FMA. Rows are walked as 4 strips in step, as in the AVX2 kernel. The
 * sums are the same products as the AVX2 kernel's, added in another order.
 * (A 32-row x 12-token zmm GEMM micro-kernel for prefill measured within 1% of
 * the AVX2 GEMM, which already runs at ~80% of peak: not kept.) */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__)
#if !defined(__AVX512F__) || !defined(__AVX512BW__)
#error "matmul_avx512.c must be compiled with -mavx512f -mavx512bw"
#endif

#include "backend/cpu/avx2_inl.h"

/* 16 elements of a dt row from element i, as f32 */
AI __m512 ld16(const int dt, const void *row, int64_t i) {
    if (dt == BE_F32) return _mm512_loadu_ps((const float *)row + i);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)row + i));
    if (dt == BE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* [sum(a), sum(b), sum(c), sum(d)] */
AI __m256 fold(__m512 a) { /* lanes i + (i + 8) */
    return _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}

AI __m128 hsum16x4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m256 a8 = fold(a), b8 = fold(b), c8 = fold(c), d8 = fold(d);
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a8, b8), _mm256_hadd_ps(c8, d8));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* y[t*ldy + r*ys] = sum_k x[t*ldx + k] * w_r[k] (+ bias[r*ys]) for r < R, t < T
 * (compile-time constants after inlining; R is 4 or 1, T <= 6). */
AI void tile(const int dt, const int R, const int T, const float *x, int64_t ldx, int K, const char *w, int64_t rs,
             int64_t ys, const float *bias, float *y, int64_t ldy) {
    __m512 acc[4][6];
    const char *wr[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) wr[r] = w + r * rs;
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 xv[6];
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) xv[t] = _mm512_loadu_ps(x + t * ldx + k);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 wv = ld16(dt, wr[r], k);
#pragma GCC unroll 6
            for (int t = 0; t < T; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < T; t++) {
        float s[4];
        if (R == 4) {
            _mm_storeu_ps(s, hsum16x4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));
        } else {
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) s[r] = _mm512_reduce_add_ps(acc[r][t]);
        }
        const float *xt = x + t * ldx;
        for (int kk = k; kk < K; kk++) {
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) s[r] += xt[kk] * ld1(dt, wr[r], kk);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) y[t * ldy + r * ys] = bias ? s[r] + bias[r * ys] : s[r];
    }
}

/* Every token for R rows: tiles of 6, then the rest in one tile. */
AI void rows_all_tokens(const int dt, const int R, const float *x, int64_t ldx, int n, int K, const char *w,
                        int64_t rs, int64_t ys, const float *bias, float *y, int64_t ldy) {
    int t = 0;
    for (; t + 6 <= n; t += 6) tile(dt, R, 6, x + t * ldx, ldx, K, w, rs, ys, bias, y + t * ldy, ldy);
    const float *xt = x + t * ldx;
    float *yt = y + t * ldy;
    switch (n - t) {
    case 5: tile(dt, R, 5, xt, ldx, K, w, rs, ys, bias, yt, ldy); break;
    case 4: tile(dt, R, 4, xt, ldx, K, w, rs, ys, bias, yt, ldy); break;
    case 3: tile(dt, R, 3, xt, ldx, K, w, rs, ys, bias, yt, ldy); break;
    case 2: tile(dt, R, 2, xt, ldx, K, w, rs, ys, bias, yt, ldy); break;
    case 1: tile(dt, R, 1, xt, ldx, K, w, rs, ys, bias, yt, ldy); break;
    default: break;
    }
}

AI void gemv_dt(const int dt, const float *x, int64_t ldx, int n, int K, const char *w, int64_t ldwb, int rows,
                const float *bias, float *y, int64_t ldy) {
    int sub = rows / 4, r = 0;
    for (int i = 0; i < sub; i++)
        rows_all_tokens(dt, 4, x, ldx, n, K, w + i * ldwb, sub * ldwb, sub, bias ? bias + i : NULL, y + i, ldy);
    r = 4 * sub;
    for (; r < rows; r++)
        rows_all_tokens(dt, 1, x, ldx, n, K, w + r * ldwb, 0, 0, bias ? bias + r : NULL, y + r, ldy);
}

void cpu_avx512_gemv_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                          int rows, const float *bias, float *y, int64_t ldy) {
    switch (wt) {
    case BE_F16: gemv_dt(BE_F16, x, ldx, n, K, w, ldwb, rows, bias, y, ldy); break;
    case BE_BF16: gemv_dt(BE_BF16, x, ldx, n, K, w, ldwb, rows, bias, y, ldy); break;
    default: gemv_dt(BE_F32, x, ldx, n, K, w, ldwb, rows, bias, y, ldy); break;
    }
}

#endif
