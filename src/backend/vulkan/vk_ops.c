/* The be_backend ops on Vulkan: each turns tensor views into bindings, push
 * constants and a workgroup count. Offsets inside a binding are in elements
 * (in bytes for MXFP4 weights, whose 17-byte blocks start on any byte): a
 * binding starts at the view's byte offset rounded down to the device's
 * storage-buffer alignment, and the remainder travels as a push constant. */
#include <stdint.h>
#include <string.h>

#include "backend/vulkan/vk_internal.h"
#include "base/err.h"

#define MATVEC_MAX_N 8  /* up to this many tokens use the decode kernel (matvec.comp's NT <= 8) */

static uint32_t eoff(const vk_ctx *c, const be_tensor *t) {
    return (uint32_t)((t->offset % c->align) / be_dtype_size(t->dtype));
}

static size_t tbytes(const be_tensor *t) {
    if (t->rows <= 0 || t->cols <= 0) return 0;
    return be_dtype_bytes(t->dtype, (t->rows - 1) * t->stride + t->cols);
}

static vk_use use_of(const be_tensor *t, int write) { return (vk_use){t->buf, t->offset, tbytes(t), write}; }

static uint32_t cdiv(int64_t a, int64_t b) { return (uint32_t)((a + b - 1) / b); }

static uint32_t dt_index(be_dtype t) { return t == BE_F16 ? 1u : t == BE_BF16 ? 2u : 0u; }

/* Rows of `t` (from r0) that fit one binding (in bytes, so MXFP4's 17-byte blocks split on whole rows). */
static int64_t rows_fitting(const vk_ctx *c, const be_tensor *t, int64_t r0) {
    uint64_t row = be_dtype_bytes(t->dtype, t->stride), width = be_dtype_bytes(t->dtype, t->cols);
    uint64_t start = (t->offset + (uint64_t)r0 * row) % c->align;
    uint64_t range = c->split_range && c->split_range < c->max_range ? c->split_range : c->max_range;
    uint64_t room = range - start;
    if (room < width) return 0;
    return (int64_t)((room - width) / row) + 1;
}

/* Rows [r0, r0 + *nr) of t that fit one binding; 0 (an error recorded) when not even one row fits. */
static int next_rows(vk_ctx *c, const be_tensor *t, int64_t r0, int64_t *nr, const char *what) {
    *nr = rows_fitting(c, t, r0);
    if (*nr < 1) {
        vk_fail(c, vc_errf(VC_EUNSUP, "vulkan: %s: a %s row exceeds maxStorageBufferRange", c->props.deviceName, what));
        return 0;
    }
    if (*nr > t->rows - r0) *nr = t->rows - r0;
    return 1;
}

void vk_op_get_rows(void *ctx, const be_tensor *table, const be_tensor *ids, const be_tensor *out) {
    vk_ctx *c = ctx;
    for (int64_t r0 = 0, nr; r0 < table->rows; r0 += nr) {
        if (!next_rows(c, table, r0, &nr, "table")) return;
        be_tensor part = be_rows(table, r0, nr);
        struct { uint32_t t_off, t_stride, i_off, o_off, o_stride, n, D, row_base, row_count; } pc = {
            eoff(c, &part), (uint32_t)part.stride, eoff(c, ids), eoff(c, out), (uint32_t)out->stride,
            (uint32_t)out->rows, (uint32_t)out->cols, (uint32_t)r0, (uint32_t)nr};
        vk_use u[3] = {use_of(&part, 0), use_of(ids, 0), use_of(out, 1)};
        vk_dispatch(c, VKP_GET_ROWS + dt_index(table->dtype), u, 3, &pc, sizeof pc, cdiv(out->cols, 64), (uint32_t)out->rows, 1);
    }
}

void vk_op_rmsnorm(void *ctx, const be_tensor *x, const be_tensor *w, float eps, float w_offset, const be_tensor *out) {
    vk_ctx *c = ctx;
    struct { uint32_t x_off, x_stride, w_off, o_off, o_stride, D, n; float eps, w_offset; uint32_t vec; } pc = {
        eoff(c, x), (uint32_t)x->stride, eoff(c, w), eoff(c, out), (uint32_t)out->stride, (uint32_t)x->cols,
        (uint32_t)x->rows, eps, w_offset, 0};
    pc.vec = ((pc.x_off | pc.x_stride | pc.w_off | pc.o_off | pc.o_stride | pc.D) & 3u) == 0;
    vk_use u[3] = {use_of(x, 0), use_of(w, 0), use_of(out, 1)};
    uint32_t gx = x->rows < 65535 ? (uint32_t)x->rows : 65535;
    vk_dispatch(c, VKP_RMSNORM, u, 3, &pc, sizeof pc, gx, cdiv(x->rows, 65535), 1);
}

void vk_op_rope_kv_write(void *ctx, const be_tensor *q, const be_tensor *k, const be_tensor *v, int head_dim, int rot_dim,
                         const be_tensor *pos, const be_tensor *inv_freq, float mscale, const be_tensor *slot,
                         const be_tensor *k_cache, const be_tensor *v_cache) {
    vk_ctx *c = ctx;
    struct {
        uint32_t q_off, q_stride, k_off, k_stride, v_off, v_stride, p_off, f_off, s_off;
        uint32_t kc_off, vc_off, c_stride, n, Hq, Hk, HD, rot, rows;
        float mscale;
    } pc = {eoff(c, q), (uint32_t)q->stride, eoff(c, k), (uint32_t)k->stride, eoff(c, v), (uint32_t)v->stride,
            eoff(c, pos), eoff(c, inv_freq), eoff(c, slot), eoff(c, k_cache), eoff(c, v_cache), (uint32_t)k_cache->stride,
            (uint32_t)q->rows, (uint32_t)(q->cols / head_dim), (uint32_t)(k->cols / head_dim), (uint32_t)head_dim,
            (uint32_t)rot_dim, (uint32_t)k_cache->rows, mscale};
    if (head_dim % 2 || k_cache->dtype != v_cache->dtype || k_cache->stride != v_cache->stride ||
        (k_cache->dtype != BE_F32 && ((pc.kc_off | pc.vc_off | pc.c_stride) & 1u))) {
        /* shapes the fused kernel does not take: the four ops */
        vk_op_rope(c, q, head_dim, rot_dim, pos, inv_freq, mscale);
        vk_op_rope(c, k, head_dim, rot_dim, pos, inv_freq, mscale);
        vk_op_kv_write(c, k, slot, k_cache);
        vk_op_kv_write(c, v, slot, v_cache);
        return;
    }
    vk_use u[8] = {use_of(q, 1), use_of(k, 0), use_of(v, 0), use_of(pos, 0), use_of(inv_freq, 0), use_of(slot, 0),
                   use_of(k_cache, 1), use_of(v_cache, 1)};
    uint32_t items = pc.Hq * (pc.rot / 2) + pc.Hk * pc.HD; /* q pairs, then K and V element pairs */
    vk_dispatch(c, VKP_ROPE_KV + dt_index(k_cache->dtype), u, 8, &pc, sizeof pc, cdiv(items, 64), (uint32_t)q->rows, 1);
}

void vk_op_add_rmsnorm(void *ctx, const be_tensor *x, const be_tensor *h, const be_tensor *w, float eps, float w_offset,
                       const be_tensor *out) {
    vk_ctx *c = ctx;
    struct {
        uint32_t x_off, x_stride, h_off, h_stride, w_off, o_off, o_stride, D, n;
        float eps, w_offset;
        uint32_t vec;
    } pc = {eoff(c, x), (uint32_t)x->stride, eoff(c, h), (uint32_t)h->stride, eoff(c, w), eoff(c, out),
            (uint32_t)out->stride, (uint32_t)x->cols, (uint32_t)x->rows, eps, w_offset, 0};
    pc.vec = ((pc.x_off | pc.x_stride | pc.h_off | pc.h_stride | pc.w_off | pc.o_off | pc.o_stride | pc.D) & 3u) == 0;
    vk_use u[4] = {use_of(x, 1), use_of(h, 0), use_of(w, 0), use_of(out, 1)};
    uint32_t gx = x->rows < 65535 ? (uint32_t)x->rows : 65535;
    vk_dispatch(c, VKP_ADD_RMSNORM, u, 4, &pc, sizeof pc, gx, cdiv(x->rows, 65535), 1);
}

