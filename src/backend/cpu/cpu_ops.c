/* CPU ops other than attention. Elementwise ops split rows across the pool
 * when there is enough work to pay for the hand-off; a decode step's norms and
 * adds over one row run on the calling thread. */
#include <math.h>
#include <string.h>

#include "act.h"
#include "cpu_internal.h"
#include "kernels.h"

/* Below this many elements an op runs on the calling thread. */
#define CPU_PAR_MIN_ELEMS 32768

typedef struct {
    row_fn fn;
    const void *arg;
    int64_t rows;
} par_rows;

static void par_rows_task(void *vp, int ith, int nth) {
    const par_rows *p = vp;
    int64_t r0 = p->rows * ith / nth, r1 = p->rows * (ith + 1) / nth;
    if (r1 > r0) p->fn(p->arg, r0, r1);
}

void cpu_for_rows(cpu_ctx *c, int64_t rows, int64_t cols, row_fn fn, const void *arg) {
    if (rows <= 0) return;
    if (rows == 1 || rows * cols < CPU_PAR_MIN_ELEMS || c->nthreads == 1) {
        fn(arg, 0, rows);
        return;
    }
    par_rows p = {fn, arg, rows};
    tp_run(c->pool, par_rows_task, &p);
}

/* --- get_rows --- */
typedef struct {
    const be_tensor *table, *out;
    const int32_t *ids;
} get_rows_args;

static void get_rows_range(const void *vp, int64_t r0, int64_t r1) {
    const get_rows_args *a = vp;
    size_t es = be_dtype_size(a->table->dtype);
    for (int64_t i = r0; i < r1; i++) {
        int64_t id = a->ids[i];
        float *dst = cpu_f32(a->out) + i * a->out->stride;
        if (id < 0 || id >= a->table->rows) { /* validated upstream; never read outside */
            memset(dst, 0, sizeof(float) * (size_t)a->out->cols);
            continue;
        }
        const char *src = (const char *)cpu_ptr(a->table) + (size_t)(id * a->table->stride) * es;
        cpu_to_f32(dst, src, a->table->dtype, (int)a->out->cols);
    }
}

void cpu_op_get_rows(void *ctx, const be_tensor *table, const be_tensor *ids, const be_tensor *out) {
    get_rows_args a = {table, out, cpu_i32(ids)};
    cpu_for_rows(ctx, out->rows, out->cols, get_rows_range, &a);
}

/* --- rmsnorm --- */
typedef struct {
    const be_tensor *x, *out;
    const float *w;
    float eps, w_offset;
} rmsnorm_args;

static void rmsnorm_range(const void *vp, int64_t r0, int64_t r1) {
    const rmsnorm_args *a = vp;
    int64_t d = a->x->cols;
    for (int64_t i = r0; i < r1; i++) {
        const float *x = cpu_f32(a->x) + i * a->x->stride;
        float *y = cpu_f32(a->out) + i * a->out->stride;
        /* Sum of squares in double: HF computes the mean in f32, but a more exact
         * sum only moves us closer to the exact value both approximate. */
        double ss = 0;
        for (int64_t j = 0; j < d; j++) ss += (double)x[j] * x[j];
        float inv = 1.0f / sqrtf((float)(ss / (double)d) + a->eps);
        for (int64_t j = 0; j < d; j++) y[j] = (x[j] * inv) * (a->w[j] + a->w_offset);
    }
}

void cpu_op_rmsnorm(void *ctx, const be_tensor *x, const be_tensor *w, float eps, float w_offset,
                    const be_tensor *out) {
    rmsnorm_args a = {x, out, cpu_f32(w), eps, w_offset};
    cpu_for_rows(ctx, x->rows, x->cols, rmsnorm_range, &a);
}

/* --- matmul --- */
void cpu_op_matmul(void *ctx, const be_tensor *x, const be_tensor *w, const be_tensor *bias,
                   const be_tensor *out) {
    cpu_ctx *c = ctx;
    cpu_matmul(c->pool, cpu_f32(x), x->stride, (int)x->rows, (int)x->cols, cpu_ptr(w), w->dtype, w->stride,
               (int)w->rows, bias ? cpu_f32(bias) : NULL, cpu_f32(out), out->stride);
}

