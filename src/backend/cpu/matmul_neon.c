/* matmul_neon: the NEON kernels of the matmul and the vector helpers (aarch64, where NEON is baseline;
 * see kernels.h). Weight loads convert 4 elements to f32 in a register: f16 with FCVTL, bf16 by a
 * widening shift left of 16.
 *
 * gemv (every n: NEON has no packed GEMM yet): each weight row is read once for all tokens, in tiles
 * of R rows (4, or 1 for the leftover rows) x T tokens (3, then 2 or 1) of independent accumulators,
 * two per (row, token) for one token so that 8 FMA chains are in flight. The dtype, R and T are
 * compile-time constants after inlining: with them known the accumulators stay in registers (a tile
 * taking them at run time kept its accumulators on the stack, a load and a store around every FMA). */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/neon_inl.h"
#include "base/half.h"

/* ---- gemv: R rows x T tokens ---- */

/* The sum of each accumulator's lanes plus the K tail, (+ bias), into y, for r < R and t < T. */
NEON_AI void tile_store(const be_dtype dt, const int R, const int T, float32x4_t acc[4][3][2], int k,
                        const float *x, int64_t ldx, int K, const char *w, int64_t ldwb, const float *bias,
                        float *y, int64_t ldy) {
#pragma GCC unroll 3
    for (int t = 0; t < T; t++)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            float s = vaddvq_f32(acc[r][t][0]);
            for (int kk = k; kk < K; kk++) s += x[t * ldx + kk] * cpu_elem_f32(dt, w + r * ldwb, kk);
            y[t * ldy + r] = bias ? s + bias[r] : s;
        }
}

/* y[t*ldy + r] = sum_k x[t*ldx + k] * w_r[k] (+ bias[r]) for r < R (<= 4), t < T (<= 3);
 * w_r = w + r*ldwb bytes. */
NEON_AI void tile(const be_dtype dt, const int R, const int T, const float *x, int64_t ldx, int K, const char *w,
                  int64_t ldwb, const float *bias, float *y, int64_t ldy) {
    const int nu = T == 1 ? 2 : 1;
    float32x4_t acc[4][3][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int t = 0; t < T; t++)
#pragma GCC unroll 2
            for (int u = 0; u < nu; u++) acc[r][t][u] = vdupq_n_f32(0);
    int k = 0;
    for (; k + 4 * nu <= K; k += 4 * nu)
#pragma GCC unroll 2
        for (int u = 0; u < nu; u++) {
            float32x4_t xv[3];
#pragma GCC unroll 3
            for (int t = 0; t < T; t++) xv[t] = vld1q_f32(x + t * ldx + k + 4 * u);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                float32x4_t wv = neon_ld4(dt, w + r * ldwb, k + 4 * u);
#pragma GCC unroll 3
                for (int t = 0; t < T; t++) acc[r][t][u] = vfmaq_f32(acc[r][t][u], wv, xv[t]);
            }
        }
    if (nu == 2) { /* one token: a last step of 4, then the two accumulators into one */
        if (k + 4 <= K) {
            float32x4_t xv = vld1q_f32(x + k);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) acc[r][0][1] = vfmaq_f32(acc[r][0][1], neon_ld4(dt, w + r * ldwb, k), xv);
            k += 4;
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) acc[r][0][0] = vaddq_f32(acc[r][0][0], acc[r][0][1]);
    }
    tile_store(dt, R, T, acc, k, x, ldx, K, w, ldwb, bias, y, ldy);
}

/* All n tokens for R rows: token groups of 3, then 2 or 1. */
NEON_AI void rows_tokens(const be_dtype dt, const int R, const float *x, int64_t ldx, int n, int K, const char *w,
                         int64_t ldwb, const float *bias, float *y, int64_t ldy) {
    int t = 0;
    for (; t + 3 <= n; t += 3) tile(dt, R, 3, x + t * ldx, ldx, K, w, ldwb, bias, y + t * ldy, ldy);
    if (n - t == 2) tile(dt, R, 2, x + t * ldx, ldx, K, w, ldwb, bias, y + t * ldy, ldy);
    else if (n - t == 1) tile(dt, R, 1, x + t * ldx, ldx, K, w, ldwb, bias, y + t * ldy, ldy);
}

