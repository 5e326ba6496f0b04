/* matmul_avx2: AVX2/FMA/F16C kernels (see kernels.h). Compiled with
 * -mavx2 -mfma -mf16c; called only after a run-time CPU check.
 *
 * Weight loads convert 8 elements to f32 in a register: bf16 by zero-extending
 * to 32 bits and shifting left 16, f16 with vcvtph2ps from memory.
 *
 * gemv (n < CPU_GEMM_MIN_N; memory bound at decode): a thread's rows are cut
 * into 4 strips walked in step, so each weight row is read once, for all
 * tokens in groups of 3, as one of 4 sequential streams; 4 rows x 3 tokens of
 * independent accumulators (4 x 2 K-steps for one token), reduced with hadd.
 * gemm (n >= CPU_GEMM_MIN_N, compute bound): per chunk of MC rows and KC
 * columns, each 16-row panel is converted to f32 and transposed into an
 * L1-resident buffer wp[k][16]; a 6-token x 16-row micro-kernel (12 ymm
 * accumulators) then runs over every token of the NC block, accumulating into
 * y, which stays in L2 across the K blocks of the chunk. */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__)
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "matmul_avx2.c must be compiled with -mavx2 -mfma -mf16c"
#endif

#include "backend/cpu/avx2_inl.h"

#include <string.h>


/* ---- gemv: R rows x T tokens ---- */

/* For r < R, t < T (compile-time constants after inlining; R <= 8, T <= 3):
 *   y[t*ldy + r*ys] = sum_k x[t*ldx + k] * w_r[k] (+ bias[r*ys]),  w_r = w + r*rs bytes. */
AI void dot_tile(const int dt, const int R, const int T, const float *x, int64_t ldx, int K, const char *w,
                 int64_t rs, int64_t ys, const float *bias, float *y, int64_t ldy) {
    const int nu = T == 1 ? 2 : 1; /* unroll over K when there are few accumulators */
    __m256 acc[4][3][2];
    const char *wr[4];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) wr[r] = w + r * rs;
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int t = 0; t < T; t++)
#pragma GCC unroll 2
            for (int u = 0; u < nu; u++) acc[r][t][u] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 * nu <= K; k += 8 * nu) {
#pragma GCC unroll 2
        for (int u = 0; u < nu; u++) {
            __m256 xv[3];
#pragma GCC unroll 3
            for (int t = 0; t < T; t++) xv[t] = _mm256_loadu_ps(x + t * ldx + k + 8 * u);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                __m256 wv = ld8(dt, wr[r], k + 8 * u);
#pragma GCC unroll 3
                for (int t = 0; t < T; t++) acc[r][t][u] = _mm256_fmadd_ps(wv, xv[t], acc[r][t][u]);
            }
        }
    }
    if (nu == 2) {
        if (k + 8 <= K) {
            __m256 xv = _mm256_loadu_ps(x + k);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][0][1] = _mm256_fmadd_ps(ld8(dt, wr[r], k), xv, acc[r][0][1]);
            k += 8;
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) acc[r][0][0] = _mm256_add_ps(acc[r][0][0], acc[r][0][1]);
    }
#pragma GCC unroll 3
    for (int t = 0; t < T; t++) {
        float s[4];
        if (R == 4) {
            _mm_storeu_ps(s, hsum8x4(acc[0][t][0], acc[1][t][0], acc[2][t][0], acc[3][t][0]));
        } else {
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) s[r] = hsum8(acc[r][t][0]);
        }
        const float *xt = x + t * ldx;
        for (int kk = k; kk < K; kk++) {
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) s[r] += xt[kk] * ld1(dt, wr[r], kk);
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) y[t * ldy + r * ys] = bias ? s[r] + bias[r * ys] : s[r];
    }
}