void cpu_op_matmul_multi(void *ctx, const be_tensor *x, int nw, const be_tensor *const *w,
                         const be_tensor *const *bias, const be_tensor *const *out) {
    cpu_ctx *c = ctx;
    cpu_mm_weight ws[CPU_MM_MAX_PARTS];
    int k = 0;
    for (int i = 0; i < nw; i++) {
        ws[k++] = (cpu_mm_weight){cpu_ptr(w[i]), w[i]->dtype, w[i]->stride, (int)w[i]->rows,
                                  bias[i] ? cpu_f32(bias[i]) : NULL, cpu_f32(out[i]), out[i]->stride};
        if (k == CPU_MM_MAX_PARTS || i == nw - 1) {
            cpu_matmul_multi(c->pool, cpu_f32(x), x->stride, (int)x->rows, (int)x->cols, k, ws);
            k = 0;
        }
    }
}

/* --- rope --- */
typedef struct {
    const be_tensor *x;
    const int32_t *pos;
    const float *inv_freq;
    int head_dim, rot_dim;
    float mscale;
} rope_args;

static void rope_range(const void *vp, int64_t r0, int64_t r1) {
    const rope_args *a = vp;
    int half = a->rot_dim / 2;
    int heads = (int)(a->x->cols / a->head_dim);
    float cs[512], sn[512]; /* rot_dim/2 <= 512 is checked by the model loader */
    for (int64_t t = r0; t < r1; t++) {
        float p = (float)a->pos[t];
        for (int i = 0; i < half; i++) {
            /* HF: freqs = (inv_freq.float() @ position.float()) in f32, then cos/sin. */
            float ang = p * a->inv_freq[i];
            cs[i] = cosf(ang) * a->mscale;
            sn[i] = sinf(ang) * a->mscale;
        }
        float *row = cpu_f32(a->x) + t * a->x->stride;
        for (int h = 0; h < heads; h++) {
            float *v = row + (int64_t)h * a->head_dim;
            for (int i = 0; i < half; i++) {
                float x0 = v[i], x1 = v[i + half];
                v[i] = x0 * cs[i] - x1 * sn[i];
                v[i + half] = x1 * cs[i] + x0 * sn[i];
            }
        }
    }
}

void cpu_op_rope(void *ctx, const be_tensor *x, int head_dim, int rot_dim, const be_tensor *pos,
                 const be_tensor *inv_freq, float mscale) {
    rope_args a = {x, cpu_i32(pos), cpu_f32(inv_freq), head_dim, rot_dim, mscale};
    cpu_for_rows(ctx, x->rows, x->cols, rope_range, &a);
}

/* --- kv_write --- */
typedef struct {
    const be_tensor *k, *cache;
    const int32_t *slot;
} kv_args;

static void kv_range(const void *vp, int64_t r0, int64_t r1) {
    const kv_args *a = vp;
    size_t es = be_dtype_size(a->cache->dtype);
    for (int64_t t = r0; t < r1; t++) {
        int64_t s = a->slot[t];
        if (s < 0 || s >= a->cache->rows) continue;
        char *dst = (char *)cpu_ptr(a->cache) + (size_t)(s * a->cache->stride) * es;
        cpu_from_f32(dst, a->cache->dtype, cpu_f32(a->k) + t * a->k->stride, (int)a->k->cols);
    }
}

void cpu_op_kv_write(void *ctx, const be_tensor *k, const be_tensor *slot, const be_tensor *cache) {
    kv_args a = {k, cache, cpu_i32(slot)};
    cpu_for_rows(ctx, k->rows, k->cols, kv_range, &a);
}

/* --- silu_mul, add --- */
typedef struct {
    const be_tensor *a, *b, *out;
} bin_args;

