/* matmul_avx512bf16: the prefill GEMM for bf16 weights with AVX-512 BF16 (VDPBF16PS) and, where the CPU
 * has AMX-BF16 (Sapphire Rapids and later), with AMX tiles (TDPBF16PS) for its micro-kernel; compiled with
 * -mavx512f -mavx512bw -mavx512bf16 -mamx-tile -mamx-bf16 and called only after the run-time checks
 * (cpu_have_avx512bf16: CPUID.(7,1):EAX[5] and the OS saving zmm state; cpu_have_amx); CPUs without them
 * run matmul_avx2.c's f32 GEMM.
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
 * on portable C versions of the intrinsics (AMX's too), so the loops are checked on CPUs without them. */
#include "backend/cpu/kernels.h"

#if defined(__x86_64__) || defined(VLLMC_AVX512BF16_EMULATE)
#if defined(VLLMC_AVX512BF16_EMULATE)
#include "avx512bf16_emu.h"
#else
/* gcc spells the AMX macros __AMX_TILE__ / __AMX_BF16__, clang __AMXTILE__ / __AMXBF16__ */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512BF16__) || \
    !(defined(__AMX_TILE__) || defined(__AMXTILE__)) || !(defined(__AMX_BF16__) || defined(__AMXBF16__))
#error "matmul_avx512bf16.c must be compiled with -mavx512f -mavx512bw -mavx512bf16 -mamx-tile -mamx-bf16"
#endif
#include <immintrin.h>
#endif

#include <stdatomic.h>
#include <stdlib.h>
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

/* Rows t < nt of xb (row stride ld bf16 values) = bf16 of x[t][k0 .. k0+kc), as pairs; the last 32-value
 * step is zero past kc (so a row holds kc rounded up to 32 values). */
