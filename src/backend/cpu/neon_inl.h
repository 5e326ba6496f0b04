/* neon_inl: NEON building blocks shared by the aarch64 kernels (matmul_neon.c, attn_neon.c):
 * weight loads that convert to f32. Include it only where
 * __aarch64__ and __ARM_NEON are defined (NEON is baseline there: no extra flags). */
#ifndef VLLMC_BACKEND_CPU_NEON_INL_H
#define VLLMC_BACKEND_CPU_NEON_INL_H

#include <arm_neon.h>
#include <stdint.h>

#include "backend/backend.h"

#define NEON_AI static inline __attribute__((always_inline))

/* 4 elements of a f32/f16/bf16 row starting at element i, as f32 (bf16: the bits shifted up). */
NEON_AI float32x4_t neon_ld4(const be_dtype dt, const void *row, int64_t i) {
    if (dt == BE_F16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)row + i)));
    if (dt == BE_BF16) return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)row + i), 16));
    return vld1q_f32((const float *)row + i);
}

#endif
