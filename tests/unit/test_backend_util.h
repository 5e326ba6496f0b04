/* test_backend_util: what the backend-op tests share: the backend under test (g_be), a case's buffers
 * (buf_of makes one from a host image; case_end frees them after the case's sync), rounding a value
 * to a weight dtype (rnd_dt), a tensor from host values (put) and its 32-bit rows read back (get_raw).
 * Include after test.h, in one test file. */
#ifndef VLLMC_TEST_BACKEND_UTIL_H
#define VLLMC_TEST_BACKEND_UTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/err.h"
#include "base/half.h"
#include "test.h"

static be_backend *g_be;

static float rnd_dt(be_dtype dt, float v) {
    return dt == BE_F16 ? vc_f16_to_f32(vc_f32_to_f16(v)) : dt == BE_BF16 ? vc_bf16_to_f32(vc_f32_to_bf16(v)) : v;
}

/* Buffers of one case, freed after its sync. */
static be_buffer *g_bufs[512];
static int g_nbufs;

static be_buffer *buf_of(size_t bytes, const void *img) {
    be_buffer *b = NULL;
    int rc = g_be->buffer_alloc(g_be->ctx, bytes, &b);
    CHECK_MSG(rc == 0, "buffer_alloc: %s", vc_errmsg());
    if (rc) return NULL;
    rc = g_be->buffer_write(g_be->ctx, b, 0, img, bytes);
    CHECK_MSG(rc == 0, "buffer_write: %s", vc_errmsg());
    g_bufs[g_nbufs++] = b;
    return b;
}

static void case_end(void) {
    for (int i = 0; i < g_nbufs; i++) g_be->buffer_free(g_be->ctx, g_bufs[i]);
    g_nbufs = 0;
}

/* Host values v (rows x cols, rounded to dt in place; NULL: none) into a new buffer at element offset
 * `off` with row stride `stride`; the rest of the buffer (and every element when v is NULL) is NaN, or
 * -7 for BE_I32 (whose values are v's, converted). */
static be_tensor put(be_dtype dt, float *v, int64_t rows, int64_t cols, int64_t stride, int64_t off) {
    size_t es = be_dtype_size(dt), n = (size_t)(off + rows * stride + 8);
    unsigned char *img = malloc(n * es);
    for (size_t i = 0; i < n; i++) {
        float nanv = NAN;
        int32_t bad = -7;
        if (dt == BE_F32) memcpy(img + 4 * i, &nanv, 4);
        else if (dt == BE_I32) memcpy(img + 4 * i, &bad, 4);
        else ((uint16_t *)img)[i] = dt == BE_F16 ? 0x7e01 : 0x7fc1;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            size_t i = (size_t)(off + r * stride + c);
            float x = v ? (v[r * cols + c] = rnd_dt(dt, v[r * cols + c])) : NAN;
            if (dt == BE_F32) memcpy(img + 4 * i, &x, 4);
            else if (dt == BE_I32) {
                int32_t iv = v ? (int32_t)x : -7;
                memcpy(img + 4 * i, &iv, 4);
            } else ((uint16_t *)img)[i] = dt == BE_F16 ? vc_f32_to_f16(x) : vc_f32_to_bf16(x);
        }
    be_tensor t = be_view(buf_of(n * es, img), (size_t)off * es, dt, rows, cols);
    t.stride = stride;
    free(img);
    return t;
}

/* Read back rows x cols of a view of 32-bit elements (f32 or i32) into out, rows packed. */
static void get_raw(const be_tensor *t, void *out) {
    for (int64_t r = 0; r < t->rows; r++) {
        int rc = g_be->buffer_read(g_be->ctx, t->buf, t->offset + (size_t)(r * t->stride) * 4,
                                   (char *)out + (size_t)(r * t->cols) * 4, (size_t)t->cols * 4);
        CHECK_MSG(rc == 0, "buffer_read: %s", vc_errmsg());
    }
}

#endif