/* the matmul shaders' push constants (k_chunk and split_stride: matmul_coop's split along K) */
typedef struct {
    uint32_t x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M, k_chunk, split_stride;
} mm_push;

static int ensure_scratch(vk_ctx *c, size_t bytes);

/* matmul_coop.comp's push constants: mm_push, then the row ranges of stacked weights and their outputs */
typedef struct {
    mm_push mm;
    uint32_t e1, e2, o_off1, o_stride1, o_off2, o_stride2;
} coop_push;

/* A matmul_coop.comp dispatch of one output (u[3]; it also fills the stacked outputs' bindings, never
 * written), or a matmul_cd.comp one (four bindings). */
static void mm_dispatch(vk_ctx *c, int pipe, const vk_use *u, const mm_push *pc, uint32_t gx, uint32_t gy,
                        uint32_t gz) {
    if (pipe >= VKP_MATMUL_CD && pipe < VKP_ARGMAX) { /* matmul_cd.comp's six pipelines */
        vk_dispatch(c, pipe, u, 4, pc, sizeof *pc, gx, gy, gz);
        return;
    }
    coop_push cp = {*pc, pc->M, pc->M, 0, 0, 0, 0};
    vk_use u6[6] = {u[0], u[1], u[2], u[3], u[3], u[3]};
    vk_dispatch(c, pipe, u6, 6, &cp, sizeof cp, gx, gy, gz);
}

/* Splits along K for the cooperative-matrix GEMMs with few tokens: enough workgroups to fill the GPU
 * (about two per compute unit, as attn_splits), each at least 256 deep. */
static uint32_t coop_splits(const vk_ctx *c, uint32_t wgs, uint32_t K) {
    if (!c->coop_splitk || wgs >= 264) return 1;
    uint32_t s = (264 + wgs - 1) / wgs, most = K / 256;
    if (s > most) s = most;
    if (s > 16) s = 16;
    return s < 1 ? 1 : s;
}

/* A cooperative-matrix GEMM of 128-row x bt-token tiles, split along K (chunks of a multiple of `align`)
 * where the grid would be small (batched decode): the partial sums go to the scratch buffer and
 * matmul_reduce adds them (and the bias). */
static void coop_grid(vk_ctx *c, int pipe, uint32_t bt, uint32_t align, mm_push pc, const vk_use *u,
                      const be_tensor *bias, const be_tensor *out) {
    uint32_t gx = cdiv(pc.M, 128), gy = cdiv(pc.n, bt), S = coop_splits(c, gx * gy, pc.K);
    uint32_t chunk = (cdiv(pc.K, S) + align - 1) / align * align;
    S = cdiv(pc.K, chunk);
    if (S <= 1) {
        pc.k_chunk = pc.K, pc.split_stride = 0;
        mm_dispatch(c, pipe, u, &pc, gx, gy, 1);
        return;
    }
    size_t part = (size_t)S * pc.n * pc.M * sizeof(float);
    int rc = ensure_scratch(c, part);
    if (rc) {
        vk_fail(c, rc);
        return;
    }
    mm_push sp = pc;
    sp.has_bias = 0, sp.o_off = 0, sp.o_stride = pc.M, sp.k_chunk = chunk, sp.split_stride = pc.n * pc.M;
    vk_use us[4] = {u[0], u[1], u[2], {c->scratch, 0, part, 1}};
    mm_dispatch(c, pipe, us, &sp, gx, gy, S);
    struct { uint32_t n, M, S, b_off, has_bias, o_off, o_stride; } rp = {pc.n, pc.M, S, pc.b_off, pc.has_bias,
                                                                         pc.o_off, pc.o_stride};
    vk_use ur[3] = {{c->scratch, 0, part, 0}, bias ? use_of(bias, 0) : u[1], use_of(out, 1)};
    vk_dispatch(c, VKP_MATMUL_REDUCE, ur, 3, &rp, sizeof rp, cdiv(pc.M, 256), pc.n, 1);
}

/* The tensor-core GEMMs (f16/bf16 weights; f32 weights keep the f32 kernels: f16 would round them).
 * matmul_cd.comp where its shapes hold: 16, 32 or 64 tokens per tile by the batch. Else matmul_coop.comp:
 * 128-token tiles for prefill, 64 for batched decode (twice the workgroups). */
static void matmul_tc(vk_ctx *c, uint32_t dt, mm_push pc, const vk_use *u, const be_tensor *bias,
                      const be_tensor *out) {
    if (pc.n <= c->coop_direct_max_n && pc.K % 16 == 0 && pc.M % 16 == 0) {
        uint32_t lg = pc.n <= 16 ? 0 : pc.n <= 32 ? 1 : 2;
        coop_grid(c, VKP_MATMUL_CD + 3 * ((int)dt - 1) + (int)lg, 16u << lg, 64, pc, u, bias, out);
    } else if (pc.n > 64 && c->coop_tokens == 128) {
        mm_dispatch(c, VKP_MATMUL_COOP_L + (int)dt, u, &pc, cdiv(pc.M, 128), cdiv(pc.n, 128), 1);
    } else {
        coop_grid(c, VKP_MATMUL_COOP + (int)dt, 64, 32, pc, u, bias, out);
    }
}

/* MXFP4 weights (gpt-oss's experts): the weight's offset and stride travel in bytes (17-byte blocks need not
 * start on a word). The shaders decode them to f32 and always run f32 FMAs, never the f16 tensor-core GEMM:
 * a code times its power-of-two scale is exact in f32, not always in f16 (the scales span 2^-127 .. 2^127).
 * x takes 16-byte loads where its offset and stride allow. */
static void matmul_mxfp4(vk_ctx *c, const be_tensor *x, const be_tensor *w, const be_tensor *bias, const be_tensor *out) {
    if (w->cols % BE_MXFP4_BLOCK || w->stride % BE_MXFP4_BLOCK || x->cols != w->cols) {
        vk_fail(c, vc_errf(VC_EINVAL, "vulkan: an MXFP4 weight of %lld columns (stride %lld) against x of %lld",
                           (long long)w->cols, (long long)w->stride, (long long)x->cols));
        return;
    }
    struct { uint32_t x_off, x_stride, w_off, w_stride, b_off, has_bias, o_off, o_stride, n, K, M, xvec; } pc = {
        eoff(c, x), (uint32_t)x->stride, (uint32_t)(w->offset % c->align), (uint32_t)be_dtype_bytes(BE_MXFP4, w->stride),
        bias ? eoff(c, bias) : 0, bias != NULL, eoff(c, out), (uint32_t)out->stride, (uint32_t)x->rows,
        (uint32_t)x->cols, (uint32_t)w->rows, 0};
    pc.xvec = pc.x_off % 4 == 0 && pc.x_stride % 4 == 0;
    vk_use u[4] = {use_of(x, 0), use_of(w, 0), bias ? use_of(bias, 0) : use_of(w, 0), use_of(out, 1)};
    if (x->rows > MATVEC_MAX_N) {
        vk_dispatch(c, VKP_MATMUL_MX, u, 4, &pc, sizeof pc, cdiv(w->rows, 128), cdiv(x->rows, 64), 1);
        return;
    }
    /* one row per subgroup, as many rows per workgroup as its 128 invocations hold subgroups */
    uint32_t rpw = c->subgroup_size >= 1 && c->subgroup_size <= 128 ? 128u / (uint32_t)c->subgroup_size : 1u;
    uint32_t groups = cdiv(w->rows, rpw), gx = groups < 65535 ? groups : 65535;
    uint32_t lg = x->rows <= 1 ? 0 : x->rows <= 2 ? 1 : x->rows <= 4 ? 2 : 3;
    vk_dispatch(c, VKP_MATVEC_MX + lg, u, 4, &pc, sizeof pc, gx, cdiv(groups, 65535), 1);
}