NEON_AI void gemv_dt(const be_dtype dt, const float *x, int64_t ldx, int n, int K, const char *w, int64_t ldwb,
                     int rows, const float *bias, float *y, int64_t ldy) {
    int r = 0;
    for (; r + 4 <= rows; r += 4)
        rows_tokens(dt, 4, x, ldx, n, K, w + r * ldwb, ldwb, bias ? bias + r : NULL, y + r, ldy);
    for (; r < rows; r++) rows_tokens(dt, 1, x, ldx, n, K, w + r * ldwb, ldwb, bias ? bias + r : NULL, y + r, ldy);
}

void cpu_neon_gemv_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                        int rows, const float *bias, float *y, int64_t ldy) {
    switch (wt) {
    case BE_F16: gemv_dt(BE_F16, x, ldx, n, K, w, ldwb, rows, bias, y, ldy); break;
    case BE_BF16: gemv_dt(BE_BF16, x, ldx, n, K, w, ldwb, rows, bias, y, ldy); break;
    default: gemv_dt(BE_F32, x, ldx, n, K, w, ldwb, rows, bias, y, ldy); break;
    }
}

/* ---- vector helpers ---- */

NEON_AI float dot_dt(const be_dtype dt, const float *a, const void *b, int n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), neon_ld4(dt, b, i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), neon_ld4(dt, b, i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) s += a[i] * cpu_elem_f32(dt, b, i);
    return s;
}

float cpu_neon_dot(const float *a, const void *b, be_dtype bt, int n) {
    if (bt == BE_F16) return dot_dt(BE_F16, a, b, n);
    if (bt == BE_BF16) return dot_dt(BE_BF16, a, b, n);
    return dot_dt(BE_F32, a, b, n);
}

NEON_AI void axpy_dt(const be_dtype dt, float *y, float alpha, const void *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), neon_ld4(dt, x, i), alpha));
    for (; i < n; i++) y[i] += alpha * cpu_elem_f32(dt, x, i);
}

void cpu_neon_axpy(float *y, float alpha, const void *x, be_dtype xt, int n) {
    if (xt == BE_F16) axpy_dt(BE_F16, y, alpha, x, n);
    else if (xt == BE_BF16) axpy_dt(BE_BF16, y, alpha, x, n);
    else axpy_dt(BE_F32, y, alpha, x, n);
}

/* ---- conversions ---- */

void cpu_neon_to_f32(float *dst, const void *src, be_dtype st, int n) {
    if (st == BE_F32) {
        memcpy(dst, src, sizeof(float) * (size_t)(n > 0 ? n : 0));
        return;
    }
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, neon_ld4(st, src, i));
    for (; i < n; i++) dst[i] = cpu_elem_f32(st, src, i);
}

/* 4 f32 -> 4 f16: FCVTN rounds to nearest even (the default FPCR); NaN -> sign | 0x7e00, as
 * vc_f32_to_f16 (FCVTN would keep the payload). */
NEON_AI uint16x4_t f16x4(float32x4_t v) {
    uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(v));
    uint16x4_t sign = vand_u16(vshrn_n_u32(vreinterpretq_u32_f32(v), 16), vdup_n_u16(0x8000));
    return vbsl_u16(neon_nan4(v), vorr_u16(sign, vdup_n_u16(0x7e00)), h);
}

void cpu_neon_from_f32(void *dst, be_dtype dt, const float *src, int n) {
    uint16_t *d = dst;
    int i = 0;
    if (dt == BE_F16) {
        for (; i + 4 <= n; i += 4) vst1_u16(d + i, f16x4(vld1q_f32(src + i)));
        for (; i < n; i++) d[i] = vc_f32_to_f16(src[i]);
    } else if (dt == BE_BF16) {
        for (; i + 4 <= n; i += 4) vst1_u16(d + i, neon_bf16x4(vld1q_f32(src + i)));
        for (; i < n; i++) d[i] = vc_f32_to_bf16(src[i]);
    } else {
        memcpy(dst, src, sizeof(float) * (size_t)(n > 0 ? n : 0));
    }
}
#else
typedef int cpu_matmul_neon_unused; /* not aarch64: nothing to build */
#endif