static void convert_block(const float *x, int64_t ldx, int nt, int k0, int kc, int ld, void *xb) {
    for (int t = 0; t < nt; t++) {
        const float *xr = x + (int64_t)t * ldx + k0;
        uint16_t *d = (uint16_t *)xb + (int64_t)t * ld;
        for (int k = 0; k < kc; k += 32) { /* 32 values -> 16 pairs; the masks zero what lies past kc */
            int left = kc - k;
            __mmask16 m0 = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            __mmask16 m1 = left >= 32 ? (__mmask16)0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
            __m512 lo = _mm512_maskz_loadu_ps(m0, xr + k), hi = _mm512_maskz_loadu_ps(m1, xr + k + 16);
            _mm512_storeu_si512((void *)(d + k), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
}

/* v[0..16) := its transpose as a 16 x 16 matrix of 32-bit elements (v[i] lane l <- v[l] lane i). Four
 * butterfly stages, d = 8, 4, 2, 1: each swaps bit d of the vector index with bit d of the lane index,
 * two 2-source permutes (VPERMT2D) per pair of vectors: 64 per transpose. */
/* The butterfly's VPERMT2D/PS indexes, stage s (d = 8 >> s): lo[l] = l with bit d clear ? l (a's) :
 * 16 + l - d (b's); hi[l] = l + d (a's) : 16 + l (b's). */
static const int32_t g_bfly[4][2][16] = {
    {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}, {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}},
    {{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27}, {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}},
    {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}, {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
    {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}, {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
};

BF_AI void transpose16(__m512i v[16]) {
#pragma GCC unroll 4
    for (int s = 0; s < 4; s++) {
        int d = 8 >> s;
        __m512i ilo = _mm512_loadu_si512((const void *)g_bfly[s][0]), ihi = _mm512_loadu_si512((const void *)g_bfly[s][1]);
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

/* Part `part` of `parts` of the 64-byte lines of a panel (rows x kc bf16 values from k0) prefetched into L2:
 * the next panel's weights, requested while the micro-kernel works on this one, so that pack_panel reads
 * them from L2 instead of waiting on memory for each row's first lines. */
static void prefetch_panel(const char *w, int64_t ldwb, int rows, int k0, int kc, int part, int parts) {
    int per_row = (kc * 2 + 63) / 64, lines = rows * per_row;
    int a = (int)((int64_t)lines * part / parts), b = (int)((int64_t)lines * (part + 1) / parts);
    for (int l = a; l < b; l++)
        _mm_prefetch(w + (int64_t)(l / per_row) * ldwb + (int64_t)k0 * 2 + (l % per_row) * 64, _MM_HINT_T1);
}

/* ---- AMX (AMX-TILE + AMX-BF16: Sapphire Rapids and later; cpu_have_amx checks the CPU and asks Linux for
 * the tile state) ----
 * The same loops with TDPBF16PS on 16 x 16 tiles for the micro-kernel: per 32 tokens and one packed 32-row
 * panel, four f32 accumulator tiles (tmm0/1: tokens 0-15 x rows 0-15 / 16-31; tmm2/3: tokens 16-31), the
 * tokens' bf16 pairs as A tiles (tmm4/5: 16 tokens x 32 values, rows of xb) and the panel's pairs as B
 * tiles (tmm6/7: 16 pairs x 16 rows, rows of wp: the layout VDPBF16PS takes is AMX's pair layout). The
 * accumulators start from y (mode 1), from the bias (one 64-byte row loaded with stride 0) or from zero,
 * and go back to y after each K block. The tokens past a multiple of 16 and a partial panel take the
 * AVX-512 BF16 micro-kernel. */
static void amx_begin(void) {
    _Alignas(64) cpu_amx_cfg cfg;
    cpu_amx_cfg_16x64(&cfg);
    _tile_loadconfig(&cfg);
}

/* y[t][0..32) (=|+=) xb[t] . wp for 16 * T tokens (T 1 or 2): mode 0 from bias (or zero), 1 from y */
BF_AI void amx_tiles(const int T, int kp, const uint32_t *wp, const uint32_t *xb, float *y, int64_t ldy, int mode,
                     const float *bias) {
    int64_t sy = ldy * 4;
    if (mode) {
        _tile_loadd(0, y, sy);
        _tile_loadd(1, y + 16, sy);
        if (T == 2) {
            _tile_loadd(2, y + 16 * ldy, sy);
            _tile_loadd(3, y + 16 * ldy + 16, sy);
        }
    } else if (bias) {
        _tile_loadd(0, bias, 0);
        _tile_loadd(1, bias + 16, 0);
        if (T == 2) {
            _tile_loadd(2, bias, 0);
            _tile_loadd(3, bias + 16, 0);
        }
    } else {
        _tile_zero(0);
        _tile_zero(1);
        if (T == 2) {
            _tile_zero(2);
            _tile_zero(3);
        }
    }
    for (int k = 0; k < kp; k += 16) { /* 16 pairs = 32 values a step; wp and xb hold zeros past kc */
        _tile_loadd(6, wp + k * MR, MR * 4);
        _tile_loadd(7, wp + k * MR + 16, MR * 4);
        _tile_loadd(4, xb + k, KP * 4);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        if (T == 2) {
            _tile_loadd(5, xb + 16 * KP + k, KP * 4);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    }
    _tile_stored(0, y, sy);
    _tile_stored(1, y + 16, sy);
    if (T == 2) {
        _tile_stored(2, y + 16 * ldy, sy);
        _tile_stored(3, y + 16 * ldy + 16, sy);
    }
}

/* The token block's activations are converted to bf16 pairs once for every K block (xall[K block][t][KP]),
 * not once per MC rows: a thread's share of a wide weight has many MC chunks (Llama-3.2-1B's gate/up: 64),
 * and the conversion was ~7% of the GEMM's samples at 128 tokens (Zen 4). Without the scratch (allocation
 * failed) each chunk converts into the stack block as before. */
/* VLLMC_CPU_NO_PANEL_PREFETCH=1: no prefetch of the next panel (A/B runs); read on first use */
static int prefetch_next(void) {
    static _Atomic int v = -1;
    int r = atomic_load_explicit(&v, memory_order_relaxed);
    if (r < 0) {
        const char *e = getenv("VLLMC_CPU_NO_PANEL_PREFETCH");
        r = !(e && !strcmp(e, "1"));
        atomic_store_explicit(&v, r, memory_order_relaxed);
    }
    return r;
}

static void gemm_rows(const float *x, int64_t ldx, int n, int K, const char *wb, int64_t ldwb, int rows,
                      const float *bias, float *y, int64_t ldy, int amx) {
    _Alignas(64) uint32_t wp[KP * MR];
    _Alignas(64) uint32_t xb[NC * KP];
    int nkb = (K + KC - 1) / KC, nbm = n < NC ? n : NC;
    uint32_t *xall = aligned_alloc(64, sizeof(uint32_t) * (size_t)nkb * (size_t)nbm * KP);
    if (amx) amx_begin();
    int pf = prefetch_next();
    for (int n0 = 0; n0 < n; n0 += NC) {
        int nb = n - n0 < NC ? n - n0 : NC;
        const float *xn = x + (int64_t)n0 * ldx;
        float *yb = y + (int64_t)n0 * ldy;
        for (int k0 = 0; xall && k0 < K; k0 += KC)
            convert_block(xn, ldx, nb, k0, K - k0 < KC ? K - k0 : KC, KC, xall + (size_t)(k0 / KC) * nbm * KP);
        for (int m0 = 0; m0 < rows; m0 += MC) {
            int mc = rows - m0 < MC ? rows - m0 : MC;
            for (int k0 = 0; k0 < K; k0 += KC) {
                int kc = K - k0 < KC ? K - k0 : KC, kp = (kc + 1) / 2;
                int mode = k0 > 0;
                const uint32_t *xk = xall ? xall + (size_t)(k0 / KC) * nbm * KP : xb;
                if (!xall) convert_block(xn, ldx, nb, k0, kc, KC, xb);
                for (int p0 = m0; p0 < m0 + mc; p0 += MR) {
                    int mr = m0 + mc - p0 < MR ? m0 + mc - p0 : MR;
                    pack_panel(wb + (int64_t)p0 * ldwb, ldwb, mr, k0, kc, wp);
                    const float *bp = bias ? bias + p0 : NULL;
                    /* the panel packed next: the next rows of this chunk, else the chunk's first rows of the next
                     * K block (none after the last), prefetched a part before each full micro-tile below */
                    int q0 = p0 + MR < m0 + mc ? p0 + MR : m0, qk = p0 + MR < m0 + mc ? k0 : k0 + KC;
                    int qr = m0 + mc - q0 < MR ? m0 + mc - q0 : MR, qkc = K - qk < KC ? K - qk : KC;
                    int tiles = mr == MR && !amx && qk < K && pf ? nb / NR : 0;
                    int t = 0;
                    if (mr == MR && amx) {
                        for (; t + 32 <= nb; t += 32) amx_tiles(2, kp, wp, xk + t * KP, yb + t * ldy + p0, ldy, mode, bp);
                        if (t + 16 <= nb) {
                            amx_tiles(1, kp, wp, xk + t * KP, yb + t * ldy + p0, ldy, mode, bp);
                            t += 16;
                        }
                    }
                    if (mr == MR)
                        for (; t + NR <= nb; t += NR) {
                            if (tiles) prefetch_panel(wb + (int64_t)q0 * ldwb, ldwb, qr, qk, qkc, t / NR, tiles);
                            ukr12(kp, wp, xk + t * KP, yb + t * ldy + p0, ldy, mode, bp);
                        }
                    for (; t < nb; t += NR) {
                        int nt = nb - t < NR ? nb - t : NR;
                        ukr_any(nt, kp, wp, xk + t * KP, yb + t * ldy + p0, ldy, mode, bp, mr);
                    }
                }
            }
        }
    }
    if (amx) _tile_release();
    free(xall);
}

void cpu_avx512bf16_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt,
                              int64_t ldwb, int rows, const float *bias, float *y, int64_t ldy) {
    (void)wt; /* bf16 only (matmul.c checks) */
    gemm_rows(x, ldx, n, K, w, ldwb, rows, bias, y, ldy, 0);
}

/* ---- the prefill GEMM with the tokens in the lanes (cpu_avx512bf16_gemm_t_rows) ----
 * The activations, not the weights, are rearranged: xt[tile][j][TT] holds token t's bf16 pair (2j, 2j+1) of
 * the K block (zero past kc and past n), so one zmm is 16 tokens' pairs, and each weight pair is broadcast
 * straight from its row as it lies: no panel packing (pack_panel's strided reads and transposes were ~10-15%
 * of the packed GEMM at 128 tokens on Zen 4). Micro-tile: 12 rows x 32 tokens, 24 accumulators; per pair 2
 * loads, 12 broadcasts, 24 VDPBF16PS (the packed kernel's mix, which runs at the peak). Loops: per K block
 * of TKC, the block's activations converted once; per 12 rows (their TKC columns, 24 KiB, stay in L1) every
 * token tile. The accumulators (lanes = tokens) reach y through a transposing store per K block. An odd kc
 * ends with a half pair: the weight's last element is read as 16 bits (never past the row). */
enum { TR = 12, TT = 32, TKC = 1024, TNB = 256 }; /* TNB: tokens per block (xt: 512 KiB) */

typedef int32_t u32_unaligned __attribute__((aligned(1), may_alias));

/* xt = the activations of tokens [0, n) x [k0, k0 + kc) as above (kp = ceil(kc / 2) pairs per token):
 * 16 tokens at a time, converted to pairs (convert_block), then per 16 pairs a 16 x 16 transpose
 * (transpose16, as pack_panel does for the weights) gives 16 tokens' pair j in one vector. */
static void convert_t(const float *x, int64_t ldx, int n, int k0, int kc, uint32_t *xt) {
    int kp = (kc + 1) / 2, tiles = (n + TT - 1) / TT;
    enum { LD = TKC + 32 }; /* bf16 values per converted row (convert_block writes whole 32-value steps) */
    _Alignas(64) static _Thread_local uint16_t rows[16][LD];
    for (int t0 = 0; t0 < tiles * TT; t0 += 16) {
        int nt = n - t0 < 16 ? (n - t0 > 0 ? n - t0 : 0) : 16;
        if (nt > 0) convert_block(x + (int64_t)t0 * ldx, ldx, nt, k0, kc, LD, rows);
        uint32_t *d = xt + (size_t)(t0 / TT) * (size_t)kp * TT + t0 % TT;
        for (int j0 = 0; j0 < kp; j0 += 16) {
            __m512i v[16];
            for (int t = 0; t < 16; t++) /* tokens past n are zero; pairs past kp are not stored */
                v[t] = t < nt ? _mm512_load_si512((const void *)((const uint32_t *)rows[t] + j0)) : _mm512_setzero_si512();
            transpose16(v);
            for (int j = 0; j < 16 && j0 + j < kp; j++) _mm512_store_si512((void *)(d + (size_t)(j0 + j) * TT), v[j]);
        }
    }
}

/* y[t0 + i][r] (=|+=) rows r < R of w (from column k0) . tokens t0 + i < n of xt, over kc columns */
BF_AI void ukt(const int R, int kc, const uint32_t *xt, const char *w, int64_t ldwb, int k0, float *y, int64_t ldy,
               int t0, int n, int mode, const float *bias) {
    __m512 acc[TR][2];
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const char *wk = w + (int64_t)k0 * 2;
    int full = kc / 2;
    for (int k = 0; k < full; k++) {
        __m512bh x0 = (__m512bh)_mm512_load_si512((const void *)(xt + (size_t)k * TT));
        __m512bh x1 = (__m512bh)_mm512_load_si512((const void *)(xt + (size_t)k * TT + 16));
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            __m512bh b = (__m512bh)_mm512_set1_epi32(*(const u32_unaligned *)(wk + r * ldwb + 4 * k));
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x0, b);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x1, b);
        }
    }
    if (kc & 1) { /* the half pair: (w[kc-1], 0) against (x[kc-1], 0) */
        __m512bh x0 = (__m512bh)_mm512_load_si512((const void *)(xt + (size_t)full * TT));
        __m512bh x1 = (__m512bh)_mm512_load_si512((const void *)(xt + (size_t)full * TT + 16));
        for (int r = 0; r < R; r++) {
            uint16_t h;
            memcpy(&h, wk + r * ldwb + 4 * full, 2);
            __m512bh b = (__m512bh)_mm512_set1_epi32((int)h);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x0, b);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x1, b);
        }
    }
    _Alignas(64) float tmp[TT];
    for (int r = 0; r < R; r++) {
        _mm512_store_ps(tmp, acc[r][0]);
        _mm512_store_ps(tmp + 16, acc[r][1]);
        float bv = !mode && bias ? bias[r] : 0.0f;
        for (int i = 0; i < TT && t0 + i < n; i++) {
            float *yp = y + (int64_t)(t0 + i) * ldy + r;
            *yp = mode ? *yp + tmp[i] : tmp[i] + bv;
        }
    }
}

static void ukt_any(int R, int kc, const uint32_t *xt, const char *w, int64_t ldwb, int k0, float *y, int64_t ldy,
                    int t0, int n, int mode, const float *bias) {
#define UKT(r) ukt(r, kc, xt, w, ldwb, k0, y, ldy, t0, n, mode, bias)
    switch (R) {
    case 1: UKT(1); break;
    case 2: UKT(2); break;
    case 3: UKT(3); break;
    case 4: UKT(4); break;
    case 5: UKT(5); break;
    case 6: UKT(6); break;
    case 7: UKT(7); break;
    case 8: UKT(8); break;
    case 9: UKT(9); break;
    case 10: UKT(10); break;
    case 11: UKT(11); break;
    default: UKT(12); break;
    }
#undef UKT
}

void cpu_avx512bf16_gemm_t_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt,
                                int64_t ldwb, int rows, const float *bias, float *y, int64_t ldy) {
    (void)wt; /* bf16 only (matmul.c checks) */
    uint32_t *xt = aligned_alloc(64, sizeof(uint32_t) * (size_t)(TNB / TT) * (TKC / 2) * TT);
    if (!xt) { /* no scratch: the packed GEMM needs none */
        gemm_rows(x, ldx, n, K, w, ldwb, rows, bias, y, ldy, 0);
        return;
    }
    for (int n0 = 0; n0 < n; n0 += TNB) { /* a token block's converted activations stay in L2 */
        int nb = n - n0 < TNB ? n - n0 : TNB, tiles = (nb + TT - 1) / TT;
        const float *xn = x + (int64_t)n0 * ldx;
        float *yn = y + (int64_t)n0 * ldy;
        for (int k0 = 0; k0 < K; k0 += TKC) {
            int kc = K - k0 < TKC ? K - k0 : TKC, kp = (kc + 1) / 2;
            convert_t(xn, ldx, nb, k0, kc, xt);
            for (int m0 = 0; m0 < rows; m0 += TR) {
                int R = rows - m0 < TR ? rows - m0 : TR;
                const char *wm = (const char *)w + (int64_t)m0 * ldwb;
                for (int t = 0; t < tiles; t++)
                    ukt_any(R, kc, xt + (size_t)t * (size_t)kp * TT, wm, ldwb, k0, yn + m0, ldy, t * TT, nb, k0 > 0,
                            bias ? bias + m0 : NULL);
            }
        }
    }
    free(xt);
}