/* matvec_sg.comp's push constants: mm_push, then its fused forms' (the parts of stacked q/k/v; glu) */
typedef struct {
    mm_push mm;
    uint32_t e1, e2, o_off1, o_stride1, o_off2, o_stride2, b_off1, b_off2, glu;
    uint32_t nrm, nw_off, acc;
    float eps, nw_add;
} mv_push;

static uint32_t tokens_lg(int64_t n) { return n <= 1 ? 0 : n <= 2 ? 1 : n <= 4 ? 2 : 3; }

/* matvec_sg.comp for n <= 8 tokens over wrows weight rows (u: x, w, bias, the three parts' outputs, the norm's
 * weight): the K-split form (a workgroup per row pair, or
 * per glu output row) for weights of up to matvec_wide_rows rows (many workgroups for few rows), else two
 * weight rows per subgroup. */
static void matvec_sg(vk_ctx *c, uint32_t dt, const mv_push *pc, const vk_use *u, int64_t wrows) {
    uint32_t lg = tokens_lg(pc->mm.n), units = pc->glu ? pc->mm.M : cdiv(pc->mm.M, 2);
    if (wrows <= c->matvec_wide_rows) {
        uint32_t gx = units < 65535 ? units : 65535;
        vk_dispatch(c, VKP_MATVEC_SGW + 4 * dt + lg, u, 7, pc, sizeof *pc, gx, cdiv(units, 65535), 1);
    } else {
        uint32_t rpw = c->subgroup_size >= 1 && c->subgroup_size <= 128 ? 128u / (uint32_t)c->subgroup_size : 1u;
        uint32_t groups = cdiv(units, rpw), gx = groups < 65535 ? groups : 65535;
        vk_dispatch(c, VKP_MATVEC_SG + 4 * dt + lg, u, 7, pc, sizeof *pc, gx, cdiv(groups, 65535), 1);
    }
}

static void matmul_part(vk_ctx *c, const be_tensor *x, const be_tensor *w, const be_tensor *bias, const be_tensor *out) {
    if (w->dtype == BE_MXFP4) {
        matmul_mxfp4(c, x, w, bias, out);
        return;
    }
    mm_push pc = {eoff(c, x), (uint32_t)x->stride, eoff(c, w), (uint32_t)w->stride, bias ? eoff(c, bias) : 0,
                  bias != NULL, eoff(c, out), (uint32_t)out->stride, (uint32_t)x->rows, (uint32_t)x->cols,
                  (uint32_t)w->rows, (uint32_t)x->cols, 0};
    /* without a bias, the weight itself fills the unused binding (never read) */
    vk_use u[4] = {use_of(x, 0), use_of(w, 0), bias ? use_of(bias, 0) : use_of(w, 0), use_of(out, 1)};
    uint32_t dt = dt_index(w->dtype), E = w->dtype == BE_F32 ? 4 : 8;
    int vec_ok = pc.K % E == 0 && pc.w_off % E == 0 && pc.w_stride % E == 0 && pc.x_off % 4 == 0 &&
                 pc.x_stride % 4 == 0;
    if (x->rows > MATVEC_MAX_N && x->rows <= c->matvec_passes_upto && vec_ok) {
        /* measurement (VLLMC_VULKAN_MATVEC_PASSES_UPTO): a small batch as matvec passes of 8 tokens each */
        for (int64_t r0 = 0; r0 < x->rows; r0 += MATVEC_MAX_N) {
            int64_t nr = x->rows - r0 < MATVEC_MAX_N ? x->rows - r0 : MATVEC_MAX_N;
            be_tensor xs = be_rows(x, r0, nr), os = be_rows(out, r0, nr);
            matmul_part(c, &xs, w, bias, &os);
        }
        return;
    }
    if (x->rows <= MATVEC_MAX_N && vec_ok) {
        /* one part: its output fills the others' bindings, x the norm's (neither is read) */
        mv_push mp = {.mm = pc, .e1 = pc.M, .e2 = pc.M};
        vk_use u7[7] = {u[0], u[1], u[2], u[3], u[3], u[3], u[0]};
        matvec_sg(c, dt, &mp, u7, w->rows);
    } else if (x->rows > MATVEC_MAX_N && c->coopmat && vec_ok && w->dtype != BE_F32) {
        matmul_tc(c, dt, pc, u, bias, out);
    } else if (x->rows > MATVEC_MAX_N && vec_ok) {
        vk_dispatch(c, VKP_MATMUL_V + dt, u, 4, &pc, sizeof pc, cdiv(w->rows, 128), cdiv(x->rows, 64), 1);
    } else if (x->rows <= MATVEC_MAX_N) {
        uint32_t groups = cdiv(w->rows, 4), gx = groups < 65535 ? groups : 65535;
        uint32_t lg = tokens_lg(x->rows); /* tokens per workgroup: 1 << lg */
        vk_dispatch(c, VKP_MATVEC + 4 * dt + lg, u, 4, &pc, sizeof pc, gx, cdiv(groups, 65535), 1);
    } else {
        vk_dispatch(c, VKP_MATMUL + dt, u, 4, &pc, sizeof pc, cdiv(w->rows, 64), cdiv(x->rows, 64), 1);
    }
}

/* A weight larger than one binding (a big LM head in f32 on a 128 MiB device)
 * runs as several matmuls over row ranges, each writing its output columns. */
void vk_op_matmul(void *ctx, const be_tensor *x, const be_tensor *w, const be_tensor *bias, const be_tensor *out) {
    vk_ctx *c = ctx;
    if (x->rows <= 0 || w->rows <= 0) return;
    for (int64_t r0 = 0, nr; r0 < w->rows; r0 += nr) {
        if (!next_rows(c, w, r0, &nr, "weight")) return;
        be_tensor wp = be_rows(w, r0, nr), op = be_cols(out, r0, nr), bp;
        if (bias) bp = be_cols(bias, r0, nr);
        matmul_part(c, x, &wp, bias ? &bp : NULL, &op);
    }
}

void vk_op_rope(void *ctx, const be_tensor *x, int head_dim, int rot_dim, const be_tensor *pos, const be_tensor *inv_freq,
                float mscale) {
    vk_ctx *c = ctx;
    uint32_t heads = (uint32_t)(x->cols / head_dim);
    struct { uint32_t x_off, x_stride, p_off, f_off, n, heads, head_dim, rot_dim; float mscale; } pc = {
        eoff(c, x), (uint32_t)x->stride, eoff(c, pos), eoff(c, inv_freq), (uint32_t)x->rows, heads,
        (uint32_t)head_dim, (uint32_t)rot_dim, mscale};
    vk_use u[3] = {use_of(x, 1), use_of(pos, 0), use_of(inv_freq, 0)};
    vk_dispatch(c, VKP_ROPE, u, 3, &pc, sizeof pc, cdiv((int64_t)heads * (rot_dim / 2), 64), (uint32_t)x->rows, 1);
}

