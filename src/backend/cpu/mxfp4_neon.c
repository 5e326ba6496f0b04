/* The NEON paths of MXFP4 weights (aarch64; see mxfp4.c). The e2m1 values (0, 0.5, 1, 1.5, 2, 3, 4,
 * 6 and their negatives) are f16 numbers whose low byte is zero, so per block one table lookup per
 * nibble gives each code's f16 high byte, a widening shift by 8 the f16 and FCVTL the f32; then times
 * the block's power of two. Every step is exact, so the decode is the portable one bit for bit (the
 * sign of zero codes included). Rows are decoded into a panel for several tokens, or straight into the
 * dot products for one; the latter scales each block's sum of products instead of each product,
 * which differs from the portable result only by f32 summation order. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>

#include "backend/cpu/kernels.h"

/* f16 high bytes of the 16 e2m1 codes (sign in bit 3 of the code). */
static const uint8_t fp4_f16_hi[16] = {0x00, 0x38, 0x3c, 0x3e, 0x40, 0x42, 0x44, 0x46,
                                       0x80, 0xb8, 0xbc, 0xbe, 0xc0, 0xc2, 0xc4, 0xc6};

/* 16 f16 high bytes -> 4 x 4 f32, in order. */
static inline void hi_bytes_f32(uint8x16_t h, float32x4_t *v) {
    float16x8_t a = vreinterpretq_f16_u16(vshll_n_u8(vget_low_u8(h), 8));
    float16x8_t b = vreinterpretq_f16_u16(vshll_high_n_u8(h, 8));
    v[0] = vcvt_f32_f16(vget_low_f16(a));
    v[1] = vcvt_high_f32_f16(a);
    v[2] = vcvt_f32_f16(vget_low_f16(b));
    v[3] = vcvt_high_f32_f16(b);
}

/* The 16 code bytes of a block (the even element in the low nibble) -> its 32 values, unscaled. */
static inline void block_f32(const uint8_t *codes, uint8x16_t lut, float32x4_t v[8]) {
    uint8x16_t q = vld1q_u8(codes);
    uint8x16_t even = vqtbl1q_u8(lut, vandq_u8(q, vdupq_n_u8(15)));
    uint8x16_t odd = vqtbl1q_u8(lut, vshrq_n_u8(q, 4));
    hi_bytes_f32(vzip1q_u8(even, odd), v);     /* elements 0..15 */
    hi_bytes_f32(vzip2q_u8(even, odd), v + 4); /* elements 16..31 */
}

void cpu_neon_mxfp4_decode_row(float *dst, const uint8_t *src, int K) {
    const uint8x16_t lut = vld1q_u8(fp4_f16_hi);
    for (int b = 0; b < K / BE_MXFP4_BLOCK; b++) {
        const uint8_t *blk = src + (size_t)b * BE_MXFP4_BLOCK_BYTES;
        float32x4_t v[8];
        block_f32(blk + 1, lut, v);
        float s = cpu_e8m0_scale(blk[0]), *d = dst + (size_t)b * BE_MXFP4_BLOCK;
        for (int i = 0; i < 8; i++) vst1q_f32(d + 4 * i, vmulq_n_f32(v[i], s));
    }
}

/* ---- fused decode and dot for one token (decode steps, single-token expert groups) ---- */

/* One row's block against x (xv: its 32 elements): the products summed in two chains, then the sum
 * times the scale added to acc. */
static inline float32x4_t row_block(const uint8_t *blk, uint8x16_t lut, const float32x4_t *xv, float32x4_t acc) {
    float32x4_t v[8];
    block_f32(blk + 1, lut, v);
    float32x4_t s0 = vmulq_f32(v[0], xv[0]), s1 = vmulq_f32(v[1], xv[1]);
    for (int i = 2; i < 8; i += 2) {
        s0 = vfmaq_f32(s0, v[i], xv[i]);
        s1 = vfmaq_f32(s1, v[i + 1], xv[i + 1]);
    }
    return vfmaq_n_f32(acc, vaddq_f32(s0, s1), cpu_e8m0_scale(blk[0]));
}

static inline void load_x(const float *x, float32x4_t *xv) {
    for (int i = 0; i < 8; i++) xv[i] = vld1q_f32(x + 4 * i);
}

/* Rows [0, rows) for one token: four rows at a time share each loaded piece of x. */
void cpu_neon_mxfp4_gemv1(const float *x, int K, const void *w, int64_t ldwb, int rows, const float *bias, float *y) {
    const uint8x16_t lut = vld1q_u8(fp4_f16_hi);
    const uint8_t *wb = w;
    int nb = K / BE_MXFP4_BLOCK, r = 0;
    float32x4_t xv[8];
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *w0 = wb + r * ldwb, *w1 = w0 + ldwb, *w2 = w1 + ldwb, *w3 = w2 + ldwb;
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0; b < nb; b++) {
            int64_t o = (int64_t)b * BE_MXFP4_BLOCK_BYTES;
            load_x(x + (int64_t)b * BE_MXFP4_BLOCK, xv);
            a0 = row_block(w0 + o, lut, xv, a0);
            a1 = row_block(w1 + o, lut, xv, a1);
            a2 = row_block(w2 + o, lut, xv, a2);
            a3 = row_block(w3 + o, lut, xv, a3);
        }
        y[r] = vaddvq_f32(a0), y[r + 1] = vaddvq_f32(a1), y[r + 2] = vaddvq_f32(a2), y[r + 3] = vaddvq_f32(a3);
    }
    for (; r < rows; r++) {
        float32x4_t a0 = vdupq_n_f32(0);
        for (int b = 0; b < nb; b++) {
            load_x(x + (int64_t)b * BE_MXFP4_BLOCK, xv);
            a0 = row_block(wb + r * ldwb + (int64_t)b * BE_MXFP4_BLOCK_BYTES, lut, xv, a0);
        }
        y[r] = vaddvq_f32(a0);
    }
    for (int i = 0; bias && i < rows; i++) y[i] += bias[i];
}
#else
typedef int cpu_mxfp4_neon_unused; /* not aarch64: nothing to build */
#endif
