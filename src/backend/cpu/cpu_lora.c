/* cpu_lora: LoRA's two halves (backend.h lora_shrink / lora_expand, Punica's SGMV) for every adapter
 * segment of a batch in one parallel task each: the segments' matmuls go to cpu_matmul_grouped (the
 * threads split all segments' weight rows by cost, AVX2 / AVX-512 / NEON kernels as for any matmul), so a
 * module costs two hand-offs and an add instead of three ops per segment. Same numerics as cpu_matmul per
 * segment (what be_lora_shrink / be_lora_expand run without the ops). */
#include "backend/cpu/cpu_internal.h"
#include "backend/cpu/kernels.h"

/* The segments' rows of x (f32) times the rows [slot * M, +M) of w into y's same rows, in one task per
 * CPU_MM_MAX_GROUPS segments. */
static void seg_matmul(cpu_ctx *c, const be_tensor *x, const be_tensor *w, int64_t M, int n_seg, const be_lora_seg *seg,
                       const be_tensor *y) {
    cpu_mm_group g[CPU_MM_MAX_GROUPS];
    int k = 0;
    size_t wsz = be_dtype_size(w->dtype);
    for (int s = 0; s < n_seg; s++) {
        if (seg[s].n <= 0) continue;
        const char *wp = (const char *)cpu_ptr(w) + (size_t)(seg[s].slot * M) * (size_t)w->stride * wsz;
        g[k++] = (cpu_mm_group){cpu_f32(x) + seg[s].row0 * x->stride, x->stride, (int)seg[s].n,
                                {wp, w->dtype, w->stride, (int)M, NULL, cpu_f32(y) + seg[s].row0 * y->stride, y->stride}};
        if (k == CPU_MM_MAX_GROUPS) {
            cpu_matmul_grouped(c->pool, (int)x->cols, k, g);
            k = 0;
        }
    }
    if (k) cpu_matmul_grouped(c->pool, (int)x->cols, k, g);
}

void cpu_op_lora_shrink(void *ctx, const be_tensor *x, const be_tensor *a, int n_seg, const be_lora_seg *seg,
                        const be_tensor *row_slot, const be_tensor *t) {
    (void)row_slot;
    seg_matmul(ctx, x, a, t->cols, n_seg, seg, t);
}

typedef struct {
    const be_tensor *d, *out;
    int n_seg;
    const be_lora_seg *seg;
} expand_add;

/* out += d over rows [r0, r1) of the segments' rows taken one after another */
static void add_seg_rows(const void *vp, int64_t r0, int64_t r1) {
    const expand_add *p = vp;
    int64_t base = 0, M = p->out->cols;
    for (int s = 0; s < p->n_seg && r0 < r1; s++) {
        int64_t n = p->seg[s].n > 0 ? p->seg[s].n : 0;
        for (; r0 < r1 && r0 < base + n; r0++) {
            int64_t row = p->seg[s].row0 + (r0 - base);
            const float *d = cpu_f32(p->d) + row * p->d->stride;
            float *o = cpu_f32(p->out) + row * p->out->stride;
            for (int64_t j = 0; j < M; j++) o[j] += d[j];
        }
        base += n;
    }
}

void cpu_op_lora_expand(void *ctx, const be_tensor *t, const be_tensor *b, int n_seg, const be_lora_seg *seg,
                        const be_tensor *row_slot, const be_tensor *d, const be_tensor *out) {
    (void)row_slot;
    seg_matmul(ctx, t, b, out->cols, n_seg, seg, d);
    int64_t rows = 0;
    for (int s = 0; s < n_seg; s++) rows += seg[s].n > 0 ? seg[s].n : 0;
    expand_add p = {d, out, n_seg, seg};
    cpu_for_rows(ctx, rows, out->cols, add_seg_rows, &p);
}