void vk_op_kv_write(void *ctx, const be_tensor *k, const be_tensor *slot, const be_tensor *cache) {
    vk_ctx *c = ctx;
    int half = cache->dtype != BE_F32;
    struct { uint32_t k_off, k_stride, s_off, c_off, c_stride, n, C, rows; } pc = {
        eoff(c, k), (uint32_t)k->stride, eoff(c, slot), eoff(c, cache), (uint32_t)cache->stride, (uint32_t)k->rows,
        (uint32_t)k->cols, (uint32_t)cache->rows};
    if (half && ((pc.c_off | pc.c_stride | pc.C) & 1u)) {
        vk_fail(c, vc_errf(VC_EUNSUP, "vulkan: a 16-bit KV cache needs an even offset, stride and width (got %u, %u, %u)",
                           pc.c_off, pc.c_stride, pc.C));
        return;
    }
    vk_use u[3] = {use_of(k, 0), use_of(slot, 0), use_of(cache, 1)};
    uint32_t per_row = half ? (uint32_t)k->cols / 2 : (uint32_t)k->cols;
    vk_dispatch(c, VKP_KV_WRITE + dt_index(cache->dtype), u, 3, &pc, sizeof pc, cdiv(per_row, 64), (uint32_t)k->rows, 1);
}

/* Splits of the context per (row, KV head): enough workgroups to fill the GPU
 * (about two per compute unit, 264 on an H100) when there are few rows (decode),
 * one when prefill rows already fill it; at least 128 keys per split. */
static uint32_t attn_splits(const vk_ctx *c, int64_t rows, uint32_t heads_blocks, int max_seq_len,
                            uint32_t *split_keys) {
    if (c->attn_split > 0 && rows > 8) { /* forced splits (tests) are for decode-sized batches */
        *split_keys = (uint32_t)(max_seq_len > 0 ? max_seq_len : 1);
        return 1;
    }
    if (c->attn_split > 0) { /* forced (tests): splits of that many keys */
        *split_keys = (uint32_t)c->attn_split;
        uint32_t s = (uint32_t)((max_seq_len > 0 ? max_seq_len : 1) + c->attn_split - 1) / (uint32_t)c->attn_split;
        return s > 64 ? (*split_keys = (uint32_t)((max_seq_len + 63) / 64), 64) : s;
    }
    uint32_t chunks = (uint32_t)((max_seq_len > 0 ? max_seq_len : 1) + 127) / 128;
    uint64_t wgs = (uint64_t)rows * heads_blocks;
    uint32_t s = wgs >= 264 ? 1 : (uint32_t)((264 + wgs - 1) / wgs);
    if (s > chunks) s = chunks;
    s = (s + (uint32_t)c->attn_groups - 1) / (uint32_t)c->attn_groups; /* a workgroup's groups take a chunk each */
    if (s > 64) s = 64;
    if (s < 1) s = 1;
    *split_keys = 128 * ((chunks + s - 1) / s);
    return (uint32_t)((chunks * 128 + *split_keys - 1) / *split_keys);
}

static int ensure_scratch(vk_ctx *c, size_t bytes) {
    if (c->scratch && c->scratch->size >= bytes) return VC_OK;
    size_t sz = 1 << 20;
    while (sz < bytes) sz *= 2;
    /* growing frees the old buffer, which waits for the recorded work: rare (first long context) */
    if (c->scratch) vk_buffer_free(c, c->scratch);
    c->scratch = NULL;
    return vk_buffer_alloc(c, sz, &c->scratch);
}

/* The merge of S > 1 splits (attn_combine.comp), where gpt-oss's sinks join each row's softmax once. */
static void attn_combine(vk_ctx *c, const be_tensor *q, const be_attn_meta *meta, const be_attn_shape *shape,
                         uint32_t S, size_t part_bytes, uint32_t skip_q, const be_tensor *out) {
    const be_tensor *sk = shape->sinks;
    struct { uint32_t o_off, o_stride, H, HD, n_split, has_sinks, sk_off, qs_off, n_seqs, skip_q; } cc = {
        eoff(c, out), (uint32_t)out->stride, (uint32_t)shape->n_heads, (uint32_t)shape->head_dim, S, sk != NULL,
        sk ? eoff(c, sk) : 0, eoff(c, &meta->q_start), (uint32_t)meta->n_seqs, skip_q};
    /* without sinks q fills their binding (never read) */
    vk_use u2[4] = {{c->scratch, 0, part_bytes, 0}, use_of(out, 1), sk ? use_of(sk, 0) : use_of(q, 0),
                    use_of(&meta->q_start, 0)};
    vk_dispatch(c, VKP_ATTN_COMBINE, u2, 4, &cc, sizeof cc, (uint32_t)shape->n_heads, (uint32_t)q->rows, 1);
}

/* attn_prefill.comp: blocks of BR prompt rows x GB query heads (32 query vectors) per workgroup and KV head,
 * for the sequences with at least c->attn_block_min query rows. Returns that minimum (what attention.comp
 * then skips), or 0 where the kernel does not apply (attention.comp runs every row). */
static uint32_t attn_block_min(const vk_ctx *c, const be_tensor *q, const be_tensor *k_cache,
                               const be_tensor *v_cache, const be_attn_meta *meta, const be_attn_shape *shape) {
    int HD = shape->head_dim;
    uint32_t G = (uint32_t)(shape->n_heads / shape->n_kv_heads), GB = G < 32 ? G : 32;
    if (c->attn_block_min <= 0 || q->rows <= meta->n_seqs || (HD != 64 && HD != 128) ||
        (k_cache->dtype != BE_F16 && k_cache->dtype != BE_BF16) || !c->subgroup_shuffle || c->subgroup_size < 8 ||
        c->subgroup_size > 128 || (c->subgroup_size & (c->subgroup_size - 1)) ||
        (eoff(c, k_cache) | eoff(c, v_cache) | (uint32_t)k_cache->stride) % 8 ||
        (uint64_t)q->rows > 65535ull * (32 / GB))
        return 0;
    return (uint32_t)c->attn_block_min;
}

static void attn_prefill(vk_ctx *c, const be_tensor *q, const be_tensor *k_cache, const be_tensor *v_cache,
                         const be_attn_meta *meta, const be_attn_shape *shape, uint32_t min_q, const be_tensor *out) {
    const be_tensor *sk = shape->sinks;
    uint32_t G = (uint32_t)(shape->n_heads / shape->n_kv_heads), GB = G < 32 ? G : 32, BR = 32 / GB;
    struct {
        uint32_t q_off, q_stride, k_off, v_off, c_stride, o_off, o_stride;
        uint32_t qs_off, sl_off, bt_off, bt_stride, n_seqs, block_size;
        uint32_t H, HKV, window, GB, BR, min_q, has_sinks, sk_off;
        float scale, softcap;
    } pc = {eoff(c, q), (uint32_t)q->stride, eoff(c, k_cache), eoff(c, v_cache), (uint32_t)k_cache->stride,
            eoff(c, out), (uint32_t)out->stride, eoff(c, &meta->q_start), eoff(c, &meta->seq_len),
            eoff(c, &meta->block_table), (uint32_t)meta->block_table.stride, (uint32_t)meta->n_seqs,
            (uint32_t)meta->block_size, (uint32_t)shape->n_heads, (uint32_t)shape->n_kv_heads,
            (uint32_t)(shape->sliding_window > 0 ? shape->sliding_window : 0), GB, BR, min_q, sk != NULL,
            sk ? eoff(c, sk) : 0, shape->scale, shape->softcap > 0 ? shape->softcap : 0.0f};
    /* without sinks q fills their binding (never read) */
    vk_use u[8] = {use_of(q, 0), use_of(k_cache, 0), use_of(v_cache, 0), use_of(out, 1), use_of(&meta->q_start, 0),
                   use_of(&meta->seq_len, 0), use_of(&meta->block_table, 0), sk ? use_of(sk, 0) : use_of(q, 0)};
    vk_pipe_id id = VKP_ATTN_PREFILL + 2 * (k_cache->dtype == BE_BF16) + (shape->head_dim == 128);
    vk_dispatch(c, id, u, 8, &pc, sizeof pc, (uint32_t)shape->n_kv_heads * ((G + GB - 1) / GB),
                (uint32_t)cdiv(q->rows, BR), 1);
}

