/* neon_inl: NEON building blocks shared by the aarch64 kernels (matmul_neon*.c, attn_neon.c):
 * weight loads that convert to f32, and the f32 -> bf16 rounding. Include it only where
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

/* Lanes of v that are NaN, as a 16-bit mask. */
NEON_AI uint16x4_t neon_nan4(float32x4_t v) { return vmovn_u32(vmvnq_u32(vceqq_f32(v, v))); }

/* 4 f32 -> 4 bf16, round to nearest even on the bits; NaN -> (bits >> 16) | 0x40, as vc_f32_to_bf16. */
NEON_AI uint16x4_t neon_bf16x4(float32x4_t v) {
    uint32x4_t u = vreinterpretq_u32_f32(v);
    uint32x4_t lsb = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
    uint16x4_t r = vshrn_n_u32(vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7fff)), lsb), 16);
    return vbsl_u16(neon_nan4(v), vorr_u16(vshrn_n_u32(u, 16), vdup_n_u16(0x40)), r);
}

#endif
