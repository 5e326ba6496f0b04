/* matmul_neon_bf16: the prefill / batched matmul for bf16 weights with BFMMLA (ARMv8.6 BF16, Apple M2
 * and later, Neoverse V1/N2 and later). Compiled with -march=armv8.6-a+bf16 and called only after the
 * run-time check (cpu_have_neon_bf16: Linux HWCAP2_BF16, macOS hw.optional.arm.FEAT_BF16); the rest of
 * the build stays armv8.2-a+fp16.
 *
 * BFMMLA multiplies a 2x4 bf16 matrix by a 4x2 one into a 2x2 f32 tile: 16 multiply-adds per
 * instruction, 4x an f32 FMLA. The activations are rounded to bf16 (to nearest even, bit for bit as
 * base/half.h) once per tile of the x block, as a bf16 model computes them in Hugging Face and vLLM;
 * every sum is f32 (BFMMLA's own: products exact, sums in f32).
 *
 * Layout: both operands in 2-row x 4-column blocks of 8 bf16, the BFMMLA operand. Per block of NC
 * tokens, MC rows and KC columns, the x block is packed as xp[token pair][k/4][8] (tokens 2j and 2j+1,
 * zero past the last token and past kc) and each 8-row panel as wp[k/4][row pair][8] (zero past the
 * panel's rows and past kc). The micro-kernel, 8 tokens x 8 rows (16 accumulators of 2x2), runs over
 * the block's tokens; an accumulator holds (t, r), (t, r+1), (t+1, r), (t+1, r+1), so its halves are
 * two adjacent outputs of one token's row of y. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#if !defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
#error "matmul_neon_bf16.c must be compiled with -march=armv8.6-a+bf16 (or another target with BF16)"
#endif
#include <arm_neon.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/neon_inl.h"

enum {
    MR = 8,   /* weight rows per panel: 4 row pairs */
    NR = 8,   /* tokens per micro-tile: 4 token pairs */
    KC = 256, /* K block (elements): a packed panel is 4 KiB */
    KQ = KC / 4,
    MC = 64,  /* rows per chunk: y[NC x MC] stays in L2 across the K blocks */
    NC = 128, /* token block: xp is NC x KC bf16 = 64 KiB */
};

/* y[t, 0..mrows) (=|+=) for the tokens of TP pairs (a compile-time constant) of which nt are real.
 * mode 0: y = acc (+ bias); mode 1: y += acc. xp: the tile's first token pair; wp: the panel. */
NEON_AI void ukr(const int TP, int kq, const bfloat16_t *wp, const bfloat16_t *xp, float *y, int64_t ldy, int mode,
                 const float *bias, int mrows, int nt) {
    float32x4_t c[4][4];
#pragma GCC unroll 4
    for (int j = 0; j < TP; j++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) c[j][i] = vdupq_n_f32(0);
    for (int q = 0; q < kq; q++) {
        bfloat16x8_t w[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) w[i] = vld1q_bf16(wp + (q * 4 + i) * 8);
#pragma GCC unroll 4
        for (int j = 0; j < TP; j++) {
            bfloat16x8_t a = vld1q_bf16(xp + ((int64_t)j * KQ + q) * 8);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) c[j][i] = vbfmmlaq_f32(c[j][i], a, w[i]);
        }
    }
    /* rows[2j + h] = token 2j + h's 8 sums: the low (h = 0) or high halves of c[j][0..3] */
    float32x4_t rows[8][2];
#pragma GCC unroll 4
    for (int j = 0; j < TP; j++) {
        rows[2 * j][0] = vcombine_f32(vget_low_f32(c[j][0]), vget_low_f32(c[j][1]));
        rows[2 * j][1] = vcombine_f32(vget_low_f32(c[j][2]), vget_low_f32(c[j][3]));
        rows[2 * j + 1][0] = vcombine_f32(vget_high_f32(c[j][0]), vget_high_f32(c[j][1]));
        rows[2 * j + 1][1] = vcombine_f32(vget_high_f32(c[j][2]), vget_high_f32(c[j][3]));
    }
    if (mrows == MR) {
#pragma GCC unroll 8
        for (int t = 0; t < 2 * TP; t++) {
            if (t >= nt) break;
            float *yp = y + t * ldy;
            float32x4_t a0 = rows[t][0], a1 = rows[t][1];
            if (mode) {
                a0 = vaddq_f32(a0, vld1q_f32(yp));
                a1 = vaddq_f32(a1, vld1q_f32(yp + 4));
            } else if (bias) {
                a0 = vaddq_f32(a0, vld1q_f32(bias));
                a1 = vaddq_f32(a1, vld1q_f32(bias + 4));
            }
            vst1q_f32(yp, a0);
            vst1q_f32(yp + 4, a1);
        }
    } else {
        float tile[MR];
        for (int t = 0; t < 2 * TP && t < nt; t++) {
            float *yp = y + t * ldy;
            vst1q_f32(tile, rows[t][0]);
            vst1q_f32(tile + 4, rows[t][1]);
            for (int r = 0; r < mrows; r++) yp[r] = mode ? yp[r] + tile[r] : bias ? tile[r] + bias[r] : tile[r];
        }
    }
}

