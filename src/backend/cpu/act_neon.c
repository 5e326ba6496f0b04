/* NEON activation kernels (aarch64; see act.h for the method and the contract, act_avx2.c for the
 * same on x86-64), 4 lanes at a time. A row's tail (n % 4) goes through the same vector code on a
 * padded copy. NEON's min/max return NaN when either input is NaN, so a NaN passes every clamp. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#include <string.h>

#include "backend/cpu/act.h"
#include "backend/cpu/neon_inl.h"

NEON_AI float32x4_t exp4(float32x4_t x) {
    x = vmaxq_f32(vdupq_n_f32(ACT_EXP_LO), vminq_f32(vdupq_n_f32(ACT_EXP_HI), x));
    float32x4_t nf = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(ACT_LOG2E)));
    float32x4_t r = vfmsq_f32(x, nf, vdupq_n_f32(ACT_LN2_HI)); /* x - nf * ln2_hi, one rounding */
    r = vfmsq_f32(r, nf, vdupq_n_f32(ACT_LN2_LO));
    float32x4_t q = vfmaq_f32(vdupq_n_f32(ACT_EXP_Q3), vdupq_n_f32(ACT_EXP_Q4), r);
    q = vfmaq_f32(vdupq_n_f32(ACT_EXP_Q2), q, r);
    q = vfmaq_f32(vdupq_n_f32(ACT_EXP_Q1), q, r);
    q = vfmaq_f32(vdupq_n_f32(ACT_EXP_Q0), q, r);
    float32x4_t p = vaddq_f32(vfmaq_f32(r, vmulq_f32(r, r), q), vdupq_n_f32(1.0f));
    /* 2^n as 2^n1 * 2^n2, each a normal float (see act_avx2.c) */
    int32x4_t n = vcvtq_s32_f32(nf), bias = vdupq_n_s32(127);
    int32x4_t n1 = vshrq_n_s32(n, 1), n2 = vsubq_s32(n, n1);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
    return vmulq_f32(vmulq_f32(p, s1), s2);
}

NEON_AI float32x4_t tanh4(float32x4_t x) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t a = vabsq_f32(x);
    float32x4_t s = vmulq_f32(a, a);
    float32x4_t p = vfmaq_f32(vdupq_n_f32(ACT_TANH_P3), vdupq_n_f32(ACT_TANH_P4), s);
    p = vfmaq_f32(vdupq_n_f32(ACT_TANH_P2), p, s);
    p = vfmaq_f32(vdupq_n_f32(ACT_TANH_P1), p, s);
    p = vfmaq_f32(vdupq_n_f32(ACT_TANH_P0), p, s);
    float32x4_t small = vfmaq_f32(a, vmulq_f32(a, s), p);
    float32x4_t e = exp4(vaddq_f32(a, a));
    float32x4_t large = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, one)));
    float32x4_t t = vbslq_f32(vcltq_f32(a, vdupq_n_f32(ACT_TANH_POLY)), small, large);
    /* x's sign bit onto |tanh| (-0 stays -0, a NaN stays NaN) */
    uint32x4_t sgn = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(t), sgn));
}

NEON_AI float32x4_t silu_mul4(float32x4_t g, float32x4_t u) {
    return vmulq_f32(vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(g)))), u);
}

NEON_AI float32x4_t gelu_mul4(float32x4_t x, float32x4_t u) {
    float32x4_t x3 = vmulq_f32(vmulq_f32(x, x), x);
    float32x4_t inner = vmulq_f32(vdupq_n_f32(ACT_GELU_BETA), vaddq_f32(x, vmulq_f32(vdupq_n_f32(ACT_GELU_KAPPA), x3)));
    float32x4_t h = vmulq_f32(vdupq_n_f32(0.5f), x);
    return vmulq_f32(vmulq_f32(h, vaddq_f32(vdupq_n_f32(1.0f), tanh4(inner))), u);
}

static void v_exp(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, exp4(vld1q_f32(x + i)));
    if (i < n) {
        float t[4] = {0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        vst1q_f32(t, exp4(vld1q_f32(t)));
        memcpy(y + i, t, sizeof(float) * (size_t)(n - i));
    }
}