void vk_op_attention(void *ctx, const be_tensor *q, const be_tensor *k_cache, const be_tensor *v_cache,
                     const be_attn_meta *meta, const be_attn_shape *shape, const be_tensor *out) {
    vk_ctx *c = ctx;
    const be_tensor *sk = shape->sinks;
    int HD = shape->head_dim;
    if (HD > 256 || HD % 4 || shape->n_kv_heads < 1 || shape->n_heads % shape->n_kv_heads ||
        k_cache->dtype != v_cache->dtype || k_cache->stride != v_cache->stride) {
        vk_fail(c, vc_errf(VC_EUNSUP, "vulkan: attention with head_dim %d, %d/%d heads is not supported", HD,
                           shape->n_heads, shape->n_kv_heads));
        return;
    }
    uint32_t G = (uint32_t)(shape->n_heads / shape->n_kv_heads), GB = 1024u / (uint32_t)HD;
    if (GB > 8) GB = 8;
    if (GB > G) GB = G;
    uint32_t nb = (G + GB - 1) / GB, split_keys;
    uint32_t S = attn_splits(c, q->rows, (uint32_t)shape->n_kv_heads * nb, meta->max_seq_len, &split_keys);
    struct {
        uint32_t q_off, q_stride, k_off, v_off, c_stride, o_off, o_stride;
        uint32_t qs_off, sl_off, bt_off, bt_stride, n_seqs, block_size;
        uint32_t H, HKV, HD, window, vec, GB, n_split, split_keys, vvec;
        float scale, softcap;
        uint32_t has_sinks, sk_off, skip_q, kstage;
    } pc = {eoff(c, q), (uint32_t)q->stride, eoff(c, k_cache), eoff(c, v_cache), (uint32_t)k_cache->stride,
            eoff(c, out), (uint32_t)out->stride, eoff(c, &meta->q_start), eoff(c, &meta->seq_len),
            eoff(c, &meta->block_table), (uint32_t)meta->block_table.stride, (uint32_t)meta->n_seqs,
            (uint32_t)meta->block_size, (uint32_t)shape->n_heads, (uint32_t)shape->n_kv_heads, (uint32_t)HD,
            (uint32_t)(shape->sliding_window > 0 ? shape->sliding_window : 0), 0, GB, S, split_keys, 0, shape->scale,
            shape->softcap > 0 ? shape->softcap : 0.0f, sk != NULL, sk ? eoff(c, sk) : 0, 0, 0};
    pc.skip_q = attn_block_min(c, q, k_cache, v_cache, meta, shape);
    uint32_t E = k_cache->dtype == BE_F32 ? 4 : 8; /* K rows read 16 bytes at a time where aligned */
    pc.vec = pc.k_off % E == 0 && pc.c_stride % E == 0 && pc.HD % E == 0;
    pc.vvec = pc.v_off % 4 == 0 && pc.c_stride % 4 == 0; /* V: 4 values per load */
    uint32_t DG = (uint32_t)HD / E; /* 16-byte pieces of a K row: staged through shared memory (1024 of them) */
    pc.kstage = c->attn_kstage && c->attn_groups == 1 && pc.vec && DG >= 1 && DG <= 1024 && (DG & (DG - 1)) == 0;
    size_t part_bytes = (size_t)q->rows * (size_t)shape->n_heads * S * (size_t)(HD + 2) * sizeof(float);
    int rc = S > 1 ? ensure_scratch(c, part_bytes) : VC_OK;
    if (rc) {
        vk_fail(c, rc);
        return;
    }
    /* with one split the scratch binding is unused: the output fills it; without sinks q fills theirs */
    vk_use part = S > 1 ? (vk_use){c->scratch, 0, part_bytes, 1} : use_of(out, 1);
    vk_use u[9] = {use_of(q, 0), use_of(k_cache, 0), use_of(v_cache, 0), use_of(out, 1),
                   use_of(&meta->q_start, 0), use_of(&meta->seq_len, 0), use_of(&meta->block_table, 0), part,
                   sk ? use_of(sk, 0) : use_of(q, 0)};
    vk_dispatch(c, VKP_ATTENTION + dt_index(k_cache->dtype), u, 9, &pc, sizeof pc, (uint32_t)shape->n_kv_heads * nb,
                (uint32_t)q->rows, S);
    if (S > 1) attn_combine(c, q, meta, shape, S, part_bytes, pc.skip_q, out);
    if (pc.skip_q) attn_prefill(c, q, k_cache, v_cache, meta, shape, pc.skip_q, out);
}

static void eltwise_s2(vk_ctx *c, vk_pipe_id id, const be_tensor *a, const be_tensor *b, float s, float s2,
                       const be_tensor *out) {
    struct { uint32_t a_off, a_stride, b_off, b_stride, o_off, o_stride, n, F; float s, s2; } pc = {
        eoff(c, a), (uint32_t)a->stride, eoff(c, b), (uint32_t)b->stride, eoff(c, out), (uint32_t)out->stride,
        (uint32_t)out->rows, (uint32_t)out->cols, s, s2};
    vk_use u[3] = {use_of(a, 0), use_of(b, 0), use_of(out, 1)};
    vk_dispatch(c, id, u, 3, &pc, sizeof pc, cdiv(out->cols, 256), (uint32_t)out->rows, 1);
}

static void eltwise_s(vk_ctx *c, vk_pipe_id id, const be_tensor *a, const be_tensor *b, float s, const be_tensor *out) {
    eltwise_s2(c, id, a, b, s, 0.0f, out);
}

/* gpt-oss's clamped SwiGLU: out's F columns from gu's 2F interleaved ones (gu also fills the unused binding) */
void vk_op_swiglu_clamp(void *ctx, const be_tensor *gu, float alpha, float limit, const be_tensor *out) {
    eltwise_s2(ctx, VKP_SWIGLU, gu, gu, alpha, limit, out);
}

static void eltwise(vk_ctx *c, vk_pipe_id id, const be_tensor *a, const be_tensor *b, const be_tensor *out) {
    eltwise_s(c, id, a, b, 0.0f, out);
}

void vk_op_gelu_tanh_mul(void *ctx, const be_tensor *gate, const be_tensor *up, const be_tensor *out) {
    eltwise(ctx, VKP_GELU_MUL, gate, up, out);
}

/* one-input ops: x also fills the second binding (never read) */
void vk_op_scale(void *ctx, const be_tensor *x, float s, const be_tensor *out) { eltwise_s(ctx, VKP_SCALE, x, x, s, out); }

void vk_op_softcap(void *ctx, const be_tensor *x, float cap, const be_tensor *out) {
    eltwise_s(ctx, VKP_SOFTCAP, x, x, cap, out);
}

/* argmax.comp: one workgroup per row for short rows; for long ones (a vocabulary of 128k: one workgroup
 * streamed 0.5 MB in 57 us on the H100) a workgroup per 8,192-element slice, then one per row over the
 * slices' (value, index) pairs in the scratch buffer. */