void cpu_amx_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb, int rows,
                       const float *bias, float *y, int64_t ldy) {
    (void)wt; /* bf16 only (matmul.c checks) */
    gemm_rows(x, ldx, n, K, w, ldwb, rows, bias, y, ldy, 1);
}

/* ---- batched decode (CPU_AVX512BF16_MIN_N <= n < CPU_AVX512BF16_GEMM_MIN_N): tiles over the weight rows ----
 * The packed GEMM above pays its panel packing (a transpose per 16 x 16 pairs, strided reads of 32 rows)
 * for every call, amortised over few tokens here, and its row-strided reads stream badly at decode, where
 * the weights come from memory. These tiles read the weight rows as they lie instead (4 rows in step, as
 * matmul_avx512.c's f32 tiles): per 32 elements, one load of a row's 16 pairs, the tokens' 32 values
 * converted to pairs (VCVTNE2PS2BF16) and one VDPBF16PS per (row, token), 24 accumulators for 4 rows x 6
 * tokens; at the end each accumulator's 16 lanes are summed, 16 accumulators at a time, by the butterfly
 * of transpose16 with adds (lane l of the result = the sum of accumulator l). The last partial step is
 * masked (zeros past K on both sides). */

/* s[i] = the sum of v[i]'s lanes, i < 16 (v is overwritten). */
BF_AI __m512 reduce16(__m512 v[16]) {
    /* after stage d, vector i < d holds v[i]'s partial sums in the lanes with bit d clear, v[i + d]'s in the rest */
#pragma GCC unroll 4
    for (int st = 0; st < 4; st++) {
        int d = 8 >> st;
        __m512i ilo = _mm512_loadu_si512((const void *)g_bfly[st][0]), ihi = _mm512_loadu_si512((const void *)g_bfly[st][1]);
#pragma GCC unroll 8
        for (int i = 0; i < d; i++)
            v[i] = _mm512_add_ps(_mm512_permutex2var_ps(v[i], ilo, v[i + d]), _mm512_permutex2var_ps(v[i], ihi, v[i + d]));
    }
    return v[0];
}

