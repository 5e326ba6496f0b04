/* Causal paged attention on the CPU.
 *
 * Work items are (query row, KV head) pairs split evenly across the pool; one
 * item handles the G query heads that share the KV head, so each K/V row is
 * read once for all of them. For an item we walk the sequence's block table
 * one run of consecutive slots at a time, score the visible keys (f32 dot
 * against the cache dtype), softmax in f32 with the max subtracted (gpt-oss: the head's sink logit
 * joins the max and the denominator), and
 * accumulate the values. Each thread has its own score scratch of
 * G * max_seq_len floats, grown on the calling thread before the task starts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "base/err.h"
#include "cpu_internal.h"
#include "kernels.h"

/* ---- inner loops: portable versions and dispatch ---- */

static void qk_scalar(const float *q, int G, int hd, const void *k, be_dtype kt, int64_t kstride, int count,
                      float scale, float *scores, int64_t lds) {
    size_t es = be_dtype_size(kt);
    for (int j = 0; j < count; j++) {
        const char *kr = (const char *)k + (size_t)(j * kstride) * es;
        for (int g = 0; g < G; g++) scores[(int64_t)g * lds + j] = cpu_dot(q + (int64_t)g * hd, kr, kt, hd) * scale;
    }
}

static void pv_scalar(float *o, int G, int hd, const float *p, int64_t lds, const void *v, be_dtype vt,
                      int64_t vstride, int count) {
    size_t es = be_dtype_size(vt);
    for (int j = 0; j < count; j++)
        for (int g = 0; g < G; g++)
            cpu_axpy(o + (int64_t)g * hd, p[(int64_t)g * lds + j], (const char *)v + (size_t)(j * vstride) * es, vt, hd);
}

void cpu_attn_qk(const float *q, int G, int hd, const void *k, be_dtype kt, int64_t kstride, int count, float scale,
                 float *scores, int64_t lds) {
#if defined(__x86_64__)
    if (strncmp(cpu_kernels_isa(), "avx2", 4) == 0) { /* "avx2" or "avx2+avx512" */
        cpu_avx2_attn_qk(q, G, hd, k, kt, kstride, count, scale, scores, lds);
        return;
    }
#elif defined(__aarch64__) && defined(__ARM_NEON)
    if (strcmp(cpu_kernels_isa(), "neon") == 0) {
        cpu_neon_attn_qk(q, G, hd, k, kt, kstride, count, scale, scores, lds);
        return;
    }
#endif
    qk_scalar(q, G, hd, k, kt, kstride, count, scale, scores, lds);
}

void cpu_attn_pv(float *o, int G, int hd, const float *p, int64_t lds, const void *v, be_dtype vt, int64_t vstride,
                 int count) {
#if defined(__x86_64__)
    if (strncmp(cpu_kernels_isa(), "avx2", 4) == 0) { /* "avx2" or "avx2+avx512" */
        cpu_avx2_attn_pv(o, G, hd, p, lds, v, vt, vstride, count);
        return;
    }
#elif defined(__aarch64__) && defined(__ARM_NEON)
    if (strcmp(cpu_kernels_isa(), "neon") == 0) {
        cpu_neon_attn_pv(o, G, hd, p, lds, v, vt, vstride, count);
        return;
    }
#endif
    pv_scalar(o, G, hd, p, lds, v, vt, vstride, count);
}

/* ---- the op ---- */