void vk_op_argmax(void *ctx, const be_tensor *x, const be_tensor *out) {
    vk_ctx *c = ctx;
    if (x->rows <= 0) return;
    if (x->rows > 65535) {
        vk_fail(c, vc_errf(VC_EINVAL, "vulkan: argmax of %lld rows (at most 65535)", (long long)x->rows));
        return;
    }
    struct { uint32_t x_off, x_stride, o_off, V, vec, stage, G; } pc = {eoff(c, x), (uint32_t)x->stride, eoff(c, out),
                                                                        (uint32_t)x->cols, 0, 0, 0};
    pc.vec = pc.x_off % 4 == 0 && pc.x_stride % 4 == 0;
    pc.G = (uint32_t)cdiv(x->cols, 8192);
    size_t part_bytes = (size_t)x->rows * pc.G * 2 * sizeof(float);
    if (pc.G < 4 || ensure_scratch(c, part_bytes)) { /* short rows, or no scratch: one pass */
        vk_use u[3] = {use_of(x, 0), use_of(out, 1), use_of(out, 1)};
        vk_dispatch(c, VKP_ARGMAX, u, 3, &pc, sizeof pc, (uint32_t)x->rows, 1, 1);
        return;
    }
    vk_use u1[3] = {use_of(x, 0), use_of(out, 1), {c->scratch, 0, part_bytes, 1}};
    pc.stage = 1;
    vk_dispatch(c, VKP_ARGMAX, u1, 3, &pc, sizeof pc, pc.G, (uint32_t)x->rows, 1);
    vk_use u2[3] = {use_of(x, 0), use_of(out, 1), {c->scratch, 0, part_bytes, 0}};
    pc.stage = 2;
    vk_dispatch(c, VKP_ARGMAX, u2, 3, &pc, sizeof pc, (uint32_t)x->rows, 1, 1);
}

/* topk.comp: a workgroup per 4,096-element slice of a row picks its k best into the scratch buffer, then
 * one per row the k best of its slices' (at most 4,096 candidates: a vocabulary of up to 262,144 at k = 64). */
void vk_op_topk(void *ctx, const be_tensor *x, int k, const be_tensor *ids, const be_tensor *vals) {
    vk_ctx *c = ctx;
    if (x->rows <= 0) return;
    uint32_t G = cdiv(x->cols, 4096);
    if (k < 1 || k > BE_TOPK_MAX || k > x->cols || (uint64_t)G * (uint32_t)k > 4096 || x->rows > 65535) {
        vk_fail(c, vc_errf(VC_EINVAL, "vulkan: topk of %d over %lld rows of %lld", k, (long long)x->rows,
                           (long long)x->cols));
        return;
    }
    struct { uint32_t x_off, x_stride, i_off, i_stride, v_off, v_stride, V, K, G, stage; } pc = {
        eoff(c, x), (uint32_t)x->stride, eoff(c, ids), (uint32_t)ids->stride, eoff(c, vals), (uint32_t)vals->stride,
        (uint32_t)x->cols, (uint32_t)k, G, 1};
    size_t part_bytes = (size_t)x->rows * G * (size_t)k * 2 * sizeof(float);
    int rc = ensure_scratch(c, part_bytes);
    if (rc) {
        vk_fail(c, rc);
        return;
    }
    vk_use u1[4] = {use_of(x, 0), use_of(ids, 1), use_of(vals, 1), {c->scratch, 0, part_bytes, 1}};
    vk_dispatch(c, VKP_TOPK, u1, 4, &pc, sizeof pc, G, (uint32_t)x->rows, 1);
    vk_use u2[4] = {use_of(x, 0), use_of(ids, 1), use_of(vals, 1), {c->scratch, 0, part_bytes, 0}};
    pc.stage = 2;
    vk_dispatch(c, VKP_TOPK, u2, 4, &pc, sizeof pc, (uint32_t)x->rows, 1, 1);
}

void vk_op_moe_combine(void *ctx, const be_tensor *y, const be_tensor *idx, const be_tensor *wt, const be_tensor *out) {
    vk_ctx *c = ctx;
    struct { uint32_t y_off, y_stride, y_rows, i_off, i_stride, w_off, w_stride, o_off, o_stride, n, D, k; } pc = {
        eoff(c, y), (uint32_t)y->stride, (uint32_t)y->rows, eoff(c, idx), (uint32_t)idx->stride, eoff(c, wt),
        (uint32_t)wt->stride, eoff(c, out), (uint32_t)out->stride, (uint32_t)out->rows, (uint32_t)out->cols,
        (uint32_t)idx->cols};
    vk_use u[4] = {use_of(y, 0), use_of(idx, 0), use_of(wt, 0), use_of(out, 1)};
    vk_dispatch(c, VKP_MOE_COMBINE, u, 4, &pc, sizeof pc, cdiv(out->cols, 64), (uint32_t)out->rows, 1);
}

void vk_op_silu_mul(void *ctx, const be_tensor *gate, const be_tensor *up, const be_tensor *out) {
    eltwise(ctx, VKP_SILU_MUL, gate, up, out);
}

void vk_op_add(void *ctx, const be_tensor *a, const be_tensor *b, const be_tensor *out) { eltwise(ctx, VKP_ADD, a, b, out); }

/* The byte range [*lo, *hi) that t[0..n) cover; 0 unless all lie in one buffer. */
static int one_buffer(const be_tensor *const *t, int n, size_t *lo, size_t *hi) {
    *lo = SIZE_MAX, *hi = 0;
    for (int i = 0; i < n; i++) {
        if (!t[i] || t[i]->buf != t[0]->buf) return 0;
        size_t a = t[i]->offset, b = a + tbytes(t[i]);
        if (a < *lo) *lo = a;
        if (b > *hi) *hi = b;
    }
    return 1;
}

/* t's element offset in a binding made for a range that starts at byte lo */
static uint32_t eoff_in(const vk_ctx *c, size_t lo, const be_tensor *t) {
    return (uint32_t)((t->offset - (lo - lo % c->align)) / be_dtype_size(t->dtype));
}

/* w[0..nw) as one [sum of rows, K] view where each starts right after the one before in one buffer (the
 * model's layout of q/k/v and gate/up on a copying backend); 0 where they do not. */
static int stacked(const be_tensor *const *w, int nw, be_tensor *all) {
    *all = *w[0];
    for (int i = 1; i < nw; i++) {
        const be_tensor *a = w[i - 1], *b = w[i];
        if (b->buf != a->buf || b->dtype != a->dtype || b->cols != a->cols || b->stride != a->stride ||
            b->offset != a->offset + be_dtype_bytes(a->dtype, a->rows * a->stride))
            return 0;
        all->rows += b->rows;
    }
    return all->dtype != BE_MXFP4;
}

/* The most rows of w[0..nw): the fused forms pick matvec_sg's K-split form as each part alone would. */
static int64_t max_rows(const be_tensor *const *w, int nw) {
    int64_t m = 0;
    for (int i = 0; i < nw; i++) m = w[i]->rows > m ? w[i]->rows : m;
    return m;
}

/* A decode-sized x against stacked weights, in one matvec_sg.comp dispatch with 16-byte loads? */
static int fusable(vk_ctx *c, const be_tensor *x, const be_tensor *all) {
    uint32_t E = all->dtype == BE_F32 ? 4 : 8;
    return !c->no_fuse && x->rows >= 1 && x->rows <= MATVEC_MAX_N && all->cols == x->cols && x->cols % E == 0 &&
           eoff(c, all) % E == 0 && all->stride % E == 0 && eoff(c, x) % 4 == 0 && x->stride % 4 == 0 &&
           rows_fitting(c, all, 0) >= all->rows;
}

/* A decode step's be_mm in one matvec_sg.comp dispatch: q/k/v or gate/up (and their activation) with the
 * norm folded in where the weights are stacked, o_proj / down_proj added into the residual; 0 (the
 * decomposition) for anything else. */
