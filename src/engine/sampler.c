#include "engine/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

int samp_params_check(const samp_params *p) {
    if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        return vc_errf(VC_EINVAL, "temperature must be non-negative, got %g", p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f)) return vc_errf(VC_EINVAL, "top_p must be in (0, 1], got %g", p->top_p);
    if (p->top_k < -1) return vc_errf(VC_EINVAL, "top_k must be 0 (disable), -1 (disable), or at least 1, got %d", p->top_k);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f)) return vc_errf(VC_EINVAL, "min_p must be in [0, 1], got %g", p->min_p);
    return VC_OK;
}

void samp_rng_seed(samp_rng *r, uint64_t seed) { vc_rng_seed(r, seed); }

float samp_rng_uniform(samp_rng *r) { return (float)(vc_rng_next(r) >> 40) * (1.0f / 16777216.0f); }

int samp_scratch_init(samp_scratch *s, int vocab) {
    s->cand = malloc(sizeof *s->cand * (size_t)(vocab > 0 ? vocab : 1));
    s->cap = vocab;
    if (!s->cand) return vc_errf(VC_ENOMEM, "out of memory");
    return VC_OK;
}

void samp_scratch_free(samp_scratch *s) {
    free(s->cand);
    memset(s, 0, sizeof *s);
}

int samp_argmax(const float *logits, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* Descending probability, ties by lower id. */
static int cand_cmp(const void *a, const void *b) {
    const samp_cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Move the k most likely of c[0..m) to c[0..k) (in no order): quickselect. */
static void select_topk(samp_cand *c, int m, int k) {
    int lo = 0, hi = m - 1;
    while (lo < hi) {
        samp_cand pivot = c[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (cand_cmp(&c[i], &pivot) < 0) i++;
            while (cand_cmp(&c[j], &pivot) > 0) j--;
            if (i <= j) {
                samp_cand t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* The draw over c[0..m) (unnormalised probabilities, each > 0): top_k, top_p, then r * total. With top_k the
 * kept tokens are sorted (descending probability, ties by lower id) before the draw, so the token does not
 * depend on the order they came in: samp_sample_top draws from the row's best tokens alone and gets the same. */
static int draw(samp_cand *c, int m, const samp_params *p, samp_rng *rng) {
    if (p->top_k > 0 && p->top_k < m) {
        select_topk(c, m, p->top_k);
        m = p->top_k;
    }
    if (p->top_k > 0) qsort(c, (size_t)m, sizeof *c, cand_cmp);
    if (p->top_p < 1.0f) {
        double tot = 0;
        for (int i = 0; i < m; i++) tot += c[i].p;
        /* vLLM drops a token once the mass of the tokens more likely than it
         * reaches top_p: keep the prefix whose preceding mass is < top_p. The prefix is sorted a block
         * at a time (the next block's most likely selected to the front, then sorted; blocks doubling),
         * not the whole vocabulary: a full qsort of 152k candidates took 16.6 ms a row. */
        double acc = 0;
        int keep = 0;
        for (int blk = 64; keep < m && acc < (double)p->top_p * tot; blk *= 2) {
            int b = m - keep < blk ? m - keep : blk;
            if (b < m - keep) select_topk(c + keep, m - keep, b);
            qsort(c + keep, (size_t)b, sizeof *c, cand_cmp);
            for (int end = keep + b; keep < end && acc < (double)p->top_p * tot;) acc += c[keep++].p;
        }
        m = keep > 0 ? keep : 1;
    }
    double tot = 0;
    for (int i = 0; i < m; i++) tot += c[i].p;
    double r = (double)samp_rng_uniform(rng) * tot, acc = 0;
    for (int i = 0; i < m; i++) {
        acc += c[i].p;
        if (r < acc) return c[i].id;
    }
    return c[m - 1].id;
}

int samp_sample(const float *logits, int n, const samp_params *p, samp_rng *rng, samp_scratch *s) {
    if (p->temperature < SAMP_EPS || n <= 1) return samp_argmax(logits, n);
    samp_cand *c = s->cand;
    float inv_t = 1.0f / p->temperature;
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (logits[i] * inv_t > mx) mx = logits[i] * inv_t;
    /* Unnormalised probabilities (the max is 1). min_p keeps p >= min_p * max. */
    float thr = p->min_p > 0.0f ? p->min_p : 0.0f;
    int m = 0;
    for (int i = 0; i < n; i++) {
        float e = expf(logits[i] * inv_t - mx);
        if (e > 0.0f && e >= thr) c[m++] = (samp_cand){e, i};
    }
    if (m == 0) return samp_argmax(logits, n);
    return draw(c, m, p, rng);
}

int samp_sample_top(const int32_t *ids, const float *vals, int k, int n, const samp_params *p, samp_rng *rng,
                    samp_scratch *s) {
    if (k < 1 || n <= 1) return -1;
    if (p->temperature < SAMP_EPS) return ids[0]; /* the first maximum, as samp_argmax */
    if (p->top_k <= 0 || (p->top_k >= k && k < n)) return -1;
    samp_cand *c = s->cand;
    float inv_t = 1.0f / p->temperature, mx = vals[0] * inv_t; /* x * inv_t keeps the order: the max */
    float thr = p->min_p > 0.0f ? p->min_p : 0.0f;
    int m = 0;
    for (int i = 0; i < k; i++) {
        float e = expf(vals[i] * inv_t - mx);
        if (e > 0.0f && e >= thr) c[m++] = (samp_cand){e, ids[i]};
    }
    if (m == 0) return -1;
    if (k < n) {
        /* A token past the k has a probability <= the last one's (expf keeps the order, weakly). If the last
         * one is kept by min_p, such a token could be too; then the top_k kept must all be strictly more
         * likely than the last one, or a token past the k could tie into them. */
        float el = expf(vals[k - 1] * inv_t - mx);
        if (el > 0.0f && el >= thr) {
            if (m < p->top_k) return -1;
            select_topk(c, m, p->top_k);
            qsort(c, (size_t)p->top_k, sizeof *c, cand_cmp);
            if (!(c[p->top_k - 1].p > el)) return -1;
            m = p->top_k;
        }
    }
    return draw(c, m, p, rng);
}

static double log_sum_exp(const float *logits, int n, float *mx_out) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    *mx_out = mx;
    return log(sum);
}

float samp_logprob_of(const float *logits, int n, int id) {
    float mx;
    double lse = log_sum_exp(logits, n, &mx);
    return (float)((double)logits[id] - mx - lse);
}

int samp_top_logprobs(const float *logits, int n, int k, int32_t *ids, float *logprobs) {
    if (k > n) k = n;
    if (k <= 0) return 0;
    float mx;
    double lse = log_sum_exp(logits, n, &mx);
    /* k is small (vLLM caps it at 20 by default): keep a sorted list. */
    int m = 0;
    for (int i = 0; i < n; i++) {
        float v = logits[i];
        if (m == k && !(v > logits[ids[m - 1]])) continue;
        int j = m < k ? m++ : k - 1;
        while (j > 0 && v > logits[ids[j - 1]]) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = i;
    }
    for (int i = 0; i < m; i++) logprobs[i] = (float)((double)logits[ids[i]] - mx - lse);
    return m;
}
