/* The CPU backend: host-memory buffers and the op table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "cpu_backend.h"
#include "cpu_internal.h"
#include "kernels.h"

const char *be_dtype_name(be_dtype t) {
    switch (t) {
    case BE_F32: return "f32";
    case BE_F16: return "f16";
    case BE_BF16: return "bf16";
    case BE_I32: return "i32";
    case BE_MXFP4: return "mxfp4";
    }
    return "?";
}

static int cpu_buffer_alloc(void *ctx, size_t bytes, be_buffer **out) {
    (void)ctx;
    *out = NULL;
    be_buffer *b = calloc(1, sizeof *b);
    if (!b) return vc_errf(VC_ENOMEM, "cpu: out of memory");
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) {
        free(b);
        return vc_errf(VC_ENOMEM, "cpu: buffer of %zu bytes too large", bytes);
    }
    b->data = aligned_alloc(64, rounded ? rounded : 64);
    if (!b->data) {
        free(b);
        return vc_errf(VC_ENOMEM, "cpu: cannot allocate %zu bytes", bytes);
    }
    b->size = bytes;
    b->owned = 1;
    *out = b;
    return VC_OK;
}

static int cpu_buffer_wrap_host(void *ctx, const void *host, size_t bytes, be_buffer **out) {
    (void)ctx;
    *out = NULL;
    be_buffer *b = calloc(1, sizeof *b);
    if (!b) return vc_errf(VC_ENOMEM, "cpu: out of memory");
    b->data = (void *)host; /* read-only use: weights are never written */
    b->size = bytes;
    *out = b;
    return VC_OK;
}

static void cpu_buffer_free(void *ctx, be_buffer *b) {
    (void)ctx;
    if (!b) return;
    if (b->owned) free(b->data);
    free(b);
}

static int cpu_buffer_write(void *ctx, be_buffer *b, size_t off, const void *src, size_t bytes) {
    (void)ctx;
    if (!b->owned || off > b->size || bytes > b->size - off)
        return vc_errf(VC_EINVAL, "cpu: write of %zu bytes at %zu outside buffer of %zu", bytes, off, b->size);
    memcpy((char *)b->data + off, src, bytes);
    return VC_OK;
}

static int cpu_buffer_read(void *ctx, be_buffer *b, size_t off, void *dst, size_t bytes) {
    (void)ctx;
    if (off > b->size || bytes > b->size - off)
        return vc_errf(VC_EINVAL, "cpu: read of %zu bytes at %zu outside buffer of %zu", bytes, off, b->size);
    memcpy(dst, (char *)b->data + off, bytes);
    return VC_OK;
}

static int cpu_info(void *ctx, be_info *out) {
    cpu_ctx *c = ctx;
    memset(out, 0, sizeof *out);
    snprintf(out->desc, sizeof out->desc, "CPU, %d threads (%s)", c->nthreads, tp_describe(c->pool));
    long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    out->mem_total = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    out->mem_free = avail > 0 && psz > 0 ? (uint64_t)avail * (uint64_t)psz : 0;
    out->unified = 1;
    out->max_view_bytes = UINT64_MAX;
    return VC_OK;
}

static double cpu_bandwidth(void *ctx, size_t bytes) { return cpu_measure_triad_gbs(((cpu_ctx *)ctx)->pool, bytes, 3); }

static double cpu_peak(void *ctx) { return cpu_measure_peak_gflops(((cpu_ctx *)ctx)->pool); }

static int cpu_sync(void *ctx) {
    cpu_ctx *c = ctx;
    int rc = c->error;
    c->error = VC_OK;
    return rc;
}

static void cpu_free(void *vctx) {
    cpu_ctx *c = vctx;
    if (!c) return;
    tp_free(c->pool);
    free(c->scratch);
    free(c->moe_buf);
    free(c);
}

int be_cpu_create(be_backend **out, int nthreads, const char *bind) {
    *out = NULL;
    cpu_ctx *c = calloc(1, sizeof *c);
    be_backend *b = calloc(1, sizeof *b);
    if (!c || !b) {
        free(c);
        free(b);
        return vc_errf(VC_ENOMEM, "cpu: out of memory");
    }
    int rc = tp_create(&c->pool, nthreads, bind);
    if (rc) {
        free(c);
        free(b);
        return rc;
    }
    c->nthreads = tp_nthreads(c->pool);
    *b = (be_backend){
        .name = "cpu",
        .ctx = c,
        .buffer_alloc = cpu_buffer_alloc,
        .buffer_wrap_host = cpu_buffer_wrap_host,
        .buffer_free = cpu_buffer_free,
        .buffer_write = cpu_buffer_write,
        .buffer_read = cpu_buffer_read,
        .info = cpu_info,
        .bandwidth_gbs = cpu_bandwidth,
        .peak_gflops = cpu_peak,
        .get_rows = cpu_op_get_rows,
        .rmsnorm = cpu_op_rmsnorm,
        .matmul = cpu_op_matmul,
        .matmul_multi = cpu_op_matmul_multi,
        .rope = cpu_op_rope,
        .kv_write = cpu_op_kv_write,
        .attention = cpu_op_attention,
        .silu_mul = cpu_op_silu_mul,
        .gelu_tanh_mul = cpu_op_gelu_tanh_mul,
        .scale = cpu_op_scale,
        .softcap = cpu_op_softcap,
        .argmax = cpu_op_argmax,
        .add = cpu_op_add,
        .lora_shrink = cpu_op_lora_shrink,
        .lora_expand = cpu_op_lora_expand,
        .lora_max_rows = INT64_MAX,
        .matmul_grouped = cpu_op_matmul_grouped,
        .swiglu_clamp = cpu_op_swiglu_clamp,
        .moe_combine = cpu_op_moe_combine,
        .moe_topk = cpu_op_moe_topk,
        .moe_matmul_ids = cpu_op_moe_matmul_ids,
        .sync = cpu_sync,
        .free = cpu_free,
    };
    *out = b;
    return VC_OK;
}