/* All tokens for R rows w + r*rs (r < R): token groups of 3 (then 2 or 1). */
AI void dot_rows(const int dt, const int R, const float *x, int64_t ldx, int n, int K, const char *w, int64_t rs,
                 int64_t ys, const float *bias, float *y, int64_t ldy) {
    int t = 0;
    for (; t + 3 <= n; t += 3) dot_tile(dt, R, 3, x + t * ldx, ldx, K, w, rs, ys, bias, y + t * ldy, ldy);
    if (n - t == 2) dot_tile(dt, R, 2, x + t * ldx, ldx, K, w, rs, ys, bias, y + t * ldy, ldy);
    else if (n - t == 1) dot_tile(dt, R, 1, x + t * ldx, ldx, K, w, rs, ys, bias, y + t * ldy, ldy);
}

/* The rows are cut into 4 equal contiguous strips that are walked in step, one
 * row of each at a time: 4 long sequential streams keep more DRAM requests in
 * flight than one, and unlike 4 adjacent rows they stay sequential when rows
 * are short (K = 896 is 28 cache lines of bf16). Measured on Zen 4: 93-100% of
 * the STREAM triad figure, better than 1, 2 or 8 streams or adding software
 * prefetch. Leftover rows go one at a time. */
AI void gemv_rows_dt(const int dt, const float *x, int64_t ldx, int n, int K, const char *w, int64_t ldwb,
                     int rows, const float *bias, float *y, int64_t ldy) {
    int sub = rows / 4, r = 0;
    if (sub > 0) {
        for (int i = 0; i < sub; i++)
            dot_rows(dt, 4, x, ldx, n, K, w + i * ldwb, sub * ldwb, sub, bias ? bias + i : NULL, y + i, ldy);
        r = 4 * sub;
    }
    for (; r < rows; r++) dot_rows(dt, 1, x, ldx, n, K, w + r * ldwb, 0, 0, bias ? bias + r : NULL, y + r, ldy);
}

void cpu_avx2_gemv_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                        int rows, const float *bias, float *y, int64_t ldy) {
    switch (wt) {
    case BE_F16: gemv_rows_dt(BE_F16, x, ldx, n, K, w, ldwb, rows, bias, y, ldy); break;
    case BE_BF16: gemv_rows_dt(BE_BF16, x, ldx, n, K, w, ldwb, rows, bias, y, ldy); break;
    default: gemv_rows_dt(BE_F32, x, ldx, n, K, w, ldwb, rows, bias, y, ldy); break;
    }
}

/* ---- gemm ---- */

enum {
    MR = 16,  /* weight rows per panel (2 ymm) */
    NR = 6,   /* tokens per micro-tile */
    KC = 256, /* K block: a packed panel is MR*KC*4 = 16 KiB */
    MC = 64,  /* rows per chunk: y[NC x MC] stays in L2 across K blocks */
    NC = 384, /* token block: x[NC x KC] (384 KiB) stays in L2 */
};

/* y[t, 0..mrows) (=|+=) x[t, 0..kc) . wp for t < NT (a compile-time constant).
 * mode 0: y = acc (+ bias); mode 1: y += acc. */
AI void ukr(const int NT, int kc, const float *wp, const float *x, int64_t ldx, float *y, int64_t ldy, int mode,
            const float *bias, int mrows) {
    __m256 c[NR][2];
    const float *xp[NR];
#pragma GCC unroll 6
    for (int t = 0; t < NT; t++) {
        c[t][0] = _mm256_setzero_ps();
        c[t][1] = _mm256_setzero_ps();
        xp[t] = x + t * ldx;
    }
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        __m256 w0 = _mm256_load_ps(wp + k * MR), w1 = _mm256_load_ps(wp + k * MR + 8);
#pragma GCC unroll 6
        for (int t = 0; t < NT; t++) {
            __m256 xb = _mm256_broadcast_ss(xp[t] + k);
            c[t][0] = _mm256_fmadd_ps(w0, xb, c[t][0]);
            c[t][1] = _mm256_fmadd_ps(w1, xb, c[t][1]);
        }
    }
    if (mrows == MR) {
#pragma GCC unroll 6
        for (int t = 0; t < NT; t++) {
            float *yp = y + t * ldy;
            __m256 a0 = c[t][0], a1 = c[t][1];
            if (mode) {
                a0 = _mm256_add_ps(a0, _mm256_loadu_ps(yp));
                a1 = _mm256_add_ps(a1, _mm256_loadu_ps(yp + 8));
            } else if (bias) {
                a0 = _mm256_add_ps(a0, _mm256_loadu_ps(bias));
                a1 = _mm256_add_ps(a1, _mm256_loadu_ps(bias + 8));
            }
            _mm256_storeu_ps(yp, a0);
            _mm256_storeu_ps(yp + 8, a1);
        }
    } else {
        _Alignas(32) float tile[MR];
        for (int t = 0; t < NT; t++) {
            float *yp = y + t * ldy;
            _mm256_store_ps(tile, c[t][0]);
            _mm256_store_ps(tile + 8, c[t][1]);
            for (int r = 0; r < mrows; r++) yp[r] = mode ? yp[r] + tile[r] : bias ? tile[r] + bias[r] : tile[r];
        }
    }
}

