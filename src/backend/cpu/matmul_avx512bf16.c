/* matmul_avx512bf16: the prefill GEMM for bf16 weights with AVX-512 BF16 (VDPBF16PS), compiled with
 * -mavx512f -mavx512bw -mavx512bf16 and called only after the run-time check (cpu_have_avx512bf16:
 * CPUID.(7,1):EAX[5] and the OS saving zmm state); CPUs without it run matmul_avx2.c's f32 GEMM.
 *
 * VDPBF16PS multiplies bf16 pairs and adds both products to an f32 lane: twice the multiply-adds of
 * an f32 FMA per instruction. The activations are rounded to bf16 (VCVTNE2PS2BF16: to nearest even;
 * the instruction treats f32 subnormals as 0) once per tile of the x block, as a bf16 model computes
 * them in Hugging Face and vLLM; every sum is f32.
 *
 * The loops are the AVX2 GEMM's (matmul_avx2.c) with bf16 pairs in place of f32: per block of NC
 * tokens, MC rows and KC columns, the x block is converted to bf16 pairs xb[t][k/2], each 32-row
 * panel is packed into wp[k/2][32] (element = the row's bf16 pair (k, k+1), low half k: the operand
 * VDPBF16PS wants, "VNNI" order), and a 12-token x 32-row micro-kernel (24 zmm accumulators) runs
 * over the block's tokens, a token's pair broadcast to all lanes. A tail pair (kc odd) and the rows
 * past a partial panel are zero in wp. The packing transposes 16 x 16 blocks of pairs with VPERMT2D
 * (it was a scalar store per pair: 35% of the time at 128 tokens, measured on Zen 4).
 *
 * VLLMC_AVX512BF16_EMULATE (tests only: test_matmul.c includes this file with it) runs the same code
 * on portable C versions of the intrinsics, so the loops are checked on CPUs without AVX-512 BF16. */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__) || defined(VLLMC_AVX512BF16_EMULATE)
#if defined(VLLMC_AVX512BF16_EMULATE)
#include "avx512bf16_emu.h"
#else
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512BF16__)
#error "matmul_avx512bf16.c must be compiled with -mavx512f -mavx512bw -mavx512bf16"
#endif
#include <immintrin.h>
#endif

#include <string.h>

#define BF_AI static inline __attribute__((always_inline))

enum {
    MR = 32,  /* weight rows per panel (2 zmm of f32 sums) */
    NR = 12,  /* tokens per micro-tile: 24 accumulators */
    KC = 256, /* K block (elements, even): a packed panel is KC/2 * MR * 4 = 16 KiB */
    KP = KC / 2,
    MC = 128, /* rows per chunk: y[NC x MC] stays in L2 across the K blocks */
    NC = 192, /* token block: xb[NC x KP] is 96 KiB */
};

/* y[t, 0..mrows) (=|+=) sum over the kp pairs of xb[t] . wp, for t < NT (a compile-time constant).
 * mode 0: y = acc (+ bias); mode 1: y += acc. */
BF_AI void ukr(const int NT, int kp, const uint32_t *wp, const uint32_t *xb, float *y, int64_t ldy, int mode,
               const float *bias, int mrows) {
    __m512 c[NR][2];
#pragma GCC unroll 12
    for (int t = 0; t < NT; t++) c[t][0] = c[t][1] = _mm512_setzero_ps();
    for (int k = 0; k < kp; k++) {
        __m512bh w0 = (__m512bh)_mm512_load_si512((const void *)(wp + k * MR));
        __m512bh w1 = (__m512bh)_mm512_load_si512((const void *)(wp + k * MR + 16));
#pragma GCC unroll 12
        for (int t = 0; t < NT; t++) {
            __m512bh xv = (__m512bh)_mm512_set1_epi32((int)xb[t * KP + k]);
            c[t][0] = _mm512_dpbf16_ps(c[t][0], w0, xv);
            c[t][1] = _mm512_dpbf16_ps(c[t][1], w1, xv);
        }
    }
    if (mrows == MR) {
#pragma GCC unroll 12
        for (int t = 0; t < NT; t++) {
            float *yp = y + t * ldy;
            __m512 a0 = c[t][0], a1 = c[t][1];
            if (mode) {
                a0 = _mm512_add_ps(a0, _mm512_loadu_ps(yp));
                a1 = _mm512_add_ps(a1, _mm512_loadu_ps(yp + 16));
            } else if (bias) {
                a0 = _mm512_add_ps(a0, _mm512_loadu_ps(bias));
                a1 = _mm512_add_ps(a1, _mm512_loadu_ps(bias + 16));
            }
            _mm512_storeu_ps(yp, a0);
            _mm512_storeu_ps(yp + 16, a1);
        }
    } else {
        _Alignas(64) float tile[MR];
        for (int t = 0; t < NT; t++) {
            float *yp = y + t * ldy;
            _mm512_store_ps(tile, c[t][0]);
            _mm512_store_ps(tile + 16, c[t][1]);
            for (int r = 0; r < mrows; r++) yp[r] = mode ? yp[r] + tile[r] : bias ? tile[r] + bias[r] : tile[r];
        }
    }
}

