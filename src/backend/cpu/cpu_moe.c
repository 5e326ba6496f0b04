/* CPU ops of mixture-of-experts layers: the grouped matmul (every active expert's rows in one parallel
 * task, see cpu_matmul_grouped), the weighted combine of each token's expert outputs, and the device-routing
 * pair (issue 12): moe_topk (be_moe_route_row per token, the host path's own code) and moe_matmul_ids, which
 * sorts the pairs by expert here and runs the same grouped matmul as the host path's sorted groups, so both
 * paths give the same bits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "base/err.h"
#include "cpu_internal.h"
#include "kernels.h"

void cpu_op_matmul_grouped(void *ctx, const be_tensor *x, int n_groups, const be_moe_group *groups, int nw,
                           const be_tensor *const *w, const be_tensor *const *out) {
    cpu_ctx *c = ctx;
    cpu_mm_group g[CPU_MM_MAX_GROUPS];
    int k = 0;
    const float *x0 = cpu_f32(x);
    for (int i = 0; i < n_groups; i++) {
        const be_moe_group *gr = &groups[i];
        if (gr->n <= 0) continue;
        for (int j = 0; j < nw; j++) {
            const be_tensor *wt = &w[j][gr->expert];
            float *y = cpu_f32(out[j]) + gr->row0 * out[j]->stride;
            g[k++] = (cpu_mm_group){x0 + gr->row0 * x->stride, x->stride, (int)gr->n,
                                    {cpu_ptr(wt), wt->dtype, wt->stride, (int)wt->rows, NULL, y, out[j]->stride}};
            if (k == CPU_MM_MAX_GROUPS) {
                cpu_matmul_grouped(c->pool, (int)x->cols, k, g);
                k = 0;
            }
        }
    }
    if (k) cpu_matmul_grouped(c->pool, (int)x->cols, k, g);
}

typedef struct {
    const be_tensor *gu, *out;
    float alpha, limit;
} swiglu_args;

/* gpt-oss's GptOssExperts activation, in f32 as transformers computes it from f32 inputs (act.h). */
static void swiglu_range(const void *vp, int64_t r0, int64_t r1) {
    const swiglu_args *a = vp;
    const act_ops *k = act_get();
    for (int64_t t = r0; t < r1; t++)
        k->swiglu_clamp(cpu_f32(a->out) + t * a->out->stride, cpu_f32(a->gu) + t * a->gu->stride, a->alpha, a->limit,
                        a->out->cols);
}

void cpu_op_swiglu_clamp(void *ctx, const be_tensor *gu, float alpha, float limit, const be_tensor *out) {
    swiglu_args a = {gu, out, alpha, limit};
    cpu_for_rows(ctx, out->rows, out->cols, swiglu_range, &a);
}

typedef struct {
    const be_tensor *y, *idx, *wt, *out;
} combine_args;

static void combine_range(const void *vp, int64_t r0, int64_t r1) {
    const combine_args *a = vp;
    int64_t k = a->idx->cols, D = a->out->cols;
    for (int64_t t = r0; t < r1; t++) {
        float *o = cpu_f32(a->out) + t * a->out->stride;
        const int32_t *id = cpu_i32(a->idx) + t * a->idx->stride;
        const float *w = cpu_f32(a->wt) + t * a->wt->stride;
        memset(o, 0, sizeof(float) * (size_t)D);
        for (int64_t j = 0; j < k; j++) {
            if (id[j] < 0 || id[j] >= a->y->rows) continue; /* validated by the runner; never read outside */
            cpu_axpy(o, w[j], cpu_f32(a->y) + (int64_t)id[j] * a->y->stride, BE_F32, (int)D);
        }
    }
}

void cpu_op_moe_combine(void *ctx, const be_tensor *y, const be_tensor *idx, const be_tensor *wt,
                        const be_tensor *out) {
    combine_args a = {y, idx, wt, out};
    cpu_for_rows(ctx, out->rows, out->cols * idx->cols, combine_range, &a);
}

typedef struct {
    const be_tensor *lg, *gate, *ids, *wt;
    int k, flags;
} topk_args;

static void topk_range(const void *vp, int64_t r0, int64_t r1) {
    const topk_args *a = vp;
    for (int64_t t = r0; t < r1; t++) {
        int32_t *sel = cpu_i32(a->ids) + t * a->ids->stride;
        float *w = cpu_f32(a->wt) + t * a->wt->stride;
        be_moe_route_row(cpu_f32(a->lg) + t * a->lg->stride, (int)a->lg->cols, a->k, a->flags, sel, w);
        if (a->gate) w[a->k] = 1.0f / (1.0f + expf(-cpu_f32(a->gate)[t * a->gate->stride]));
    }
}

void cpu_op_moe_topk(void *ctx, const be_tensor *logits, int k, int flags, const be_tensor *gate, const be_tensor *ids,
                     const be_tensor *wt) {
    cpu_ctx *c = ctx;
    if (logits->cols > BE_MOE_MAX_EXPERTS || k < 1 || k > logits->cols) {
        if (!c->error) c->error = VC_EINVAL;
        return;
    }
    topk_args a = {logits, gate, ids, wt, k, flags};
    cpu_for_rows(c, logits->rows, logits->cols * k, topk_range, &a);
}