static void ukr_any(int nt, int kq, const bfloat16_t *wp, const bfloat16_t *xp, float *y, int64_t ldy, int mode,
                    const float *bias, int mrows) {
    switch ((nt + 1) / 2) {
    case 1: ukr(1, kq, wp, xp, y, ldy, mode, bias, mrows, nt); break;
    case 2: ukr(2, kq, wp, xp, y, ldy, mode, bias, mrows, nt); break;
    case 3: ukr(3, kq, wp, xp, y, ldy, mode, bias, mrows, nt); break;
    default: ukr(4, kq, wp, xp, y, ldy, mode, bias, mrows, nt); break;
    }
}

static void ukr8(int kq, const bfloat16_t *wp, const bfloat16_t *xp, float *y, int64_t ldy, int mode,
                 const float *bias) {
    ukr(4, kq, wp, xp, y, ldy, mode, bias, MR, NR);
}

/* 4 f32 of a row from element k, zero at and past `end` (the block's kc) */
NEON_AI float32x4_t ld4_upto(const float *row, int k, int end) {
    if (k + 4 <= end) return vld1q_f32(row + k);
    float v[4] = {0, 0, 0, 0};
    for (int i = 0; k + i < end; i++) v[i] = row[k + i];
    return vld1q_f32(v);
}

/* xp = the x block [nt tokens, k0 .. k0+kc) as bf16 token-pair blocks (see the top), zero-padded to an
 * even token count and to kq = ceil(kc/4) column quads. */
static void pack_x(const float *x, int64_t ldx, int nt, int k0, int kc, uint16_t *xp) {
    int kq = (kc + 3) / 4;
    for (int j = 0; 2 * j < nt; j++) {
        const float *r0 = x + (int64_t)(2 * j) * ldx + k0, *r1 = r0 + ldx;
        int two = 2 * j + 1 < nt;
        uint16_t *d = xp + (int64_t)j * KQ * 8;
        for (int q = 0; q < kq; q++) {
            vst1_u16(d + q * 8, neon_bf16x4(ld4_upto(r0, 4 * q, kc)));
            vst1_u16(d + q * 8 + 4, two ? neon_bf16x4(ld4_upto(r1, 4 * q, kc)) : vdup_n_u16(0));
        }
    }
}

/* 4 bf16 of a weight row from element k, zero at and past `end` */
NEON_AI uint16x4_t ldw4_upto(const uint16_t *row, int k, int end) {
    if (k + 4 <= end) return vld1_u16(row + k);
    uint16_t v[4] = {0, 0, 0, 0};
    for (int i = 0; k + i < end; i++) v[i] = row[k + i];
    return vld1_u16(v);
}

/* wp = rows [0, rows) (<= MR) of the panel, columns k0 .. k0+kc, as row-pair blocks (see the top). */
static void pack_w(const char *w, int64_t ldwb, int rows, int k0, int kc, uint16_t *wp) {
    int kq = (kc + 3) / 4;
    for (int r = 0; r < MR; r++) {
        uint16_t *d = wp + (r / 2) * 8 + (r % 2) * 4;
        if (r >= rows) {
            for (int q = 0; q < kq; q++) vst1_u16(d + q * 32, vdup_n_u16(0));
            continue;
        }
        const uint16_t *row = (const uint16_t *)(w + (int64_t)r * ldwb) + k0;
        for (int q = 0; q < kq; q++) vst1_u16(d + q * 32, ldw4_upto(row, 4 * q, kc));
    }
}

void cpu_neon_bf16_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                             int rows, const float *bias, float *y, int64_t ldy) {
    (void)wt; /* bf16 only (matmul.c checks) */
    _Alignas(16) uint16_t wp[KQ * MR * 4];
    _Alignas(16) uint16_t xp[NC * KC];
    const char *wb = w;
    for (int n0 = 0; n0 < n; n0 += NC) {
        int nb = n - n0 < NC ? n - n0 : NC;
        const float *xn = x + (int64_t)n0 * ldx;
        float *yb = y + (int64_t)n0 * ldy;
        for (int m0 = 0; m0 < rows; m0 += MC) {
            int mc = rows - m0 < MC ? rows - m0 : MC;
            for (int k0 = 0; k0 < K; k0 += KC) {
                int kc = K - k0 < KC ? K - k0 : KC, kq = (kc + 3) / 4;
                int mode = k0 > 0;
                pack_x(xn, ldx, nb, k0, kc, xp);
                for (int p0 = m0; p0 < m0 + mc; p0 += MR) {
                    int mr = m0 + mc - p0 < MR ? m0 + mc - p0 : MR;
                    pack_w(wb + (int64_t)p0 * ldwb, ldwb, mr, k0, kc, wp);
                    const float *bp = bias ? bias + p0 : NULL;
                    const bfloat16_t *wpb = (const bfloat16_t *)(const void *)wp;
                    int t = 0;
                    if (mr == MR)
                        for (; t + NR <= nb; t += NR)
                            ukr8(kq, wpb, (const bfloat16_t *)(const void *)(xp + (int64_t)t / 2 * KQ * 8),
                                 yb + t * ldy + p0, ldy, mode, bp);
                    for (; t < nb; t += NR) {
                        int nt = nb - t < NR ? nb - t : NR;
                        ukr_any(nt, kq, wpb, (const bfloat16_t *)(const void *)(xp + (int64_t)t / 2 * KQ * 8),
                                yb + t * ldy + p0, ldy, mode, bp, mr);
                    }
                }
            }
        }
    }
}
#else
typedef int cpu_matmul_neon_bf16_unused; /* not aarch64: nothing to build */
#endif
