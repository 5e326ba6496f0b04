/* Sampler: vLLM's parameter semantics, seeded reproducibility, and that every
 * filter only ever lets allowed tokens through, with the right frequencies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sampler.h"
#include "test.h"

#define V 50

static samp_params P(float t, float top_p, int top_k, float min_p) {
    samp_params p = {t, top_p, top_k, min_p};
    return p;
}

/* top_p over a vocabulary whose nucleus spans several of the sampler's sorted blocks (64, 128, ...):
 * exactly the prefix of the full order whose preceding mass is < top_p comes out, its far end included. */
static void top_p_many(void) {
    enum { NV = 3000 };
    static float lg[NV];
    static double pr[NV];
    static int ord[NV], seen[NV];
    double mx = -1e30, z = 0;
    for (int i = 0; i < NV; i++) lg[i] = (float)((i * 7919) % NV) / 600.0f, mx = lg[i] > mx ? lg[i] : mx;
    for (int i = 0; i < NV; i++) z += pr[i] = exp(lg[i] - mx), ord[i] = i;
    for (int i = 1; i < NV; i++) /* insertion sort by probability, ties to the lower id (none here) */
        for (int j = i; j > 0 && lg[ord[j]] > lg[ord[j - 1]]; j--) {
            int t = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = t;
        }
    double cum = 0;
    int keep = 0;
    while (keep < NV && cum < 0.9 * z) cum += pr[ord[keep++]];
    CHECK_MSG(keep > 64 + 128 + 256, "the nucleus (%d) should span several blocks", keep);
    samp_scratch sc;
    CHECK(samp_scratch_init(&sc, NV) == 0);
    samp_rng rng;
    samp_rng_seed(&rng, 11);
    samp_params tp = P(1.0f, 0.9f, 0, 0);
    for (int i = 0; i < 40000; i++) seen[samp_sample(lg, NV, &tp, &rng, &sc)]++;
    for (int i = keep; i < NV; i++) CHECK_MSG(seen[ord[i]] == 0, "top_p let rank %d through (keep %d)", i, keep);
    int late = 0; /* kept tokens beyond the first two blocks do come out */
    for (int i = 64 + 128; i < keep; i++) late += seen[ord[i]];
    CHECK_MSG(late > 0, "no token of rank 192..%d came out", keep - 1);
    CHECK(seen[ord[keep - 1]] + seen[ord[keep - 2]] + seen[ord[keep - 3]] > 0);
    samp_scratch_free(&sc);
}

/* samp_sample_top from a row's best k (sorted by logit, ties by lower id, as backend.h's topk gives them)
 * draws what samp_sample draws from the whole row with the same RNG state, or declines (-1, the RNG
 * untouched). Rows of random logits, and rows of few distinct values (ties at the edge of the k). */