static void ukr_any(int nt, int kp, const uint32_t *wp, const uint32_t *xb, float *y, int64_t ldy, int mode,
                    const float *bias, int mrows) {
    switch (nt) {
    case 1: ukr(1, kp, wp, xb, y, ldy, mode, bias, mrows); break;
    case 2: ukr(2, kp, wp, xb, y, ldy, mode, bias, mrows); break;
    case 3: ukr(3, kp, wp, xb, y, ldy, mode, bias, mrows); break;
    case 4: ukr(4, kp, wp, xb, y, ldy, mode, bias, mrows); break;
    case 5: ukr(5, kp, wp, xb, y, ldy, mode, bias, mrows); break;
    case 6: ukr(6, kp, wp, xb, y, ldy, mode, bias, mrows); break;
    case 7: ukr(7, kp, wp, xb, y, ldy, mode, bias, mrows); break;
    case 8: ukr(8, kp, wp, xb, y, ldy, mode, bias, mrows); break;
    case 9: ukr(9, kp, wp, xb, y, ldy, mode, bias, mrows); break;
    case 10: ukr(10, kp, wp, xb, y, ldy, mode, bias, mrows); break;
    case 11: ukr(11, kp, wp, xb, y, ldy, mode, bias, mrows); break;
    default: ukr(12, kp, wp, xb, y, ldy, mode, bias, mrows); break;
    }
}

static void ukr12(int kp, const uint32_t *wp, const uint32_t *xb, float *y, int64_t ldy, int mode, const float *bias) {
    ukr(12, kp, wp, xb, y, ldy, mode, bias, MR);
}