/* Room for moe_matmul_ids' gathered rows (grown once to the largest call; a decode step allocates nothing
 * after its first). */
static float *moe_scratch(cpu_ctx *c, size_t floats) {
    if (floats > c->moe_cap) {
        float *p = realloc(c->moe_buf, sizeof(float) * floats);
        if (!p) return NULL;
        c->moe_buf = p, c->moe_cap = floats;
    }
    return c->moe_buf;
}

void cpu_op_moe_matmul_ids(void *ctx, const be_tensor *x, int E, int nw, const be_tensor *const *w,
                           const be_tensor *const *bias, const be_tensor *ids, const be_tensor *const *out) {
    cpu_ctx *c = ctx;
    int64_t n = ids->rows, k = ids->cols, A = n * k, K = x->cols, Msum = 0;
    if (A <= 0 || nw <= 0) return;
    if (A > BE_MOE_MAX_PAIRS || E > BE_MOE_MAX_EXPERTS || nw > BE_MOE_MAX_NW || (x->rows != n && x->rows != A)) {
        if (!c->error) c->error = VC_EINVAL;
        return;
    }
    for (int i = 0; i < nw; i++) Msum += out[i]->cols;
    /* the pairs in expert order, token order within an expert (the host path's stable counting sort) */
    int start[BE_MOE_MAX_EXPERTS + 1], pos[BE_MOE_MAX_EXPERTS];
    int16_t order[BE_MOE_MAX_PAIRS];
    int32_t pe[BE_MOE_MAX_PAIRS];
    memset(start, 0, sizeof(int) * (size_t)(E + 1));
    for (int64_t p = 0; p < A; p++) {
        pe[p] = cpu_i32(ids)[(p / k) * ids->stride + p % k];
        if (pe[p] >= 0 && pe[p] < E) start[pe[p] + 1]++;
    }
    for (int e = 0; e < E; e++) start[e + 1] += start[e];
    for (int e = 0; e < E; e++) pos[e] = start[e];
    for (int64_t p = 0; p < A; p++)
        if (pe[p] >= 0 && pe[p] < E) order[pos[pe[p]]++] = (int16_t)p;
    /* experts with more than one pair: their x rows gathered into the scratch ([multi, K]), their outputs
     * computed after them (each weight set's [multi, M_i] in turn) and copied back to their pairs' rows */
    int64_t multi = 0;
    for (int e = 0; e < E; e++)
        if (start[e + 1] - start[e] > 1) multi += start[e + 1] - start[e];
    float *xg = NULL;
    if (multi && !(xg = moe_scratch(c, (size_t)multi * (size_t)(K + Msum)))) {
        if (!c->error) c->error = VC_ENOMEM;
        return;
    }
    const float *x0 = cpu_f32(x);
    int64_t xdiv = x->rows == A ? 1 : k;
    cpu_mm_group g[CPU_MM_MAX_GROUPS];
    int ng = 0;
    int64_t r = 0;
    for (int e = 0; e < E; e++) {
        int cnt = start[e + 1] - start[e];
        if (!cnt) continue;
        if (cnt > 1)
            for (int q = 0; q < cnt; q++)
                memcpy(xg + (r + q) * K, x0 + (order[start[e] + q] / xdiv) * x->stride, sizeof(float) * (size_t)K);
        int64_t p = order[start[e]], yo = multi * K; /* weight set i's outputs follow those of the sets < i */
        for (int i = 0; i < nw; i++) {
            const be_tensor *wt = &w[i][e];
            int64_t M = out[i]->cols;
            const float *b = bias && bias[i] ? cpu_f32(bias[i]) + (int64_t)e * bias[i]->stride : NULL;
            cpu_mm_weight mw = {cpu_ptr(wt), wt->dtype, wt->stride, (int)M, b, NULL, 0};
            if (cnt == 1) {
                mw.y = cpu_f32(out[i]) + p * out[i]->stride, mw.ldy = out[i]->stride;
                g[ng++] = (cpu_mm_group){x0 + (p / xdiv) * x->stride, x->stride, 1, mw};
            } else {
                mw.y = xg + yo + r * M, mw.ldy = M;
                g[ng++] = (cpu_mm_group){xg + r * K, K, cnt, mw};
            }
            yo += multi * M;
            if (ng == CPU_MM_MAX_GROUPS) {
                cpu_matmul_grouped(c->pool, (int)K, ng, g);
                ng = 0;
            }
        }
        if (cnt > 1) r += cnt;
    }
    if (ng) cpu_matmul_grouped(c->pool, (int)K, ng, g);
    r = 0;
    for (int e = 0; e < E && multi; e++) { /* the gathered experts' rows back to their pairs */
        int cnt = start[e + 1] - start[e];
        if (cnt < 2) continue;
        int64_t yo = multi * K;
        for (int i = 0; i < nw; i++) {
            int64_t M = out[i]->cols;
            for (int q = 0; q < cnt; q++)
                memcpy(cpu_f32(out[i]) + order[start[e] + q] * out[i]->stride, xg + yo + (r + q) * M,
                       sizeof(float) * (size_t)M);
            yo += multi * M;
        }
        r += cnt;
    }
}