static void ukr_any(int nt, int kc, const float *wp, const float *x, int64_t ldx, float *y, int64_t ldy, int mode,
                    const float *bias, int mrows) {
    switch (nt) {
    case 1: ukr(1, kc, wp, x, ldx, y, ldy, mode, bias, mrows); break;
    case 2: ukr(2, kc, wp, x, ldx, y, ldy, mode, bias, mrows); break;
    case 3: ukr(3, kc, wp, x, ldx, y, ldy, mode, bias, mrows); break;
    case 4: ukr(4, kc, wp, x, ldx, y, ldy, mode, bias, mrows); break;
    case 5: ukr(5, kc, wp, x, ldx, y, ldy, mode, bias, mrows); break;
    default: ukr(6, kc, wp, x, ldx, y, ldy, mode, bias, mrows); break;
    }
}

static void ukr6(int kc, const float *wp, const float *x, int64_t ldx, float *y, int64_t ldy, int mode,
                 const float *bias) {
    ukr(6, kc, wp, x, ldx, y, ldy, mode, bias, MR);
}

AI void gemm_rows_dt(const int dt, const float *x, int64_t ldx, int n, int K, const char *w, int64_t ldwb, int rows,
                     const float *bias, float *y, int64_t ldy) {
    _Alignas(64) float wp[MR * KC];
    for (int n0 = 0; n0 < n; n0 += NC) {
        int nb = n - n0 < NC ? n - n0 : NC;
        const float *xb = x + (int64_t)n0 * ldx;
        float *yb = y + (int64_t)n0 * ldy;
        for (int m0 = 0; m0 < rows; m0 += MC) {
            int mc = rows - m0 < MC ? rows - m0 : MC;
            for (int k0 = 0; k0 < K; k0 += KC) {
                int kc = K - k0 < KC ? K - k0 : KC;
                int mode = k0 > 0;
                for (int p0 = m0; p0 < m0 + mc; p0 += MR) {
                    int mr = m0 + mc - p0 < MR ? m0 + mc - p0 : MR;
                    pack_panel(dt, w + p0 * ldwb, ldwb, mr, k0, kc, wp, MR);
                    const float *bp = bias ? bias + p0 : NULL;
                    int t = 0;
                    if (mr == MR)
                        for (; t + NR <= nb; t += NR)
                            ukr6(kc, wp, xb + t * ldx + k0, ldx, yb + t * ldy + p0, ldy, mode, bp);
                    for (; t < nb; t += NR) {
                        int nt = nb - t < NR ? nb - t : NR;
                        ukr_any(nt, kc, wp, xb + t * ldx + k0, ldx, yb + t * ldy + p0, ldy, mode, bp, mr);
                    }
                }
            }
        }
    }
}

void cpu_avx2_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                        int rows, const float *bias, float *y, int64_t ldy) {
    switch (wt) {
    case BE_F16: gemm_rows_dt(BE_F16, x, ldx, n, K, w, ldwb, rows, bias, y, ldy); break;
    case BE_BF16: gemm_rows_dt(BE_BF16, x, ldx, n, K, w, ldwb, rows, bias, y, ldy); break;
    default: gemm_rows_dt(BE_F32, x, ldx, n, K, w, ldwb, rows, bias, y, ldy); break;
    }
}