/* y[t*ldy + r*ys] (=|+=) sum_k xb[t*ldxb + k] * w_r[k] (+ bias[r*ys]) for r < R, t < T, k < kc (R 4 or 1,
 * T <= 6); xb holds bf16 values, zero from kc up to the next multiple of 32; mode 0: =, 1: += (no bias). */
BF_AI void tile(const int R, const int T, const uint16_t *xb, int ldxb, int kc, const char *w, int64_t rs, int64_t ys,
                int mode, const float *bias, float *y, int64_t ldy) {
    __m512 acc[4][6];
    const uint16_t *wr[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) wr[r] = (const uint16_t *)(w + r * rs);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k += 32) {
        int left = kc - k;
        __mmask32 m = left >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << left) - 1);
        __m512bh xv[6];
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) xv[t] = (__m512bh)_mm512_load_si512((const void *)(xb + t * ldxb + k));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, wr[r] + k);
#pragma GCC unroll 6
            for (int t = 0; t < T; t++) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv, xv[t]);
        }
    }
    /* the sums, accumulator (r, t) at r * T + t, 16 at a time */
    __m512 v[32];
    _Alignas(64) float s[32];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) v[r * T + t] = acc[r][t];
#pragma GCC unroll 32
    for (int i = R * T; i < 32; i++) v[i] = _mm512_setzero_ps();
    _mm512_store_ps(s, reduce16(v));
    if (R * T > 16) _mm512_store_ps(s + 16, reduce16(v + 16));
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 6
        for (int t = 0; t < T; t++) {
            float *yp = y + t * ldy + r * ys;
            *yp = mode ? *yp + s[r * T + t] : bias ? s[r * T + t] + bias[r * ys] : s[r * T + t];
        }
}

