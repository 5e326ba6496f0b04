/* avx512bf16_emu: portable C versions of the AVX-512 and AMX intrinsics that matmul_avx512bf16.c uses, for
 * test_matmul (which includes that file with VLLMC_AVX512BF16_EMULATE) on CPUs without AVX-512 BF16.
 * Semantics from the Intel SDM: VDPBF16PS adds the even product, then the odd one, to each f32 lane
 * (the products of two bf16 are exact in f32); VCVTNE2PS2BF16 rounds to nearest even (its flushing
 * of f32 subnormals to 0 is not modelled: the tests' inputs have none). Vector types are GCC vector
 * extensions, so casts between them compile as the real ones do. Never include <immintrin.h> with it. */
#ifndef VLLMC_TESTS_AVX512BF16_EMU_H
#define VLLMC_TESTS_AVX512BF16_EMU_H

#include <stdint.h>
#include <string.h>

#include "base/half.h"

/* Without AVX-512, GCC and clang warn of the ABI of a 64-byte vector returned (-Wpsabi: silenced here,
 * every function is inlined) and notes it for one passed by value (no pragma silences that note): the
 * intrinsics that take vectors are macros over functions that take pointers. */
#if defined(__clang__)
#if __has_warning("-Wpsabi")
#pragma clang diagnostic ignored "-Wpsabi"
#endif
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float __m512 __attribute__((vector_size(64)));
typedef long long __m512i __attribute__((vector_size(64)));
typedef short __m512bh __attribute__((vector_size(64)));
typedef uint16_t __mmask16;
typedef uint32_t __mmask32;

#define EMU_AI static inline __attribute__((always_inline, unused))

EMU_AI __m512 _mm512_setzero_ps(void) { return (__m512){0}; }

EMU_AI __m512i _mm512_load_si512(const void *p) {
    __m512i v;
    memcpy(&v, p, 64);
    return v;
}

#define _mm512_storeu_si512(p, v) memcpy((p), (const __m512i[]){(v)}, 64)
#define _mm512_store_si512(p, v) memcpy((p), (const __m512i[]){(v)}, 64)
#define _mm512_loadu_si512(p) _mm512_load_si512(p)
EMU_AI __m512i _mm512_setzero_si512(void) { return (__m512i){0}; }

/* 32 16-bit lanes from p where m has a 1 (masked-off lanes are not read), else 0 */
EMU_AI __m512i _mm512_maskz_loadu_epi16(__mmask32 m, const void *p) {
    uint16_t l[32];
    __m512i v;
    for (int i = 0; i < 32; i++) {
        l[i] = 0;
        if ((m >> i) & 1) memcpy(&l[i], (const char *)p + 2 * i, 2);
    }
    memcpy(&v, l, 64);
    return v;
}

/* VPERMT2D / VPERMT2PS: lane i = (idx[i] & 16 ? b : a)[idx[i] & 15], on 32-bit lanes of either type */
EMU_AI void emu_permute32(const void *a, const __m512i *idx, const void *b, void *out) {
    uint32_t la[16], lb[16], r[16];
    int32_t li[16];
    memcpy(la, a, 64);
    memcpy(lb, b, 64);
    memcpy(li, idx, 64);
    for (int i = 0; i < 16; i++) r[i] = (li[i] & 16 ? lb : la)[li[i] & 15];
    memcpy(out, r, 64);
}
#define _mm512_permutex2var_epi32(a, idx, b) \
    emu_permutex2var_epi32((const __m512i[]){(a)}, (const __m512i[]){(idx)}, (const __m512i[]){(b)})
EMU_AI __m512i emu_permutex2var_epi32(const __m512i *a, const __m512i *idx, const __m512i *b) {
    __m512i v;
    emu_permute32(a, idx, b, &v);
    return v;
}
#define _mm512_permutex2var_ps(a, idx, b) \
    emu_permutex2var_ps((const __m512[]){(a)}, (const __m512i[]){(idx)}, (const __m512[]){(b)})
EMU_AI __m512 emu_permutex2var_ps(const __m512 *a, const __m512i *idx, const __m512 *b) {
    __m512 v;
    emu_permute32(a, idx, b, &v);
    return v;
}

#define _MM_HINT_T0 3
#define _MM_HINT_T1 2
#define _mm_prefetch(p, hint) ((void)(p), (void)(hint))

EMU_AI __m512i _mm512_set1_epi32(int a) {
    int32_t l[16];
    __m512i v;
    for (int i = 0; i < 16; i++) l[i] = a;
    memcpy(&v, l, 64);
    return v;
}

EMU_AI __m512 _mm512_loadu_ps(const float *p) {
    __m512 v;
    memcpy(&v, p, 64);
    return v;
}

EMU_AI __m512 _mm512_maskz_loadu_ps(__mmask16 m, const float *p) {
    float l[16];
    __m512 v;
    for (int i = 0; i < 16; i++) l[i] = (m >> i) & 1 ? p[i] : 0.0f; /* masked-off lanes are not read */
    memcpy(&v, l, 64);
    return v;
}