int vk_op_matmul_fused(void *ctx, const be_mm *op) {
    vk_ctx *c = ctx;
    const be_tensor *x = op->x, *nw = op->norm_w;
    be_tensor all;
    size_t blo = 0, bhi = 0;
    int nb = 0;
    for (int i = 0; i < op->nw; i++) nb += op->bias[i] != NULL;
    if (op->nw < 1 || op->nw > 3 || !stacked(op->w, op->nw, &all) || !fusable(c, x, &all) ||
        (nb && (nb != op->nw || !one_buffer(op->bias, op->nw, &blo, &bhi) || bhi - blo + c->align > c->max_range)) ||
        (op->act != BE_ACT_NONE && (op->nw != 2 || nb || op->w[0]->rows != op->w[1]->rows)) ||
        (op->accumulate && (op->nw != 1 || op->act != BE_ACT_NONE)) ||
        (nw && (nw->cols != x->cols || eoff(c, nw) % 4 != 0)))
        return 0;
    const be_tensor *const *out = op->out;
    int glu = op->act != BE_ACT_NONE, last = glu ? 0 : op->nw - 1;
    mv_push pc = {.mm = {eoff(c, x), (uint32_t)x->stride, eoff(c, &all), (uint32_t)all.stride,
                         nb ? eoff_in(c, blo, op->bias[0]) : 0, nb > 0, eoff(c, out[0]), (uint32_t)out[0]->stride,
                         (uint32_t)x->rows, (uint32_t)x->cols, glu ? (uint32_t)op->w[0]->rows : (uint32_t)all.rows, 0, 0},
                  .glu = op->act == BE_ACT_GELU_TANH ? 2u : glu ? 1u : 0u, .nrm = nw != NULL,
                  .nw_off = nw ? eoff(c, nw) : 0, .acc = op->accumulate != 0, .eps = op->eps, .nw_add = op->w_offset};
    pc.e1 = pc.e2 = pc.mm.M;
    if (!glu && op->nw >= 2) {
        pc.e1 = (uint32_t)op->w[0]->rows;
        pc.e2 = op->nw == 3 ? pc.e1 + (uint32_t)op->w[1]->rows : (uint32_t)all.rows;
        pc.o_off1 = eoff(c, out[1]), pc.o_stride1 = (uint32_t)out[1]->stride;
        pc.b_off1 = nb ? eoff_in(c, blo, op->bias[1]) : 0;
        pc.o_off2 = eoff(c, out[last]), pc.o_stride2 = (uint32_t)out[last]->stride;
        pc.b_off2 = nb ? eoff_in(c, blo, op->bias[last]) : 0;
    }
    /* without biases the weights fill their binding, without a norm x fills its (never read) */
    vk_use u[7] = {use_of(x, 0), use_of(&all, 0), nb ? (vk_use){op->bias[0]->buf, blo, bhi - blo, 0} : use_of(&all, 0),
                   use_of(out[0], 1), use_of(out[glu ? 0 : op->nw > 1 ? 1 : 0], 1), use_of(out[last], 1),
                   nw ? use_of(nw, 0) : use_of(x, 0)};
    matvec_sg(c, dt_index(all.dtype), &pc, u, max_rows(op->w, op->nw));
    return 1;
}

/* q/k/v (or gate/up) of a prompt on the tensor cores: one matmul_coop.comp GEMM over the stacked weights
 * (without biases), each output from its own row range (k and v alone are grids of 8 x 4 workgroups at
 * pp512 on 8B, a quarter of the GPU). 0 where the shapes do not allow it. */
static int stacked_gemm(vk_ctx *c, const be_tensor *x, int nw, const be_tensor *const *w,
                        const be_tensor *const *bias, const be_tensor *const *out) {
    be_tensor all;
    if (nw < 2 || nw > 3 || !c->coopmat || !c->stacked_gemm || x->rows <= 64 || c->coop_tokens != 128 ||
        !stacked(w, nw, &all) || (all.dtype != BE_F16 && all.dtype != BE_BF16) || rows_fitting(c, &all, 0) < all.rows)
        return 0;
    for (int i = 0; i < nw; i++)
        if (bias[i] || out[i]->rows != x->rows || out[i]->cols != w[i]->rows) return 0;
    mm_push pc = {eoff(c, x), (uint32_t)x->stride, eoff(c, &all), (uint32_t)all.stride, 0, 0, eoff(c, out[0]),
                  (uint32_t)out[0]->stride, (uint32_t)x->rows, (uint32_t)x->cols, (uint32_t)all.rows, (uint32_t)x->cols, 0};
    if (pc.K % 8 || pc.w_off % 8 || pc.w_stride % 8 || pc.x_off % 4 || pc.x_stride % 4) return 0;
    int last = nw - 1;
    coop_push cp = {pc, (uint32_t)w[0]->rows, nw == 3 ? (uint32_t)(w[0]->rows + w[1]->rows) : pc.M,
                    eoff(c, out[1]), (uint32_t)out[1]->stride, eoff(c, out[last]), (uint32_t)out[last]->stride};
    vk_use u[6] = {use_of(x, 0), use_of(&all, 0), use_of(&all, 0), use_of(out[0], 1), use_of(out[1], 1),
                   use_of(out[last], 1)};
    vk_dispatch(c, VKP_MATMUL_COOP_L + (int)dt_index(all.dtype), u, 6, &cp, sizeof cp, cdiv(pc.M, 128),
                cdiv(pc.n, 128), 1);
    return 1;
}

/* q/k/v (or gate/up) of a decode step: matmul_fused's one dispatch where the weights are stacked and the
 * biases are all absent or share one buffer; of a prompt, one tensor-core GEMM where they are stacked; else
 * one matmul each. */
void vk_op_matmul_multi(void *ctx, const be_tensor *x, int nw, const be_tensor *const *w,
                        const be_tensor *const *bias, const be_tensor *const *out) {
    be_mm op = {.x = x, .nw = nw};
    for (int i = 0; i < nw && i < 3; i++) op.w[i] = w[i], op.bias[i] = bias[i], op.out[i] = out[i];
    if (nw >= 2 && nw <= 3 && vk_op_matmul_fused(ctx, &op)) return;
    if (stacked_gemm(ctx, x, nw, w, bias, out)) return;
    for (int i = 0; i < nw; i++) vk_op_matmul(ctx, x, w[i], bias[i], out[i]);
}

/* LoRA for few rows (decode, VK_LORA_MAX_ROWS: be_lora_shrink/expand run matmuls per segment above), a
 * dispatch per half for every adapter of the batch: each row finds its slot in row_slot on the device, so
 * the segments (and d) are not needed here. */
void vk_op_lora_shrink(void *ctx, const be_tensor *x, const be_tensor *a, int n_seg, const be_lora_seg *seg,
                       const be_tensor *row_slot, const be_tensor *t) {
    vk_ctx *c = ctx;
    (void)n_seg, (void)seg;
    uint32_t n = (uint32_t)x->rows, R = (uint32_t)t->cols, dt = dt_index(a->dtype);
    uint32_t E = a->dtype == BE_F32 ? 4 : 8;
    if (n == 0) return;
    struct { uint32_t x_off, x_stride, a_off, a_stride, s_off, t_off, t_stride, K, R, n, vec; } ps = {
        eoff(c, x), (uint32_t)x->stride, eoff(c, a), (uint32_t)a->stride, eoff(c, row_slot), eoff(c, t),
        (uint32_t)t->stride, (uint32_t)x->cols, R, n, 0};
    /* 16-byte loads of x and a where every row starts on one */
    ps.vec = ((ps.x_off | ps.x_stride) % 4 == 0) && ((ps.a_off | ps.a_stride | ps.K) % E == 0);
    vk_use us[4] = {use_of(x, 0), use_of(a, 0), use_of(row_slot, 0), use_of(t, 1)};
    vk_dispatch(c, VKP_LORA_SHRINK + dt, us, 4, &ps, sizeof ps, n, cdiv(R, 8), 1);
}

