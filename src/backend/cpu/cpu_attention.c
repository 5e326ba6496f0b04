/* Causal paged attention on the CPU.
 *
 * Work items are (query row, head) pairs split evenly across the pool. For one
 * item we walk the sequence's block table, score every visible key (f32 dot
 * against the cache dtype), softmax in f32 with the max subtracted, and
 * accumulate the values. Each thread has its own score scratch of
 * max_seq_len floats, grown on the calling thread before the task starts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cpu_internal.h"
#include "kernels.h"

typedef struct {
    cpu_ctx *c;
    const be_tensor *q, *kc, *vc, *out;
    const be_attn_meta *meta;
    const be_attn_shape *shape;
    const int32_t *q_start, *seq_len, *block_table;
    int64_t max_blocks;
    int64_t items;
} attn_args;

/* Sequence that owns query row r (q_start is sorted). */
static int seq_of_row(const int32_t *q_start, int n_seqs, int64_t r) {
    int lo = 0, hi = n_seqs - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (q_start[mid] <= r) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static void attn_task(void *vp, int ith, int nth) {
    const attn_args *a = vp;
    const be_attn_shape *sh = a->shape;
    int hd = sh->head_dim, H = sh->n_heads, group = sh->n_heads / sh->n_kv_heads;
    int bs = a->meta->block_size;
    size_t kes = be_dtype_size(a->kc->dtype);
    float *scores = a->c->scratch + (size_t)ith * a->c->scratch_per_thread;
    int64_t i0 = a->items * ith / nth, i1 = a->items * (ith + 1) / nth;
    for (int64_t it = i0; it < i1; it++) {
        int64_t r = it / H;
        int h = (int)(it % H), kvh = h / group;
        int s = seq_of_row(a->q_start, a->meta->n_seqs, r);
        int64_t q_len = a->q_start[s + 1] - a->q_start[s];
        int64_t pos = a->seq_len[s] - q_len + (r - a->q_start[s]); /* this query's position */
        int64_t j0 = 0;
        if (sh->sliding_window > 0 && pos + 1 > sh->sliding_window) j0 = pos + 1 - sh->sliding_window;
        const float *q = cpu_f32(a->q) + r * a->q->stride + (int64_t)h * hd;
        float *o = cpu_f32(a->out) + r * a->out->stride + (int64_t)h * hd;
        const int32_t *bt = a->block_table + (int64_t)s * a->max_blocks;
        float mx = -INFINITY;
        for (int64_t j = j0; j <= pos; j++) {
            int64_t slot = (int64_t)bt[j / bs] * bs + j % bs;
            const char *k = (const char *)cpu_ptr(a->kc) + (size_t)(slot * a->kc->stride + (int64_t)kvh * hd) * kes;
            float sc = cpu_dot(q, k, a->kc->dtype, hd) * sh->scale;
            scores[j - j0] = sc;
            if (sc > mx) mx = sc;
        }
        float sum = 0;
        for (int64_t j = j0; j <= pos; j++) {
            float e = expf(scores[j - j0] - mx);
            scores[j - j0] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
        memset(o, 0, sizeof(float) * (size_t)hd);
        for (int64_t j = j0; j <= pos; j++) {
            int64_t slot = (int64_t)bt[j / bs] * bs + j % bs;
            const char *v = (const char *)cpu_ptr(a->vc) + (size_t)(slot * a->vc->stride + (int64_t)kvh * hd) * kes;
            cpu_axpy(o, scores[j - j0] * inv, v, a->vc->dtype, hd);
        }
    }
}

void cpu_op_attention(void *ctx, const be_tensor *q, const be_tensor *k_cache, const be_tensor *v_cache,
                      const be_attn_meta *meta, const be_attn_shape *shape, const be_tensor *out) {
    cpu_ctx *c = ctx;
    size_t need = (size_t)(meta->max_seq_len > 0 ? meta->max_seq_len : 1);
    if (need > c->scratch_per_thread) {
        size_t per = need + 64;
        float *s = malloc(sizeof(float) * per * (size_t)c->nthreads);
        if (!s) { /* ops cannot fail by value: the error surfaces at sync() */
            if (!c->error) c->error = vc_errf(VC_ENOMEM, "cpu: attention scratch of %zu floats", per);
            return;
        }
        free(c->scratch);
        c->scratch = s;
        c->scratch_per_thread = per;
    }
    attn_args a = {
        .c = c, .q = q, .kc = k_cache, .vc = v_cache, .out = out, .meta = meta, .shape = shape,
        .q_start = cpu_i32(&meta->q_start), .seq_len = cpu_i32(&meta->seq_len),
        .block_table = cpu_i32(&meta->block_table), .max_blocks = meta->block_table.stride,
        .items = q->rows * shape->n_heads,
    };
    if (a.items < 4 || c->nthreads == 1) attn_task(&a, 0, 1);
    else tp_run(c->pool, attn_task, &a);
}