static int top_cmp_lg[4096];
static const float *g_row;
static int by_logit(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (g_row[i] != g_row[j]) return g_row[i] > g_row[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

static void sample_top_cases(void) {
    enum { NV = 1000 };
    static float row[NV], vals[NV];
    static int32_t ids[NV];
    samp_scratch sc;
    CHECK(samp_scratch_init(&sc, NV) == 0);
    vc_rng gen;
    vc_rng_seed(&gen, 99);
    int same = 0, declined = 0, declined_ties = 0;
    for (int it = 0; it < 3000; it++) {
        /* ties: few distinct values; near: ~100 distinct logits within 1e-6 of 0 over a low rest, whose
         * probabilities all round to the same float (a tie in probability, not in logit) */
        int ties = it % 3 == 2, near = it % 3 == 1 && it % 2 == 0;
        for (int i = 0; i < NV; i++) {
            float u = (float)(vc_rng_next(&gen) >> 40) / 16777216.0f;
            row[i] = ties ? (float)(int)(u * 6.0f)
                   : near ? (u < 0.1f ? (float)(vc_rng_next(&gen) % 1000) * 1e-9f : u * 6.0f - 10.0f)
                          : u * 12.0f - 6.0f;
        }
        ties |= near;
        g_row = row;
        for (int i = 0; i < NV; i++) top_cmp_lg[i] = i;
        qsort(top_cmp_lg, NV, sizeof(int), by_logit);
        int tk = 1 + (int)(vc_rng_next(&gen) % 56), k = tk + 1 + (int)(vc_rng_next(&gen) % 9);
        float temps[3] = {0.0f, 0.7f, 1.3f}, tps[3] = {1.0f, 0.9f, 0.5f}, mps[3] = {0.0f, 0.05f, 0.3f};
        samp_params p = P(temps[it % 3 == 0 ? 1 : (it / 3) % 3], tps[(it / 5) % 3], it % 17 == 0 ? -1 : tk,
                          mps[(it / 7) % 3]);
        for (int i = 0; i < k; i++) ids[i] = top_cmp_lg[i], vals[i] = row[top_cmp_lg[i]];
        samp_rng r1, r2;
        samp_rng_seed(&r1, (uint64_t)it);
        r2 = r1;
        int full = samp_sample(row, NV, &p, &r1, &sc);
        int top = samp_sample_top(ids, vals, k, NV, &p, &r2, &sc);
        if (top < 0) {
            declined++, declined_ties += ties;
            samp_rng r0;
            samp_rng_seed(&r0, (uint64_t)it);
            CHECK_MSG(samp_rng_uniform(&r0) == samp_rng_uniform(&r2), "case %d: a declined draw moved the RNG", it);
            CHECK_MSG(p.top_k <= 0 || ties || p.top_k >= k, "case %d: declined without ties (top_k %d, k %d)", it,
                      p.top_k, k);
        } else {
            CHECK_MSG(top == full, "case %d: %d from the best %d, %d from the row (t %g top_k %d top_p %g min_p %g)",
                      it, top, k, full, p.temperature, p.top_k, p.top_p, p.min_p);
            CHECK_MSG(samp_rng_uniform(&r1) == samp_rng_uniform(&r2), "case %d: the RNG moved differently", it);
            same++;
        }
    }
    printf("sample_top: %d draws as the whole row's, %d declined (%d of them with ties)\n", same, declined,
           declined_ties);
    CHECK(same > 2000);
    CHECK(declined_ties > 0); /* the edge check is exercised */
    samp_scratch_free(&sc);
}

int main(void) {
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = (float)sin(i * 1.7) * 3.0f;
    int am = samp_argmax(logits, V);
    samp_scratch sc;
    CHECK(samp_scratch_init(&sc, V) == 0);
    samp_rng rng;
    samp_rng_seed(&rng, 7);

    /* parameter checks as vLLM */
    CHECK(samp_params_check(&(samp_params){-1, 1, 0, 0}) != 0);
    CHECK(samp_params_check(&(samp_params){1, 0, 0, 0}) != 0);
    CHECK(samp_params_check(&(samp_params){1, 1.5f, 0, 0}) != 0);
    CHECK(samp_params_check(&(samp_params){1, 1, -2, 0}) != 0);
    CHECK(samp_params_check(&(samp_params){1, 1, -1, 0}) == 0);
    CHECK(samp_params_check(&(samp_params){1, 1, 0, 1.5f}) != 0);

    /* greedy: temperature 0, and top_k 1 at any temperature */
    samp_params g = P(0, 1, 0, 0), k1 = P(2.0f, 1, 1, 0);
    for (int i = 0; i < 20; i++) {
        CHECK(samp_sample(logits, V, &g, &rng, &sc) == am);
        CHECK(samp_sample(logits, V, &k1, &rng, &sc) == am);
    }

    /* same seed, same sequence; different seed, different sequence */
    samp_params t1 = P(1.0f, 1, 0, 0);
    int a[64], b[64], c[64];
    samp_rng r1, r2, r3;
    samp_rng_seed(&r1, 42);
    samp_rng_seed(&r2, 42);
    samp_rng_seed(&r3, 43);
    int differ = 0;
    for (int i = 0; i < 64; i++) {
        a[i] = samp_sample(logits, V, &t1, &r1, &sc);
        b[i] = samp_sample(logits, V, &t1, &r2, &sc);
        c[i] = samp_sample(logits, V, &t1, &r3, &sc);
        differ += a[i] != c[i];
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(differ > 0);

    /* frequencies at temperature 1 follow softmax (chi-square, 20000 draws) */
    double p[V], mx = -1e9, z = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, logits[i]);
    for (int i = 0; i < V; i++) z += p[i] = exp(logits[i] - mx);
    int cnt[V] = {0};
    const int N = 20000;
    for (int i = 0; i < N; i++) cnt[samp_sample(logits, V, &t1, &rng, &sc)]++;
    double chi = 0;
    int dof = 0;
    for (int i = 0; i < V; i++) {
        double e = N * p[i] / z;
        if (e >= 5) {
            chi += (cnt[i] - e) * (cnt[i] - e) / e;
            dof++;
        }
    }
    CHECK_MSG(chi < dof + 6 * sqrt(2.0 * dof), "chi-square %g with %d dof", chi, dof);

    /* top_k: only the k most likely tokens ever come out */
    int order[V];
    for (int i = 0; i < V; i++) order[i] = i;
    for (int i = 0; i < V; i++)
        for (int j = i + 1; j < V; j++)
            if (logits[order[j]] > logits[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    samp_params tk = P(5.0f, 1, 3, 0);
    int seen[V] = {0};
    for (int i = 0; i < 3000; i++) seen[samp_sample(logits, V, &tk, &rng, &sc)]++;
    for (int i = 3; i < V; i++) CHECK_MSG(seen[order[i]] == 0, "top_k let rank %d through", i);
    for (int i = 0; i < 3; i++) CHECK(seen[order[i]] > 0);

    /* top_p: keep the prefix whose preceding mass is < top_p */
    double cum = 0;
    int keep = 0;
    while (keep < V && cum < 0.5 * z) cum += p[order[keep++]];
    samp_params tp = P(1.0f, 0.5f, 0, 0);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 5000; i++) seen[samp_sample(logits, V, &tp, &rng, &sc)]++;
    for (int i = keep; i < V; i++) CHECK_MSG(seen[order[i]] == 0, "top_p let rank %d through (keep %d)", i, keep);
    for (int i = 0; i < keep; i++) CHECK(seen[order[i]] > 0);

    /* min_p: drop tokens below min_p * max probability */
    samp_params mp = P(1.0f, 1, 0, 0.3f);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 5000; i++) seen[samp_sample(logits, V, &mp, &rng, &sc)]++;
    for (int i = 0; i < V; i++) {
        double rel = exp(logits[i] - mx);
        if (rel < 0.3) CHECK_MSG(seen[i] == 0, "min_p let token %d (rel %g) through", i, rel);
        if (rel > 0.31) CHECK(seen[i] > 0);
    }

    /* logprobs: top-k of log_softmax, best first, summing to <= 0 */
    int32_t ids[5];
    float lps[5];
    CHECK(samp_top_logprobs(logits, V, 5, ids, lps) == 5);
    for (int i = 0; i < 5; i++) {
        CHECK(ids[i] == order[i]);
        CHECK_NEAR(lps[i], logits[order[i]] - mx - log(z), 1e-5);
        CHECK_NEAR(samp_logprob_of(logits, V, ids[i]), lps[i], 1e-6);
    }
    CHECK(samp_top_logprobs(logits, V, 100, (int32_t[V]){0}, (float[V]){0}) == V);
    samp_scratch_free(&sc);
    top_p_many();
    sample_top_cases();
    TEST_END();
}