/* xb[t][0 .. KP) = bf16 pairs of x[t][k0 .. k0+kc) for t < nt, zero past kc (kc <= KC). */
static void convert_block(const float *x, int64_t ldx, int nt, int k0, int kc, uint32_t *xb) {
    for (int t = 0; t < nt; t++) {
        const float *xr = x + (int64_t)t * ldx + k0;
        uint32_t *d = xb + (int64_t)t * KP;
        for (int k = 0; k < kc; k += 32) { /* 32 values -> 16 pairs; the masks zero what lies past kc */
            int left = kc - k;
            __mmask16 m0 = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            __mmask16 m1 = left >= 32 ? (__mmask16)0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
            __m512 lo = _mm512_maskz_loadu_ps(m0, xr + k), hi = _mm512_maskz_loadu_ps(m1, xr + k + 16);
            _mm512_storeu_si512((void *)(d + k / 2), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
}

/* v[0..16) := its transpose as a 16 x 16 matrix of 32-bit elements (v[i] lane l <- v[l] lane i). Four
 * butterfly stages, d = 8, 4, 2, 1: each swaps bit d of the vector index with bit d of the lane index,
 * two 2-source permutes (VPERMT2D) per pair of vectors: 64 per transpose. */
BF_AI void transpose16(__m512i v[16]) {
    /* stage d: lo[l] = l with bit d clear ? l (a's) : 16 + l - d (b's); hi[l] = l + d (a's) : 16 + l (b's) */
    static const int32_t idx[4][2][16] = {
        {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}, {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}},
        {{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27}, {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}},
        {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}, {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
        {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}, {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
    };
#pragma GCC unroll 4
    for (int s = 0; s < 4; s++) {
        int d = 8 >> s;
        __m512i ilo = _mm512_loadu_si512((const void *)idx[s][0]), ihi = _mm512_loadu_si512((const void *)idx[s][1]);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            if (i & d) continue;
            __m512i a = v[i], b = v[i + d];
            v[i] = _mm512_permutex2var_epi32(a, ilo, b);
            v[i + d] = _mm512_permutex2var_epi32(a, ihi, b);
        }
    }
}

/* wp[j][r] = rows r's bf16 pair (k0 + 2j, k0 + 2j + 1) for j < kp = ceil(kc/2), r < MR; zero past kc
 * and for r >= rows. Per 16 rows and 16 pairs: one masked load per row (a row's 32 bf16 = its 16
 * pairs), a 16 x 16 transpose of the pairs, one store per pair index. Writes whole 16-pair blocks (KP
 * is a multiple of 16; the pairs past kp are zero). */
static void pack_panel(const char *w, int64_t ldwb, int rows, int k0, int kc, uint32_t *wp) {
    int kp = (kc + 1) / 2;
    for (int h = 0; h < MR; h += 16) {
        for (int j0 = 0; j0 < kp; j0 += 16) {
            int left = kc - 2 * j0; /* bf16 elements of the block inside kc */
            __mmask32 m = left >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << left) - 1);
            __m512i v[16];
            for (int r = 0; r < 16; r++) {
                if (h + r >= rows) {
                    v[r] = _mm512_setzero_si512();
                    continue;
                }
                const uint16_t *row = (const uint16_t *)(w + (int64_t)(h + r) * ldwb) + k0 + 2 * j0;
                v[r] = _mm512_maskz_loadu_epi16(m, row);
                _mm_prefetch((const char *)((uintptr_t)row + 128), _MM_HINT_T0); /* +15-20% at 128 tokens (Zen 4) */
            }
            transpose16(v);
            for (int j = 0; j < 16; j++) _mm512_store_si512((void *)(wp + (int64_t)(j0 + j) * MR + h), v[j]);
        }
    }
}

void cpu_avx512bf16_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt,
                              int64_t ldwb, int rows, const float *bias, float *y, int64_t ldy) {
    (void)wt; /* bf16 only (matmul.c checks) */
    _Alignas(64) uint32_t wp[KP * MR];
    _Alignas(64) uint32_t xb[NC * KP];
    const char *wb = w;
    for (int n0 = 0; n0 < n; n0 += NC) {
        int nb = n - n0 < NC ? n - n0 : NC;
        const float *xn = x + (int64_t)n0 * ldx;
        float *yb = y + (int64_t)n0 * ldy;
        for (int m0 = 0; m0 < rows; m0 += MC) {
            int mc = rows - m0 < MC ? rows - m0 : MC;
            for (int k0 = 0; k0 < K; k0 += KC) {
                int kc = K - k0 < KC ? K - k0 : KC, kp = (kc + 1) / 2;
                int mode = k0 > 0;
                convert_block(xn, ldx, nb, k0, kc, xb);
                for (int p0 = m0; p0 < m0 + mc; p0 += MR) {
                    int mr = m0 + mc - p0 < MR ? m0 + mc - p0 : MR;
                    pack_panel(wb + (int64_t)p0 * ldwb, ldwb, mr, k0, kc, wp);
                    const float *bp = bias ? bias + p0 : NULL;
                    int t = 0;
                    if (mr == MR)
                        for (; t + NR <= nb; t += NR) ukr12(kp, wp, xb + t * KP, yb + t * ldy + p0, ldy, mode, bp);
                    for (; t < nb; t += NR) {
                        int nt = nb - t < NR ? nb - t : NR;
                        ukr_any(nt, kp, wp, xb + t * KP, yb + t * ldy + p0, ldy, mode, bp, mr);
                    }
                }
            }
        }
    }
}

#else
typedef int cpu_matmul_avx512bf16_unused; /* not x86-64: nothing to build */
#endif
