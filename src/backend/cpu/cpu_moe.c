/* CPU ops of mixture-of-experts layers: the grouped matmul (every active expert's rows in one parallel
 * task, see cpu_matmul_grouped) and the weighted combine of each token's expert outputs. */
#include <math.h>
#include <string.h>

#include "act.h"
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
