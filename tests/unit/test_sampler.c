/* Sampler: vLLM's parameter semantics, seeded reproducibility, and that every
 * filter only ever lets allowed tokens through, with the right frequencies. */
#include <math.h>
#include <string.h>

#include "engine/sampler.h"
#include "test.h"

#define V 50

static samp_params P(float t, float top_p, int top_k, float min_p) {
    samp_params p = {t, top_p, top_k, min_p};
    return p;
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
    TEST_END();
}
