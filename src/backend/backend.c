/* Backend-independent wrappers: defaults for optional entries. */
#include "backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

int be_buffer_wrap_host(be_backend *b, const void *host, size_t bytes, be_buffer **out) {
    if (b->buffer_wrap_host) return b->buffer_wrap_host(b->ctx, host, bytes, out);
    int rc = b->buffer_alloc(b->ctx, bytes, out);
    if (rc) return rc;
    rc = b->buffer_write(b->ctx, *out, 0, host, bytes);
    if (rc) {
        b->buffer_free(b->ctx, *out);
        *out = NULL;
    }
    return rc;
}

void be_matmul_multi(be_backend *b, const be_tensor *x, int nw, const be_tensor *const *w,
                     const be_tensor *const *bias, const be_tensor *const *out) {
    if (b->matmul_multi) {
        b->matmul_multi(b->ctx, x, nw, w, bias, out);
        return;
    }
    for (int i = 0; i < nw; i++) b->matmul(b->ctx, x, w[i], bias[i], out[i]);
}

void be_matmul_fused(be_backend *b, const be_mm *op) {
    if (b->matmul_fused && b->matmul_fused(b->ctx, op)) return;
    const be_tensor *x = op->x;
    if (op->norm_w) {
        b->rmsnorm(b->ctx, x, op->norm_w, op->eps, op->w_offset, op->h);
        x = op->h;
    }
    if (op->accumulate) {
        b->matmul(b->ctx, x, op->w[0], op->bias[0], op->tmp);
        b->add(b->ctx, op->out[0], op->tmp, op->out[0]);
        return;
    }
    be_matmul_multi(b, x, op->nw, op->w, op->bias, op->out);
    if (op->act == BE_ACT_SILU) b->silu_mul(b->ctx, op->out[0], op->out[1], op->out[0]);
    else if (op->act == BE_ACT_GELU_TANH) b->gelu_tanh_mul(b->ctx, op->out[0], op->out[1], op->out[0]);
}

void be_rope_kv_write(be_backend *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int head_dim,
                      int rot_dim, const be_tensor *pos, const be_tensor *inv_freq, float mscale,
                      const be_tensor *slot, const be_tensor *k_cache, const be_tensor *v_cache) {
    if (b->rope_kv_write) {
        b->rope_kv_write(b->ctx, q, k, v, head_dim, rot_dim, pos, inv_freq, mscale, slot, k_cache, v_cache);
        return;
    }
    b->rope(b->ctx, q, head_dim, rot_dim, pos, inv_freq, mscale);
    b->rope(b->ctx, k, head_dim, rot_dim, pos, inv_freq, mscale);
    b->kv_write(b->ctx, k, slot, k_cache);
    b->kv_write(b->ctx, v, slot, v_cache);
}

void be_add_rmsnorm(be_backend *b, const be_tensor *x, const be_tensor *h, const be_tensor *w, float eps,
                    float w_offset, const be_tensor *out) {
    if (b->add_rmsnorm) {
        b->add_rmsnorm(b->ctx, x, h, w, eps, w_offset, out);
        return;
    }
    b->add(b->ctx, x, h, x);
    b->rmsnorm(b->ctx, x, w, eps, w_offset, out);
}

void be_lora_shrink(be_backend *be, const be_tensor *x, const be_tensor *a, int n_seg, const be_lora_seg *seg,
                    const be_tensor *row_slot, const be_tensor *t) {
    if (be->lora_shrink && x->rows <= be->lora_max_rows) be->lora_shrink(be->ctx, x, a, n_seg, seg, row_slot, t);
}

