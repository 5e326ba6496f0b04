/* matmul_neon_fhm: the prefill / batched matmul for f16 weights with FMLAL/FMLAL2 (FEAT_FHM: f16
 * products accumulated in f32; every Apple M-series, Cortex-A78/X1, Neoverse V1/N2 and later).
 * Compiled with -march=armv8.2-a+fp16+fp16fml and called only after the run-time check
 * (cpu_have_neon_fhm: Linux HWCAP_ASIMDFHM, macOS hw.optional.arm.FEAT_FHM).
 *
 * The activations are rounded to f16 (FCVTN: to nearest even) once per block, as an f16 model computes
 * them; the products of two f16 are exact in f32 and every sum is f32 (never an f16 accumulator). An x
 * with a finite value past the f16 range (|v| > 65504) would round to inf, so such a call runs the
 * f32 kernel (cpu_neon_gemv_rows) instead. FMLAL does 4 multiply-adds per instruction, as an f32 FMLA
 * does: what it saves is the f16 -> f32 conversion of every weight (FCVTL) and half the bytes of the
 * activations in L1.
 *
 * Layout: none to pack. Per block of KC columns and NB tokens (NB x KC f16 = 64 KiB), x is converted
 * to xh[t][0..kc); then tiles of 4 rows (read straight from w) x 4 tokens, 16 accumulators of 4 lanes,
 * each (row, token) summing 8 columns per step (FMLAL on the low 4, FMLAL2 on the high 4) into one
 * accumulator, reduced across lanes at the end of the block; the kc % 8 tail in scalar f32 on the same
 * f16 values. The first K block stores y (+ bias), the next ones add to it. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#if !defined(__ARM_FEATURE_FP16_FML)
#error "matmul_neon_fhm.c must be compiled with -march=armv8.2-a+fp16+fp16fml (or another target with FHM)"
#endif
#include <arm_neon.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/neon_inl.h"

enum {
    KC = 2048,           /* K block (elements) */
    XH = 32 * 1024,      /* f16 elements of the converted x block: 64 KiB */
    RT = 4,              /* rows per tile */
    TT = 4,              /* tokens per tile */
};

/* y[t*ldy + r] (=|+=) sum_k xh[t*ldxh + k] * w_r[k] for r < R, t < T (compile-time constants);
 * w_r = w + r*ldwb bytes, already at the block's first column; mode 0: y = s (+ bias[r]), 1: y += s. */
NEON_AI void tile(const int R, const int T, const float16_t *xh, int64_t ldxh, int kc, const char *w,
                  int64_t ldwb, float *y, int64_t ldy, int mode, const float *bias) {
    float32x4_t acc[RT][TT];
    const float16_t *wr[RT];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) wr[r] = (const float16_t *)(const void *)(w + r * ldwb);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[r][t] = vdupq_n_f32(0);
    int k = 0;
    for (; k + 8 <= kc; k += 8) {
        float16x8_t xv[TT];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) xv[t] = vld1q_f16(xh + t * ldxh + k);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            float16x8_t wv = vld1q_f16(wr[r] + k);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                acc[r][t] = vfmlalq_low_f16(acc[r][t], wv, xv[t]);
                acc[r][t] = vfmlalq_high_f16(acc[r][t], wv, xv[t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            float s = vaddvq_f32(acc[r][t]);
            for (int kk = k; kk < kc; kk++) s += (float)xh[t * ldxh + kk] * (float)wr[r][kk];
            float *yp = y + t * ldy + r;
            *yp = mode ? *yp + s : bias ? s + bias[r] : s;
        }
}

/* All nt tokens of the block for R rows: groups of TT, then the rest. */
NEON_AI void rows_tokens(const int R, const float16_t *xh, int64_t ldxh, int nt, int kc, const char *w, int64_t ldwb,
                         float *y, int64_t ldy, int mode, const float *bias) {
    int t = 0;
    for (; t + TT <= nt; t += TT) tile(R, TT, xh + t * ldxh, ldxh, kc, w, ldwb, y + t * ldy, ldy, mode, bias);
    const float16_t *xt = xh + t * ldxh;
    float *yt = y + t * ldy;
    switch (nt - t) {
    case 3: tile(R, 3, xt, ldxh, kc, w, ldwb, yt, ldy, mode, bias); break;
    case 2: tile(R, 2, xt, ldxh, kc, w, ldwb, yt, ldy, mode, bias); break;
    case 1: tile(R, 1, xt, ldxh, kc, w, ldwb, yt, ldy, mode, bias); break;
    default: break;
    }
}

/* 1 when a finite value of x[0..n) x [0..K) lies past the f16 range (it would round to inf). */
static int past_f16(const float *x, int64_t ldx, int n, int K) {
    const float32x4_t lim = vdupq_n_f32(65504.0f);
    for (int t = 0; t < n; t++) {
        const float *xr = x + (int64_t)t * ldx;
        uint32x4_t over = vdupq_n_u32(0);
        int k = 0;
        for (; k + 4 <= K; k += 4) over = vorrq_u32(over, vcgtq_f32(vabsq_f32(vld1q_f32(xr + k)), lim));
        if (vmaxvq_u32(over)) return 1; /* inf compares greater too: it stays inf either way, fine */
        for (; k < K; k++)
            if (xr[k] > 65504.0f || xr[k] < -65504.0f) return 1;
    }
    return 0;
}

void cpu_neon_fhm_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                            int rows, const float *bias, float *y, int64_t ldy) {
    if (past_f16(x, ldx, n, K)) {
        cpu_neon_gemv_rows(x, ldx, n, K, w, wt, ldwb, rows, bias, y, ldy);
        return;
    }
    float16_t xh[XH];
    const char *wb = w;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        int nbmax = XH / kc, mode = k0 > 0;
        for (int n0 = 0; n0 < n; n0 += nbmax) {
            int nb = n - n0 < nbmax ? n - n0 : nbmax;
            for (int t = 0; t < nb; t++) {
                const float *xr = x + (int64_t)(n0 + t) * ldx + k0;
                float16_t *d = xh + (int64_t)t * kc;
                int k = 0;
                for (; k + 4 <= kc; k += 4) vst1_f16(d + k, vcvt_f16_f32(vld1q_f32(xr + k)));
                for (; k < kc; k++) d[k] = (float16_t)xr[k];
            }
            float *yb = y + (int64_t)n0 * ldy;
            const char *wk = wb + (int64_t)k0 * 2;
            int r = 0;
            for (; r + RT <= rows; r += RT)
                rows_tokens(RT, xh, kc, nb, kc, wk + r * ldwb, ldwb, yb + r, ldy, mode, bias ? bias + r : NULL);
            for (; r < rows; r++)
                rows_tokens(1, xh, kc, nb, kc, wk + r * ldwb, ldwb, yb + r, ldy, mode, bias ? bias + r : NULL);
        }
    }
}
#else
typedef int cpu_matmul_neon_fhm_unused; /* not aarch64: nothing to build */
#endif