/* Every token for R rows: tiles of 6, then the rest in one tile. */
BF_AI void rows_all_tokens(const int R, const uint16_t *xb, int ldxb, int n, int kc, const char *w, int64_t rs,
                           int64_t ys, int mode, const float *bias, float *y, int64_t ldy) {
    int t = 0;
    for (; t + 6 <= n; t += 6) tile(R, 6, xb + t * ldxb, ldxb, kc, w, rs, ys, mode, bias, y + t * ldy, ldy);
    const uint16_t *xt = xb + t * ldxb;
    float *yt = y + t * ldy;
    switch (n - t) {
    case 5: tile(R, 5, xt, ldxb, kc, w, rs, ys, mode, bias, yt, ldy); break;
    case 4: tile(R, 4, xt, ldxb, kc, w, rs, ys, mode, bias, yt, ldy); break;
    case 3: tile(R, 3, xt, ldxb, kc, w, rs, ys, mode, bias, yt, ldy); break;
    case 2: tile(R, 2, xt, ldxb, kc, w, rs, ys, mode, bias, yt, ldy); break;
    case 1: tile(R, 1, xt, ldxb, kc, w, rs, ys, mode, bias, yt, ldy); break;
    default: break;
    }
}

enum { XB_ELEMS = 48 * 1024 }; /* the bf16 x block: 96 KiB */

