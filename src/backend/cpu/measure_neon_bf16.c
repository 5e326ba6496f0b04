/* measure_neon_bf16: the BFMMLA half of the machine measurements (see kernels.h). Compiled with
 * -march=armv8.6-a+bf16; called only after cpu_have_neon_bf16(). */
#include "backend/cpu/kernels.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#if !defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
#error "measure_neon_bf16.c must be compiled with -march=armv8.6-a+bf16 (or another target with BF16)"
#endif
#include <arm_neon.h>

float cpu_neon_bfmmla_loop(long iters) {
    /* 12 independent chains, as the f32 FMA loop */
    float32x4_t acc[12];
    bfloat16x8_t a = vreinterpretq_bf16_u16(vdupq_n_u16(0x3a83)); /* bf16 ~1e-3 */
    for (int j = 0; j < 12; j++) acc[j] = vdupq_n_f32((float)j);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) acc[j] = vbfmmlaq_f32(acc[j], a, a);
    }
    float32x4_t s = acc[0];
    for (int j = 1; j < 12; j++) s = vaddq_f32(s, acc[j]);
    return vaddvq_f32(s);
}
#else
typedef int cpu_measure_neon_bf16_unused; /* not aarch64: nothing to build */
#endif
