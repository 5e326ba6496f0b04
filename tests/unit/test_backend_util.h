/* test_backend_util: what the backend-op tests share: the backend under test (g_be), a case's buffers
 * (buf_of makes one from a host image; case_end frees them after the case's sync) and rounding a value
 * to a weight dtype (rnd_dt). Include after test.h, in one test file. */
#ifndef VLLMC_TEST_BACKEND_UTIL_H
#define VLLMC_TEST_BACKEND_UTIL_H

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

#endif