static void v_tanh(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, tanh4(vld1q_f32(x + i)));
    if (i < n) {
        float t[4] = {0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        vst1q_f32(t, tanh4(vld1q_f32(t)));
        memcpy(y + i, t, sizeof(float) * (size_t)(n - i));
    }
}

static void v_silu_mul(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, silu_mul4(vld1q_f32(g + i), vld1q_f32(u + i)));
    if (i < n) {
        float tg[4] = {0}, tu[4] = {0};
        memcpy(tg, g + i, sizeof(float) * (size_t)(n - i));
        memcpy(tu, u + i, sizeof(float) * (size_t)(n - i));
        vst1q_f32(tg, silu_mul4(vld1q_f32(tg), vld1q_f32(tu)));
        memcpy(y + i, tg, sizeof(float) * (size_t)(n - i));
    }
}

static void v_gelu_tanh_mul(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, gelu_mul4(vld1q_f32(g + i), vld1q_f32(u + i)));
    if (i < n) {
        float tg[4] = {0}, tu[4] = {0};
        memcpy(tg, g + i, sizeof(float) * (size_t)(n - i));
        memcpy(tu, u + i, sizeof(float) * (size_t)(n - i));
        vst1q_f32(tg, gelu_mul4(vld1q_f32(tg), vld1q_f32(tu)));
        memcpy(y + i, tg, sizeof(float) * (size_t)(n - i));
    }
}

static void v_softcap(float *y, const float *x, float cap, int64_t n) {
    const float32x4_t c = vdupq_n_f32(cap);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(tanh4(vdivq_f32(vld1q_f32(x + i), c)), c));
    if (i < n) {
        float t[4] = {0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        vst1q_f32(t, vmulq_f32(tanh4(vdivq_f32(vld1q_f32(t), c)), c));
        memcpy(y + i, t, sizeof(float) * (size_t)(n - i));
    }
}

/* 4 outputs from 8 interleaved floats g0 u0 g1 u1 ... (vld2q splits them) */
NEON_AI float32x4_t swiglu4(const float *gu, float32x4_t alpha, float32x4_t lim) {
    float32x4x2_t v = vld2q_f32(gu);
    float32x4_t g = vminq_f32(lim, v.val[0]);
    float32x4_t u = vmaxq_f32(vnegq_f32(lim), vminq_f32(lim, v.val[1]));
    float32x4_t e = exp4(vmulq_f32(vnegq_f32(g), alpha));
    float32x4_t sg = vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), e));
    return vmulq_f32(vaddq_f32(u, vdupq_n_f32(1.0f)), sg);
}

static void v_swiglu_clamp(float *y, const float *gu, float alpha, float limit, int64_t n) {
    const float32x4_t al = vdupq_n_f32(alpha), lim = vdupq_n_f32(limit);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, swiglu4(gu + 2 * i, al, lim));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, gu + 2 * i, sizeof(float) * 2 * (size_t)(n - i));
        vst1q_f32(t, swiglu4(t, al, lim));
        memcpy(y + i, t, sizeof(float) * (size_t)(n - i));
    }
}

static float v_exp_sum(float *x, float mx, int64_t n) {
    const float32x4_t m = vdupq_n_f32(mx);
    float32x4_t acc = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), m));
        vst1q_f32(x + i, e);
        acc = vaddq_f32(acc, e);
    }
    if (i < n) {
        float t[4] = {0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        vst1q_f32(t, exp4(vsubq_f32(vld1q_f32(t), m)));
        memcpy(x + i, t, sizeof(float) * (size_t)(n - i));
        memset(t + (n - i), 0, sizeof(float) * (size_t)(4 - (n - i)));
        acc = vaddq_f32(acc, vld1q_f32(t));
    }
    return vaddvq_f32(acc);
}

const act_ops act_neon = {
    .name = "neon",
    .exp = v_exp,
    .tanh = v_tanh,
    .silu_mul = v_silu_mul,
    .gelu_tanh_mul = v_gelu_tanh_mul,
    .softcap = v_softcap,
    .swiglu_clamp = v_swiglu_clamp,
    .exp_sum = v_exp_sum,
};
#else
typedef int act_neon_unused; /* not aarch64: nothing to build */
#endif
