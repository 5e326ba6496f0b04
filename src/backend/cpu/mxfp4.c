/* MXFP4 weights (gpt-oss's experts) in the CPU matmul: each thread decodes a panel of up to 16 weight
 * rows into f32 on its stack (blocks of 32 FP4 e2m1 codes times one e8m0 power of two, exact in f32)
 * and runs the f32 row kernel of its ISA over the panel, so the weights stay 4.25 bits in memory and
 * are read once per step, as the other dtypes are. See backend.h for the block layout. */
#include "backend/cpu/kernels.h"

/* The e2m1 code's value: sign bit 3, then {0, 0.5, 1, 1.5, 2, 3, 4, 6}. */
static const float fp4_values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                     -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

void cpu_mxfp4_decode_row(float *dst, const uint8_t *src, int K) {
    for (int b = 0; b < K / BE_MXFP4_BLOCK; b++) {
        const uint8_t *blk = src + (size_t)b * BE_MXFP4_BLOCK_BYTES;
        float s = cpu_e8m0_scale(blk[0]), *d = dst + (size_t)b * BE_MXFP4_BLOCK;
        for (int j = 0; j < 16; j++) {
            d[2 * j] = fp4_values[blk[1 + j] & 15] * s;
            d[2 * j + 1] = fp4_values[blk[1 + j] >> 4] * s;
        }
    }
}

void cpu_mxfp4_rows(const float *x, int64_t ldx, int n, int K, const void *w, int64_t ldwb, int rows,
                    const float *bias, float *y, int64_t ldy, int panel, cpu_mxfp4_decode_fn dec,
                    cpu_f32_rows_fn kern) {
    float buf[CPU_MXFP4_PANEL_FLOATS];
    int P = panel;
    if ((int64_t)P * K > CPU_MXFP4_PANEL_FLOATS) P = (int)(CPU_MXFP4_PANEL_FLOATS / K);
    for (int r0 = 0; r0 < rows; r0 += P) {
        int R = rows - r0 < P ? rows - r0 : P;
        for (int r = 0; r < R; r++)
            dec(buf + (size_t)r * (size_t)K, (const uint8_t *)w + (r0 + r) * ldwb, K);
        kern(x, ldx, n, K, buf, BE_F32, (int64_t)K * 4, R, bias ? bias + r0 : NULL, y + r0, ldy);
    }
}