/* out = act(gate) * up, row by row; act: 0 SiLU, 1 GELU-tanh (act.h: the vector or portable kernels). */
typedef struct {
    bin_args t;
    int gelu;
} glu_args;

static void glu_range(const void *vp, int64_t r0, int64_t r1) {
    const glu_args *q = vp;
    const bin_args *p = &q->t;
    const act_ops *k = act_get();
    int64_t n = p->out->cols;
    for (int64_t i = r0; i < r1; i++) {
        const float *g = cpu_f32(p->a) + i * p->a->stride;
        const float *u = cpu_f32(p->b) + i * p->b->stride;
        float *y = cpu_f32(p->out) + i * p->out->stride;
        if (q->gelu) k->gelu_tanh_mul(y, g, u, n);
        else k->silu_mul(y, g, u, n);
    }
}

void cpu_op_silu_mul(void *ctx, const be_tensor *gate, const be_tensor *up, const be_tensor *out) {
    glu_args a = {{gate, up, out}, 0};
    cpu_for_rows(ctx, out->rows, out->cols, glu_range, &a);
}

void cpu_op_gelu_tanh_mul(void *ctx, const be_tensor *gate, const be_tensor *up, const be_tensor *out) {
    glu_args a = {{gate, up, out}, 1};
    cpu_for_rows(ctx, out->rows, out->cols, glu_range, &a);
}

/* --- scale, softcap: out = f(x) with one float parameter --- */
typedef struct {
    const be_tensor *x, *out;
    float s;
} unary_args;

static void scale_range(const void *vp, int64_t r0, int64_t r1) {
    const unary_args *p = vp;
    for (int64_t i = r0; i < r1; i++) {
        const float *x = cpu_f32(p->x) + i * p->x->stride;
        float *y = cpu_f32(p->out) + i * p->out->stride;
        for (int64_t j = 0; j < p->out->cols; j++) y[j] = x[j] * p->s;
    }
}

static void softcap_range(const void *vp, int64_t r0, int64_t r1) {
    const unary_args *p = vp;
    const act_ops *k = act_get();
    for (int64_t i = r0; i < r1; i++)
        k->softcap(cpu_f32(p->out) + i * p->out->stride, cpu_f32(p->x) + i * p->x->stride, p->s, p->out->cols);
}

void cpu_op_scale(void *ctx, const be_tensor *x, float s, const be_tensor *out) {
    unary_args a = {x, out, s};
    cpu_for_rows(ctx, out->rows, out->cols, scale_range, &a);
}

void cpu_op_softcap(void *ctx, const be_tensor *x, float cap, const be_tensor *out) {
    unary_args a = {x, out, cap};
    cpu_for_rows(ctx, out->rows, out->cols, softcap_range, &a);
}

/* The first maximum of a left-to-right scan (a NaN first element stays, later NaNs never win). */
void cpu_op_argmax(void *ctx, const be_tensor *x, const be_tensor *out) {
    (void)ctx;
    for (int64_t i = 0; i < x->rows; i++) {
        const float *r = cpu_f32(x) + i * x->stride;
        int64_t best = 0;
        for (int64_t j = 1; j < x->cols; j++)
            if (r[j] > r[best]) best = j;
        cpu_i32(out)[i] = (int32_t)best;
    }
}

static void add_range(const void *vp, int64_t r0, int64_t r1) {
    const bin_args *p = vp;
    int64_t n = p->out->cols;
    for (int64_t i = r0; i < r1; i++) {
        const float *x = cpu_f32(p->a) + i * p->a->stride;
        const float *y = cpu_f32(p->b) + i * p->b->stride;
        float *o = cpu_f32(p->out) + i * p->out->stride;
        for (int64_t j = 0; j < n; j++) o[j] = x[j] + y[j];
    }
}

void cpu_op_add(void *ctx, const be_tensor *a, const be_tensor *b, const be_tensor *out) {
    bin_args p = {a, b, out};
    cpu_for_rows(ctx, out->rows, out->cols, add_range, &p);
}
