/* act: the portable activation kernels over libm (the reference the vector ones are tested
 * against) and the choice of table (see act.h). */
#include "backend/cpu/act.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "backend/cpu/kernels.h"

static void p_exp(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]);
}

static void p_tanh(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

static void p_silu_mul(float *y, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* HF's gelu_pytorch_tanh, in f32 as torch computes it on the CPU. */
static void p_gelu_tanh_mul(float *y, const float *g, const float *u, int64_t n) {
    const float beta = 0.7978845608028654f, kappa = 0.044715f; /* sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) {
        float x = g[i];
        float inner = beta * (x + kappa * (x * x * x));
        y[i] = 0.5f * x * (1.0f + tanhf(inner)) * u[i];
    }
}

static void p_softcap(float *y, const float *x, float cap, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i] / cap) * cap;
}

/* gpt-oss's GptOssExperts activation, in f32 as transformers computes it from f32 inputs. */
static void p_swiglu_clamp(float *y, const float *gu, float alpha, float lim, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float g = gu[2 * i], u = gu[2 * i + 1];
        g = g > lim ? lim : g; /* clamp(max=limit) keeps NaN, as torch does */
        u = u > lim ? lim : u < -lim ? -lim : u;
        y[i] = (u + 1.0f) * (g / (1.0f + expf(-g * alpha)));
    }
}

static float p_exp_sum(float *x, float mx, int64_t n) {
    float sum = 0;
    for (int64_t i = 0; i < n; i++) sum += x[i] = expf(x[i] - mx);
    return sum;
}

const act_ops act_portable = {
    .name = "portable",
    .exp = p_exp,
    .tanh = p_tanh,
    .silu_mul = p_silu_mul,
    .gelu_tanh_mul = p_gelu_tanh_mul,
    .softcap = p_softcap,
    .swiglu_clamp = p_swiglu_clamp,
    .exp_sum = p_exp_sum,
};

static atomic_int g_act_portable;

void act_force_portable(int on) { atomic_store(&g_act_portable, on != 0); }

const act_ops *act_get(void) {
    if (atomic_load_explicit(&g_act_portable, memory_order_relaxed)) return &act_portable;
#if defined(__x86_64__)
    if (strncmp(cpu_kernels_isa(), "avx2", 4) == 0) return &act_avx2; /* "avx2" or "avx2+avx512" */
#elif defined(__aarch64__) && defined(__ARM_NEON)
    if (strcmp(cpu_kernels_isa(), "neon") == 0) return &act_neon;
#endif
    return &act_portable;
}
