/* AVX2+FMA activation kernels (see act.h for the method and the contract), 8 lanes at a time. A
 * row's tail (n % 8) goes through the same vector code on a padded copy, so every element of a row
 * gets the same approximation wherever it sits. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/act.h"

#define AI static inline __attribute__((always_inline))

/* expf: see act.h. min_ps/max_ps return their second operand when one is NaN: x comes second, so a
 * NaN passes the clamp and comes out NaN. */
AI __m256 exp8(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(ACT_EXP_LO), _mm256_min_ps(_mm256_set1_ps(ACT_EXP_HI), x));
    __m256 nf = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(ACT_LOG2E)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(ACT_LN2_HI), x);
    r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(ACT_LN2_LO), r);
    __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(ACT_EXP_Q4), r, _mm256_set1_ps(ACT_EXP_Q3));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(ACT_EXP_Q2));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(ACT_EXP_Q1));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(ACT_EXP_Q0));
    __m256 p = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(r, r), q, r), _mm256_set1_ps(1.0f));
    /* 2^n in two factors 2^n1 * 2^n2 (n in [-150, 129]: each half is a normal float), so that p * 2^n1
     * is exact and a subnormal or infinite result is rounded once, by the second product */
    __m256i n = _mm256_cvtps_epi32(nf), bias = _mm256_set1_epi32(127);
    __m256i n1 = _mm256_srai_epi32(n, 1), n2 = _mm256_sub_epi32(n, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* tanhf: see act.h; odd, so computed on |x| with x's sign put back (-0 stays -0). A NaN fails the
 * "small" test and comes out of the exp branch as NaN; e^2|x| = inf gives exactly 1. */
AI __m256 tanh8(__m256 x) {
    const __m256 sgn = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 a = _mm256_andnot_ps(sgn, x);
    __m256 s = _mm256_mul_ps(a, a);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(ACT_TANH_P4), s, _mm256_set1_ps(ACT_TANH_P3));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(ACT_TANH_P2));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(ACT_TANH_P1));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(ACT_TANH_P0));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(a, s), p, a);
    __m256 e = exp8(_mm256_add_ps(a, a));
    __m256 large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    __m256 t = _mm256_blendv_ps(large, small, _mm256_cmp_ps(a, _mm256_set1_ps(ACT_TANH_POLY), _CMP_LT_OQ));
    return _mm256_or_ps(t, _mm256_and_ps(x, sgn));
}

/* the portable expressions, operation for operation, around exp8/tanh8 */
AI __m256 silu_mul8(__m256 g, __m256 u) {
    __m256 e = exp8(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

AI __m256 gelu_mul8(__m256 x, __m256 u) {
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 inner = _mm256_mul_ps(_mm256_set1_ps(ACT_GELU_BETA),
                                 _mm256_add_ps(x, _mm256_mul_ps(_mm256_set1_ps(ACT_GELU_KAPPA), x3)));
    __m256 h = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
    return _mm256_mul_ps(_mm256_mul_ps(h, _mm256_add_ps(_mm256_set1_ps(1.0f), tanh8(inner))), u);
}

static void v_exp(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        _mm256_storeu_ps(t, exp8(_mm256_loadu_ps(t)));
        memcpy(y + i, t, sizeof(float) * (size_t)(n - i));
    }
}

static void v_tanh(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, tanh8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        _mm256_storeu_ps(t, tanh8(_mm256_loadu_ps(t)));
        memcpy(y + i, t, sizeof(float) * (size_t)(n - i));
    }
}

static void v_silu_mul(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, silu_mul8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        float tg[8] = {0}, tu[8] = {0};
        memcpy(tg, g + i, sizeof(float) * (size_t)(n - i));
        memcpy(tu, u + i, sizeof(float) * (size_t)(n - i));
        _mm256_storeu_ps(tg, silu_mul8(_mm256_loadu_ps(tg), _mm256_loadu_ps(tu)));
        memcpy(y + i, tg, sizeof(float) * (size_t)(n - i));
    }
}

static void v_gelu_tanh_mul(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, gelu_mul8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        float tg[8] = {0}, tu[8] = {0};
        memcpy(tg, g + i, sizeof(float) * (size_t)(n - i));
        memcpy(tu, u + i, sizeof(float) * (size_t)(n - i));
        _mm256_storeu_ps(tg, gelu_mul8(_mm256_loadu_ps(tg), _mm256_loadu_ps(tu)));
        memcpy(y + i, tg, sizeof(float) * (size_t)(n - i));
    }
}

static void v_softcap(float *y, const float *x, float cap, int64_t n) {
    const __m256 c = _mm256_set1_ps(cap);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(tanh8(_mm256_div_ps(_mm256_loadu_ps(x + i), c)), c));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        _mm256_storeu_ps(t, _mm256_mul_ps(tanh8(_mm256_div_ps(_mm256_loadu_ps(t), c)), c));
        memcpy(y + i, t, sizeof(float) * (size_t)(n - i));
    }
}

/* 8 outputs from 16 interleaved floats g0 u0 g1 u1 ...; the clamps as the portable ternaries
 * (min_ps(lim, g) is `lim < g ? lim : g`, which keeps a NaN g). */
AI __m256 swiglu8(const float *gu, __m256 alpha, __m256 lim) {
    __m256 a = _mm256_loadu_ps(gu), b = _mm256_loadu_ps(gu + 8);
    /* shuffle_ps within lanes gives g0 g1 g4 g5 | g2 g3 g6 g7; permute4x64 puts them in order */
    __m256 g = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    __m256 u = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
    g = _mm256_min_ps(lim, g);
    u = _mm256_max_ps(_mm256_xor_ps(lim, _mm256_set1_ps(-0.0f)), _mm256_min_ps(lim, u));
    __m256 e = exp8(_mm256_mul_ps(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)), alpha));
    __m256 sg = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    return _mm256_mul_ps(_mm256_add_ps(u, _mm256_set1_ps(1.0f)), sg);
}

static void v_swiglu_clamp(float *y, const float *gu, float alpha, float limit, int64_t n) {
    const __m256 al = _mm256_set1_ps(alpha), lim = _mm256_set1_ps(limit);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, swiglu8(gu + 2 * i, al, lim));
    if (i < n) {
        float t[16] = {0};
        memcpy(t, gu + 2 * i, sizeof(float) * 2 * (size_t)(n - i));
        _mm256_storeu_ps(t, swiglu8(t, al, lim));
        memcpy(y + i, t, sizeof(float) * (size_t)(n - i));
    }
}

static float v_exp_sum(float *x, float mx, int64_t n) {
    const __m256 m = _mm256_set1_ps(mx);
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        _mm256_storeu_ps(t, exp8(_mm256_sub_ps(_mm256_loadu_ps(t), m)));
        memcpy(x + i, t, sizeof(float) * (size_t)(n - i));
        memset(t + (n - i), 0, sizeof(float) * (size_t)(8 - (n - i)));
        acc = _mm256_add_ps(acc, _mm256_loadu_ps(t));
    }
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

const act_ops act_avx2 = {
    .name = "avx2",
    .exp = v_exp,
    .tanh = v_tanh,
    .silu_mul = v_silu_mul,
    .gelu_tanh_mul = v_gelu_tanh_mul,
    .softcap = v_softcap,
    .swiglu_clamp = v_swiglu_clamp,
    .exp_sum = v_exp_sum,
};
#else
typedef int act_avx2_unused; /* not x86-64: nothing to build */
#endif