/* ---- vector helpers ---- */

AI float dot_dt(const int dt, const float *a, const void *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), ld8(dt, b, i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), ld8(dt, b, i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), ld8(dt, b, i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), ld8(dt, b, i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), ld8(dt, b, i), s0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * ld1(dt, b, i);
    return s;
}

float cpu_avx2_dot(const float *a, const void *b, be_dtype bt, int n) {
    switch (bt) {
    case BE_F16: return dot_dt(BE_F16, a, b, n);
    case BE_BF16: return dot_dt(BE_BF16, a, b, n);
    default: return dot_dt(BE_F32, a, b, n);
    }
}

AI void axpy_dt(const int dt, float *y, float alpha, const void *x, int n) {
    __m256 va = _mm256_set1_ps(alpha);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, ld8(dt, x, i), _mm256_loadu_ps(y + i)));
        _mm256_storeu_ps(y + i + 8, _mm256_fmadd_ps(va, ld8(dt, x, i + 8), _mm256_loadu_ps(y + i + 8)));
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, ld8(dt, x, i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = __builtin_fmaf(alpha, ld1(dt, x, i), y[i]);
}

void cpu_avx2_axpy(float *y, float alpha, const void *x, be_dtype xt, int n) {
    switch (xt) {
    case BE_F16: axpy_dt(BE_F16, y, alpha, x, n); break;
    case BE_BF16: axpy_dt(BE_BF16, y, alpha, x, n); break;
    default: axpy_dt(BE_F32, y, alpha, x, n); break;
    }
}

void cpu_avx2_to_f32(float *dst, const void *src, be_dtype st, int n) {
    int i = 0;
    if (st == BE_F32) {
        memcpy(dst, src, sizeof(float) * (size_t)(n > 0 ? n : 0));
        return;
    }
    const uint16_t *s = src;
    if (st == BE_F16) {
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, ld8_f16(s + i));
        for (; i < n; i++) dst[i] = vc_f16_to_f32(s[i]);
    } else {
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, ld8_bf16(s + i));
        for (; i < n; i++) dst[i] = vc_bf16_to_f32(s[i]);
    }
}

/* 8 f32 -> 8 bf16, round to nearest even; NaN -> (bits >> 16) | 0x40. */
AI __m128i cvt8_bf16(__m256 v) {
    __m256i u = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                       _mm256_set1_epi32(0x7f800000));
    r = _mm256_blendv_epi8(r, q, isnan);
    __m256i p = _mm256_packus_epi32(r, r); /* per lane: [r0..r3 r0..r3 | r4..r7 r4..r7] */
    p = _mm256_permute4x64_epi64(p, 0x08);
    return _mm256_castsi256_si128(p);
}

/* 8 f32 -> 8 f16, round to nearest even; NaN -> sign | 0x7e00. */
AI __m128i cvt8_f16(__m256 v) {
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256i m = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    __m128i m16 = _mm_packs_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
    __m128i q = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16((short)0x8000)), _mm_set1_epi16(0x7e00));
    return _mm_blendv_epi8(h, q, m16);
}

void cpu_avx2_from_f32(void *dst, be_dtype dt, const float *src, int n) {
    int i = 0;
    if (dt == BE_F32) {
        memcpy(dst, src, sizeof(float) * (size_t)(n > 0 ? n : 0));
        return;
    }
    uint16_t *d = dst;
    if (dt == BE_F16) {
        for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(d + i), cvt8_f16(_mm256_loadu_ps(src + i)));
        for (; i < n; i++) d[i] = vc_f32_to_f16(src[i]);
    } else {
        for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(d + i), cvt8_bf16(_mm256_loadu_ps(src + i)));
        for (; i < n; i++) d[i] = vc_f32_to_bf16(src[i]);
    }
}

#else
typedef int cpu_matmul_avx2_unused; /* not x86-64: nothing to build */
#endif