void cpu_avx512bf16_gemv_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                              int rows, const float *bias, float *y, int64_t ldy) {
    (void)wt; /* bf16 only (matmul.c checks) */
    _Alignas(64) uint16_t xb[XB_ELEMS];
    const char *wb = w;
    int kb = (XB_ELEMS / (n > 0 ? n : 1)) & ~31; /* K block: every token's x in bf16 fits xb */
    if (kb < 32) kb = 32; /* n <= 1536: never below */
    int sub = rows / 4;
    for (int k0 = 0; k0 < K; k0 += kb) {
        int kc = K - k0 < kb ? K - k0 : kb, ldxb = (kc + 31) & ~31, mode = k0 > 0;
        convert_block(x, ldx, n, k0, kc, ldxb, xb);
        const char *wk = wb + (int64_t)k0 * 2;
        /* 4 strips of rows in step (row i of each), so 4 rows stream at once; then the rows left one by one */
        for (int i = 0; i < sub; i++)
            rows_all_tokens(4, xb, ldxb, n, kc, wk + i * ldwb, sub * ldwb, sub, mode, bias ? bias + i : NULL, y + i, ldy);
        for (int r = 4 * sub; r < rows; r++)
            rows_all_tokens(1, xb, ldxb, n, kc, wk + r * ldwb, 0, 0, mode, bias ? bias + r : NULL, y + r, ldy);
    }
}

#else
typedef int cpu_matmul_avx512bf16_unused; /* not x86-64: nothing to build */
#endif
