/* act: the CPU backend's elementwise transcendental kernels (activations and softmax exponentials),
 * over f32 arrays, single-threaded (the ops split rows across the pool and call these per row).
 *
 * Three implementations of one table: portable C over libm (act.c, the reference), AVX2+FMA
 * (act_avx2.c, x86-64 after cpu_have_avx2()) and NEON (act_neon.c, aarch64). The vector ones use
 * their own exp (Cody-Waite reduction by ln 2, a fitted polynomial, the 2^n scale applied in two
 * halves so subnormal results round once) and tanh (odd polynomial below |x| = 0.55, 1 - 2/(e^2|x| + 1)
 * above). Against glibc 2.36 over all 2^32 f32 inputs (tests/unit/test_act.c, VLLMC_ACT_STRIDE=1):
 * exp within 1 ulp of expf, tanh within 2 ulp of tanhf (NEON: the same code, sampled under qemu);
 * +-inf, NaN, -0, overflow to inf, underflow to 0 (subnormals rounded once) and tanh's saturation at
 * exactly +-1 as libm. The compound ops keep the portable expressions' order of operations (the same
 * divisions), so they differ from them only through exp/tanh: silu_mul, softcap, swiglu_clamp within
 * 4 ulp of the portable result on test_act's sweep.
 *
 * In-place use (y == an input, element for element) is allowed; otherwise arrays do not overlap. */
#ifndef VLLMC_BACKEND_CPU_ACT_H
#define VLLMC_BACKEND_CPU_ACT_H

#include <stdint.h>

typedef struct {
    const char *name; /* "portable", "avx2", "neon" */
    /* y[i] = expf(x[i]) */
    void (*exp)(float *y, const float *x, int64_t n);
    /* y[i] = tanhf(x[i]) */
    void (*tanh)(float *y, const float *x, int64_t n);
    /* y[i] = g[i] / (1 + expf(-g[i])) * u[i]  (SiLU-GLU) */
    void (*silu_mul)(float *y, const float *g, const float *u, int64_t n);
    /* y[i] = 0.5 g (1 + tanhf(sqrt(2/pi) (g + 0.044715 g^3))) * u[i]  (HF gelu_pytorch_tanh GLU) */
    void (*gelu_tanh_mul)(float *y, const float *g, const float *u, int64_t n);
    /* y[i] = tanhf(x[i] / cap) * cap */
    void (*softcap)(float *y, const float *x, float cap, int64_t n);
    /* gpt-oss: g = gu[2i] clamped above at limit, u = gu[2i+1] clamped to [-limit, limit] (NaN kept),
     * y[i] = (u + 1) * (g / (1 + expf(-g * alpha))); gu has 2n floats */
    void (*swiglu_clamp)(float *y, const float *gu, float alpha, float limit, int64_t n);
    /* softmax numerator: x[i] = expf(x[i] - mx); returns the f32 sum of the new x[i] */
    float (*exp_sum)(float *x, float mx, int64_t n);
} act_ops;

extern const act_ops act_portable;
#if defined(__x86_64__)
extern const act_ops act_avx2; /* only after cpu_have_avx2() */
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
extern const act_ops act_neon;
#endif

/* Constants of the vector kernels (act_avx2.c, act_neon.c), derived for this file (mpmath.chebyfit,
 * near-minimax Chebyshev fits, 40 digits):
 *  exp: x clamped to [ACT_EXP_LO, ACT_EXP_HI] (beyond, expf is 0 / inf: e^-104 < 2^-150, e^89 > FLT_MAX);
 *       n = round(x log2 e), r = x - n ln2_hi - n ln2_lo (the first step exact: n ln2_hi is a multiple of
 *       2^-24 and r is small), e^r = 1 + r + r^2 q(r) with q of degree 4 fitted to (e^r - 1 - r) / r^2 on
 *       |r| <= 1.01 ln2/2 (error 6.8e-8 in q, so < 1e-8 in e^r: under 0.1 ulp);
 *  tanh: |x| < ACT_TANH_POLY: x + x^3 p(x^2), p of degree 4 fitted to (tanh x - x) / x^3 on x^2 in
 *       [0, 0.55^2] (error 1.3e-8 in p, relative error < 4e-9 in tanh). */
#define ACT_EXP_LO (-104.0f)
#define ACT_EXP_HI 89.0f
#define ACT_LOG2E 1.44269504088896341f
#define ACT_LN2_HI 0.693147182464599609375f /* ln 2 rounded to f32 */
#define ACT_LN2_LO (-1.90465429995776805e-9f) /* ln 2 - ACT_LN2_HI */
#define ACT_EXP_Q4 0.0013926926614f
#define ACT_EXP_Q3 0.00836377387441f
#define ACT_EXP_Q2 0.0416665501103f
#define ACT_EXP_Q1 0.166665733819f
#define ACT_EXP_Q0 0.5f
#define ACT_TANH_POLY 0.55f
#define ACT_TANH_P4 (-0.00661022783111f)
#define ACT_TANH_P3 0.0213093886644f
#define ACT_TANH_P2 (-0.0539094288275f)
#define ACT_TANH_P1 0.13333113729f
#define ACT_TANH_P0 (-0.33333332008f)
#define ACT_GELU_BETA 0.7978845608028654f /* sqrt(2/pi), as the portable gelu */
#define ACT_GELU_KAPPA 0.044715f

/* The table the ops use: the vector one for the kernel ISA (cpu_kernels_isa()), the portable one on
 * other CPUs, under cpu_kernels_force_scalar() or after act_force_portable(1). */
const act_ops *act_get(void);
/* Tests: nonzero forces the portable table, 0 restores detection. Call it only while no op runs. */
void act_force_portable(int on);

#endif