void be_lora_expand(be_backend *be, const be_tensor *x, const be_tensor *a, const be_tensor *t, const be_tensor *b,
                    int n_seg, const be_lora_seg *seg, const be_tensor *row_slot, const be_tensor *d,
                    const be_tensor *out) {
    if (be->lora_expand && be->lora_shrink && x->rows <= be->lora_max_rows) {
        be->lora_expand(be->ctx, t, b, n_seg, seg, row_slot, d, out);
        return;
    }
    int64_t R = t->cols, M = out->cols;
    for (int s = 0; s < n_seg; s++) {
        be_tensor xs = be_rows(x, seg[s].row0, seg[s].n), os = be_rows(out, seg[s].row0, seg[s].n);
        be_tensor as = be_rows(a, seg[s].slot * R, R), bs = be_rows(b, seg[s].slot * M, M);
        be_tensor ts = be_rows(t, 0, seg[s].n), ds = be_rows(d, 0, seg[s].n);
        be->matmul(be->ctx, &xs, &as, NULL, &ts);
        be->matmul(be->ctx, &ts, &bs, NULL, &ds);
        be->add(be->ctx, &os, &ds, &os);
    }
}

void be_matmul_grouped(be_backend *b, const be_tensor *x, int n_groups, const be_moe_group *groups, int nw,
                       const be_tensor *const *w, const be_tensor *const *out) {
    if (b->matmul_grouped) {
        b->matmul_grouped(b->ctx, x, n_groups, groups, nw, w, out);
        return;
    }
    enum { MAXW = 8 };
    be_tensor xs, ws[MAXW], os[MAXW];
    const be_tensor *wp[MAXW], *op[MAXW], *bias[MAXW] = {0};
    if (nw > MAXW) nw = MAXW;
    for (int g = 0; g < n_groups; g++) {
        if (groups[g].n <= 0) continue;
        xs = be_rows(x, groups[g].row0, groups[g].n);
        for (int i = 0; i < nw; i++) {
            ws[i] = w[i][groups[g].expert];
            os[i] = be_rows(out[i], groups[g].row0, groups[g].n);
            wp[i] = &ws[i], op[i] = &os[i];
        }
        be_matmul_multi(b, &xs, nw, wp, bias, op);
    }
}

/* The k largest of p[0..E) into sel (descending; ties to the lower index: torch.topk does not promise an
 * order for equal values). */
static void top_k(const float *p, int E, int k, int32_t *sel) {
    unsigned char taken[BE_MOE_MAX_EXPERTS];
    memset(taken, 0, (size_t)E);
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < E; e++)
            if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
        taken[best] = 1;
        sel[j] = best;
    }
}

void be_moe_route_row(const float *p, int E, int k, int flags, int32_t *sel, float *w) {
    if (flags & BE_MOE_TOPK_FIRST) { /* gpt-oss: the top k of the logits, then their softmax */
        top_k(p, E, k, sel);
        float mx = p[sel[0]], sum = 0;
        for (int j = 0; j < k; j++) sum += (w[j] = expf(p[sel[j]] - mx));
        for (int j = 0; j < k; j++) w[j] /= sum;
        return;
    }
    float q[BE_MOE_MAX_EXPERTS], mx = p[0], sum = 0, tot = 0; /* softmax as torch: max subtracted */
    for (int e = 1; e < E; e++) mx = p[e] > mx ? p[e] : mx;
    for (int e = 0; e < E; e++) sum += (q[e] = expf(p[e] - mx));
    for (int e = 0; e < E; e++) q[e] /= sum;
    top_k(q, E, k, sel);
    for (int j = 0; j < k; j++) tot += (w[j] = q[sel[j]]);
    for (int j = 0; (flags & BE_MOE_NORM) && j < k; j++) w[j] /= tot;
}

double be_bandwidth_gbs(be_backend *b, size_t bytes) { return b->bandwidth_gbs ? b->bandwidth_gbs(b->ctx, bytes) : 0; }

double be_peak_gflops(be_backend *b) { return b->peak_gflops ? b->peak_gflops(b->ctx) : 0; }

void be_free(be_backend *b) {
    if (!b) return;
    if (b->free) b->free(b->ctx);
    free(b);
}