#define _mm512_storeu_ps(p, v) memcpy((p), (const __m512[]){(v)}, 64)
#define _mm512_store_ps(p, v) memcpy((p), (const __m512[]){(v)}, 64)
#define _mm512_add_ps(a, b) ((a) + (b))

/* dst.f32[i] = src.f32[i] + a.bf16[2i] * b.bf16[2i] + a.bf16[2i+1] * b.bf16[2i+1], summed in that order */
#define _mm512_dpbf16_ps(src, a, b) \
    emu_dpbf16_ps((const __m512[]){(src)}, (const __m512bh[]){(a)}, (const __m512bh[]){(b)})
EMU_AI __m512 emu_dpbf16_ps(const __m512 *src, const __m512bh *a, const __m512bh *b) {
    uint16_t ha[32], hb[32];
    float s[16];
    memcpy(ha, a, 64);
    memcpy(hb, b, 64);
    memcpy(s, src, 64);
    for (int i = 0; i < 16; i++) {
        s[i] += vc_bf16_to_f32(ha[2 * i]) * vc_bf16_to_f32(hb[2 * i]);
        s[i] += vc_bf16_to_f32(ha[2 * i + 1]) * vc_bf16_to_f32(hb[2 * i + 1]);
    }
    __m512 r;
    memcpy(&r, s, 64);
    return r;
}

/* bf16 lanes 0..15 from b, 16..31 from a */
#define _mm512_cvtne2ps_pbh(a, b) emu_cvtne2ps_pbh((const __m512[]){(a)}, (const __m512[]){(b)})
EMU_AI __m512bh emu_cvtne2ps_pbh(const __m512 *a, const __m512 *b) {
    float fa[16], fb[16];
    uint16_t h[32];
    memcpy(fa, a, 64);
    memcpy(fb, b, 64);
    for (int i = 0; i < 16; i++) {
        h[i] = vc_f32_to_bf16(fb[i]);
        h[16 + i] = vc_f32_to_bf16(fa[i]);
    }
    __m512bh r;
    memcpy(&r, h, 64);
    return r;
}

/* AMX (the tile intrinsics matmul_avx512bf16.c uses), after the SDM: a configuration of rows and bytes per
 * row for each of 8 tiles of up to 16 x 64 bytes; TILELOADD / TILESTORED move the configured rows (base +
 * row * stride); TDPBF16PS adds to each f32 of C[m][n], for every pair k of A's row m, the even product
 * A[m].bf16[2k] * B[k].bf16[2n], then the odd one. One emulated tile file for the process (the tests run
 * the emulated kernels on one thread). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} emu_tilecfg;
static emu_tilecfg emu_tcfg;
static uint8_t emu_tmm[8][16 * 64];

#define _tile_loadconfig(p) memcpy(&emu_tcfg, (p), sizeof emu_tcfg)
#define _tile_release() memset(&emu_tcfg, 0, sizeof emu_tcfg)
#define _tile_zero(t) memset(emu_tmm[t], 0, sizeof emu_tmm[t])
#define _tile_loadd(t, base, stride) emu_tile_loadd((t), (const void *)(base), (int64_t)(stride))
#define _tile_stored(t, base, stride) emu_tile_stored((t), (void *)(base), (int64_t)(stride))
#define _tile_dpbf16ps(c, a, b) emu_tile_dpbf16ps((c), (a), (b))

EMU_AI void emu_tile_loadd(int t, const void *base, int64_t stride) {
    memset(emu_tmm[t], 0, sizeof emu_tmm[t]);
    for (int r = 0; r < emu_tcfg.rows[t]; r++)
        memcpy(emu_tmm[t] + r * 64, (const char *)base + r * stride, emu_tcfg.colsb[t]);
}

EMU_AI void emu_tile_stored(int t, void *base, int64_t stride) {
    for (int r = 0; r < emu_tcfg.rows[t]; r++) memcpy((char *)base + r * stride, emu_tmm[t] + r * 64, emu_tcfg.colsb[t]);
}

EMU_AI void emu_tile_dpbf16ps(int c, int a, int b) {
    for (int m = 0; m < emu_tcfg.rows[c]; m++) {
        float acc[16];
        memcpy(acc, emu_tmm[c] + m * 64, 64);
        for (int k = 0; k < emu_tcfg.colsb[a] / 4; k++)
            for (int n = 0; n < emu_tcfg.colsb[c] / 4; n++) {
                uint16_t a0, a1, b0, b1;
                memcpy(&a0, emu_tmm[a] + m * 64 + 4 * k, 2);
                memcpy(&a1, emu_tmm[a] + m * 64 + 4 * k + 2, 2);
                memcpy(&b0, emu_tmm[b] + k * 64 + 4 * n, 2);
                memcpy(&b1, emu_tmm[b] + k * 64 + 4 * n + 2, 2);
                acc[n] += vc_bf16_to_f32(a0) * vc_bf16_to_f32(b0);
                acc[n] += vc_bf16_to_f32(a1) * vc_bf16_to_f32(b1);
            }
        memcpy(emu_tmm[c] + m * 64, acc, 64);
    }
}

#endif