void vk_op_lora_expand(void *ctx, const be_tensor *t, const be_tensor *b, int n_seg, const be_lora_seg *seg,
                       const be_tensor *row_slot, const be_tensor *d, const be_tensor *out) {
    vk_ctx *c = ctx;
    (void)n_seg, (void)seg, (void)d;
    uint32_t n = (uint32_t)t->rows, R = (uint32_t)t->cols, M = (uint32_t)out->cols, dt = dt_index(b->dtype);
    uint32_t E = b->dtype == BE_F32 ? 4 : 8;
    if (n == 0) return;
    struct { uint32_t t_off, t_stride, b_off, b_stride, s_off, o_off, o_stride, M, R, n, vec; } pe = {
        eoff(c, t), (uint32_t)t->stride, eoff(c, b), (uint32_t)b->stride, eoff(c, row_slot), eoff(c, out),
        (uint32_t)out->stride, M, R, n, 0};
    pe.vec = (pe.b_off | pe.b_stride | pe.R) % E == 0;
    vk_use ue[4] = {use_of(t, 0), use_of(b, 0), use_of(row_slot, 0), use_of(out, 1)};
    vk_dispatch(c, VKP_LORA_EXPAND + dt, ue, 4, &pe, sizeof pe, cdiv(M, 256), n < 65535 ? n : 65535, cdiv(n, 65535));
}

/* Routing on the device (issue 12): one workgroup per token (moe_topk.comp). */
void vk_op_moe_topk(void *ctx, const be_tensor *logits, int k, int flags, const be_tensor *gate, const be_tensor *ids,
                    const be_tensor *wt) {
    vk_ctx *c = ctx;
    if (logits->rows <= 0) return;
    if (logits->cols > BE_MOE_MAX_EXPERTS || k < 1 || k > BE_MOE_MAX_K || k > logits->cols) {
        vk_fail(c, vc_errf(VC_EINVAL, "vulkan: moe_topk of %d among %lld experts", k, (long long)logits->cols));
        return;
    }
    struct { uint32_t l_off, l_stride, g_off, g_stride, has_gate, i_off, i_stride, w_off, w_stride, n, E, k, flags; } pc = {
        eoff(c, logits), (uint32_t)logits->stride, gate ? eoff(c, gate) : 0, gate ? (uint32_t)gate->stride : 0,
        gate != NULL, eoff(c, ids), (uint32_t)ids->stride, eoff(c, wt), (uint32_t)wt->stride, (uint32_t)logits->rows,
        (uint32_t)logits->cols, (uint32_t)k, (uint32_t)flags};
    /* without a gate the logits fill its binding (never read) */
    vk_use u[4] = {use_of(logits, 0), gate ? use_of(gate, 0) : use_of(logits, 0), use_of(ids, 1), use_of(wt, 1)};
    vk_dispatch(c, VKP_MOE_TOPK, u, 4, &pc, sizeof pc, (uint32_t)logits->rows, 1, 1);
}

/* Experts [e0, e0 + n) of w that one dispatch can take: one buffer, one shape, equal byte steps, all in
 * one binding. *step gets the step in bytes (0 for a single expert). */
static int expert_run(const vk_ctx *c, const be_tensor *w, int E, int e0, uint64_t *step) {
    const be_tensor *a = &w[e0];
    uint64_t one = tbytes(a), start = a->offset % c->align;
    uint64_t range = c->split_range && c->split_range < c->max_range ? c->split_range : c->max_range;
    *step = 0;
    if (e0 + 1 >= E) return 1;
    const be_tensor *b = &w[e0 + 1];
    if (b->buf != a->buf || b->offset <= a->offset) return 1;
    uint64_t st = b->offset - a->offset, unit = a->dtype == BE_MXFP4 ? 1 : be_dtype_size(a->dtype);
    if (st % unit) return 1;
    int n = 1;
    for (; e0 + n < E; n++) {
        const be_tensor *e = &w[e0 + n];
        if (e->buf != a->buf || e->offset != a->offset + (uint64_t)n * st || e->dtype != a->dtype ||
            e->rows != a->rows || e->cols != a->cols || e->stride != a->stride || start + (uint64_t)n * st + one > range)
            break;
    }
    *step = n > 1 ? st : 0;
    return n;
}

/* moe_matvec.comp, one dispatch per run of experts that share a binding (one for the stacked weights of
 * the fused layout, gpt-oss and packed copies; more for per-expert tensors imported from a file). The nw
 * weight sets' dispatches read x and ids and write apart: back to back, no barrier between them. */
static void moe_matmul_ids_one(vk_ctx *c, const be_tensor *x, int E, const be_tensor *w, const be_tensor *bias,
                               const be_tensor *ids, const be_tensor *out) {
    int64_t n = ids->rows, k = ids->cols, A = n * k;
    if (A <= 0 || E <= 0) return;
    int mx = w[0].dtype == BE_MXFP4;
    if (A > BE_MOE_MAX_PAIRS || (x->rows != n && x->rows != A) || w[0].cols != x->cols || w[0].rows != out->cols ||
        (mx && (x->cols % BE_MXFP4_BLOCK || w[0].stride % BE_MXFP4_BLOCK))) {
        vk_fail(c, vc_errf(VC_EINVAL, "vulkan: moe_matmul_ids of %lld pairs, x [%lld, %lld], experts [%lld, %lld]",
                           (long long)A, (long long)x->rows, (long long)x->cols, (long long)w[0].rows,
                           (long long)w[0].cols));
        return;
    }
    uint32_t rpw = c->subgroup_size >= 1 && c->subgroup_size <= 128 ? 128u / (uint32_t)c->subgroup_size : 1u;
    for (int e0 = 0, ne; e0 < E; e0 += ne) {
        uint64_t step;
        ne = expert_run(c, w, E, e0, &step);
        const be_tensor *a = &w[e0];
        uint64_t bytes = (uint64_t)(ne - 1) * step + tbytes(a);
        if (a->offset % c->align + bytes > c->max_range) {
            vk_fail(c, vc_errf(VC_EUNSUP, "vulkan: %s: an expert's weight exceeds maxStorageBufferRange", c->props.deviceName));
            return;
        }
        uint64_t unit = mx ? 1 : be_dtype_size(a->dtype);
        struct {
            uint32_t x_off, x_stride, x_div, w_off, w_estride, w_stride, b_off, b_stride, has_bias, i_off, i_stride, k, A;
            uint32_t o_off, o_stride, K, M, e0, ne, vec;
        } pc = {eoff(c, x), (uint32_t)x->stride, x->rows == A ? 1u : (uint32_t)k,
                mx ? (uint32_t)(a->offset % c->align) : eoff(c, a), (uint32_t)(step / unit),
                (uint32_t)(mx ? be_dtype_bytes(BE_MXFP4, a->stride) : (size_t)a->stride), bias ? eoff(c, bias) : 0,
                bias ? (uint32_t)bias->stride : 0, bias != NULL, eoff(c, ids), (uint32_t)ids->stride, (uint32_t)k,
                (uint32_t)A, eoff(c, out), (uint32_t)out->stride, (uint32_t)x->cols, (uint32_t)out->cols, (uint32_t)e0,
                (uint32_t)ne, 0};
        uint32_t el = a->dtype == BE_F32 ? 4 : 8;
        int xv = pc.x_off % 4 == 0 && pc.x_stride % 4 == 0;
        pc.vec = mx ? (uint32_t)xv : (uint32_t)(xv && (pc.w_off | pc.w_estride | pc.w_stride | pc.K) % el == 0);
        vk_use wu = {a->buf, a->offset, bytes, 0};
        /* without a bias the weights fill its binding (never read) */
        vk_use u[5] = {use_of(x, 0), wu, bias ? use_of(bias, 0) : wu, use_of(ids, 0), use_of(out, 1)};
        vk_pipe_id pid = VKP_MOE_MATVEC + (mx ? 3u : dt_index(a->dtype));
        vk_dispatch(c, pid, u, 5, &pc, sizeof pc, cdiv(out->cols, rpw), (uint32_t)A, 1);
    }
}

void vk_op_moe_matmul_ids(void *ctx, const be_tensor *x, int E, int nw, const be_tensor *const *w,
                          const be_tensor *const *bias, const be_tensor *ids, const be_tensor *const *out) {
    for (int i = 0; i < nw; i++) moe_matmul_ids_one(ctx, x, E, w[i], bias ? bias[i] : NULL, ids, out[i]);
}