typedef struct {
    cpu_ctx *c;
    const be_tensor *q, *kc, *vc, *out;
    const be_attn_meta *meta;
    const be_attn_shape *shape;
    const int32_t *q_start, *seq_len, *block_table;
    int64_t max_blocks;
    int64_t items;
    void (*qk)(const float *, int, int, const void *, be_dtype, int64_t, int, float, float *, int64_t);
    void (*pv)(float *, int, int, const float *, int64_t, const void *, be_dtype, int64_t, int);
    const act_ops *act; /* softcap and the softmax's exponentials */
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
    int hd = sh->head_dim, HKV = sh->n_kv_heads, G = sh->n_heads / sh->n_kv_heads;
    int bs = a->meta->block_size;
    size_t es = be_dtype_size(a->kc->dtype);
    float *scores = a->c->scratch + (size_t)ith * a->c->scratch_per_thread;
    int64_t lds = a->meta->max_seq_len;
    /* items strided over the threads, not in contiguous halves: a causal prefill's later rows read more
     * keys (the second half of 128 rows cost three times the first), and a thread's share stays one KV
     * head's rows where the heads are as many as the threads */
    for (int64_t it = ith; it < a->items; it += nth) {
        int64_t r = it / HKV;
        int kvh = (int)(it % HKV);
        int s = seq_of_row(a->q_start, a->meta->n_seqs, r);
        int64_t q_len = a->q_start[s + 1] - a->q_start[s];
        int64_t pos = a->seq_len[s] - q_len + (r - a->q_start[s]); /* this query's position */
        int64_t j0 = 0;
        if (sh->sliding_window > 0 && pos + 1 > sh->sliding_window) j0 = pos + 1 - sh->sliding_window;
        int64_t nk = pos + 1 - j0;
        const int32_t *bt = a->block_table + (int64_t)s * a->max_blocks;
        /* the G heads of this KV head, at most CPU_ATTN_MAX_GROUP at a time */
        for (int g0 = 0; g0 < G; g0 += CPU_ATTN_MAX_GROUP) {
            int Gs = G - g0 < CPU_ATTN_MAX_GROUP ? G - g0 : CPU_ATTN_MAX_GROUP;
            const float *q = cpu_f32(a->q) + r * a->q->stride + ((int64_t)kvh * G + g0) * hd;
            float *o = cpu_f32(a->out) + r * a->out->stride + ((int64_t)kvh * G + g0) * hd;
            /* scores for keys j0..pos, one run of consecutive slots (within a block) at a time */
            for (int64_t j = j0; j <= pos;) {
                int64_t off = j % bs, run = bs - off < pos + 1 - j ? bs - off : pos + 1 - j;
                int64_t slot = (int64_t)bt[j / bs] * bs + off;
                const char *k = (const char *)cpu_ptr(a->kc) + (size_t)(slot * a->kc->stride + (int64_t)kvh * hd) * es;
                a->qk(q, Gs, hd, k, a->kc->dtype, a->kc->stride, (int)run, sh->scale, scores + (j - j0), lds);
                j += run;
            }
            if (sh->softcap > 0) /* HF: (scores * scale) / cap, tanh, * cap, before the mask */
                for (int g = 0; g < Gs; g++) {
                    float *sc = scores + (int64_t)g * lds;
                    a->act->softcap(sc, sc, sh->softcap, nk);
                }
            for (int g = 0; g < Gs; g++) {
                float *sc = scores + (int64_t)g * lds, mx = -INFINITY, sum = 0, sink = -INFINITY;
                if (sh->sinks) sink = cpu_f32(sh->sinks)[(int64_t)kvh * G + g0 + g];
                mx = sink; /* HF: softmax over [scores, sink], the sink's probability dropped */
                for (int64_t j = 0; j < nk; j++) mx = sc[j] > mx ? sc[j] : mx;
                if (sh->sinks) sum = expf(sink - mx);
                sum += a->act->exp_sum(sc, mx, nk);
                float inv = 1.0f / sum;
                for (int64_t j = 0; j < nk; j++) sc[j] *= inv;
            }
            memset(o, 0, sizeof(float) * (size_t)Gs * (size_t)hd);
            for (int64_t j = j0; j <= pos;) {
                int64_t off = j % bs, run = bs - off < pos + 1 - j ? bs - off : pos + 1 - j;
                int64_t slot = (int64_t)bt[j / bs] * bs + off;
                const char *v = (const char *)cpu_ptr(a->vc) + (size_t)(slot * a->vc->stride + (int64_t)kvh * hd) * es;
                a->pv(o, Gs, hd, scores + (j - j0), lds, v, a->vc->dtype, a->vc->stride, (int)run);
                j += run;
            }
        }
    }
}

void cpu_op_attention(void *ctx, const be_tensor *q, const be_tensor *k_cache, const be_tensor *v_cache,
                      const be_attn_meta *meta, const be_attn_shape *shape, const be_tensor *out) {
    cpu_ctx *c = ctx;
    int G = shape->n_heads / shape->n_kv_heads;
    size_t need = (size_t)(G < CPU_ATTN_MAX_GROUP ? G : CPU_ATTN_MAX_GROUP) * (size_t)(meta->max_seq_len > 0 ? meta->max_seq_len : 1);
    if (need > c->scratch_per_thread) {
        /* doubling: a context that grows token by token reallocates O(log n) times, not every
         * 64 / group tokens (the step still cannot reserve it: only the runner knows max_model_len) */
        size_t per = need + 64 > 2 * c->scratch_per_thread ? need + 64 : 2 * c->scratch_per_thread;
        float *s = malloc(sizeof(float) * per * (size_t)c->nthreads);
        if (!s) { /* ops cannot fail by value: the error surfaces at sync() */
            if (!c->error)
                c->error = vc_errf(VC_ENOMEM, "cpu: out of memory for the attention scratch (%zu floats)", per);
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
        .items = q->rows * shape->n_kv_heads,
        .qk = qk_scalar,
        .pv = pv_scalar,
        .act = act_get(),
    };
#if defined(__x86_64__)
    if (strncmp(cpu_kernels_isa(), "avx2", 4) == 0) { /* "avx2" or "avx2+avx512" */
        a.qk = cpu_avx2_attn_qk;
        a.pv = cpu_avx2_attn_pv;
    }
#elif defined(__aarch64__) && defined(__ARM_NEON)
    if (strcmp(cpu_kernels_isa(), "neon") == 0) {
        a.qk = cpu_neon_attn_qk;
        a.pv = cpu_neon_attn_pv;
    }
#endif
    if (a.items < 2 || c->nthreads == 1) attn_task(&a, 0, 1);
    else tp_run(c->pool, attn_task, &a);
}
