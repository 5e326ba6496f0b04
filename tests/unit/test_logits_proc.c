/* logits_proc: lp_apply against a plain reference written here from vLLM V1's
 * code (full-vocabulary masks and counts, the processors in vLLM's order), on
 * random logits and random prompt/output histories, growing step by step as
 * an engine calls it; hand-made boundary cases; and lp_logprobs against a
 * brute-force top-k, logprob and rank. */
#include <math.h>
#include <string.h>

#include "base/err.h"
#include "engine/logits_proc.h"
#include "test.h"

#define V 1000

/* ---- deterministic random numbers ---- */
static uint64_t rs = 0x243f6a8885a308d3ull;
static uint32_t rnd(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (uint32_t)(rs >> 16);
}
static int rint_(int n) { return (int)(rnd() % (uint32_t)n); }
static float runif(float a, float b) { return a + (b - a) * (float)(rnd() & 0xffffff) / 16777216.0f; }

/* ---- the reference, as vLLM's Sampler.apply_logits_processors ---- */
static void ref_apply(const eng_sampling_params *p, const int32_t *eos, int n_eos, const int32_t *prompt, int np,
                      const int32_t *out, int no, float *l) {
    static unsigned char mask[V];
    static int cnt[V], in_prompt[V], has_bias[V];
    static float bias[V];
    /* allowed_token_ids: mask = True everywhere, False at the allowed ids */
    if (p->allowed_token_ids) {
        for (int i = 0; i < V; i++) mask[i] = 1;
        for (int j = 0; j < p->n_allowed; j++) mask[p->allowed_token_ids[j]] = 0;
        for (int i = 0; i < V; i++)
            if (mask[i]) l[i] = -INFINITY;
    }
    /* bad words: _apply_bad_words_single_batch over the output */
    for (int w = 0; w < p->n_bad_words; w++) {
        int len = p->bad_words_len[w];
        if (len > no + 1) continue;
        int pre = len - 1, same = 1;
        for (int k = 0; k < pre; k++) same &= out[no - pre + k] == p->bad_words[w][k];
        if (same) l[p->bad_words[w][len - 1]] = -INFINITY;
    }
    /* min_tokens: all_stop_token_ids = stop_token_ids + eos */
    if (no < p->min_tokens) {
        for (int j = 0; j < p->n_stop_token_ids; j++) l[p->stop_token_ids[j]] = -INFINITY;
        for (int j = 0; j < n_eos; j++) l[eos[j]] = -INFINITY;
    }
    /* logit_bias: a dict (last wins), then logits[tok] += bias */
    memset(has_bias, 0, sizeof has_bias);
    for (int j = 0; j < p->n_logit_bias; j++) {
        has_bias[p->logit_bias[j].token] = 1;
        bias[p->logit_bias[j].token] = p->logit_bias[j].bias;
    }
    for (int i = 0; i < V; i++)
        if (has_bias[i]) l[i] += bias[i];
    /* apply_penalties */
    if (p->repetition_penalty == 1.0f && p->frequency_penalty == 0.0f && p->presence_penalty == 0.0f) return;
    memset(cnt, 0, sizeof cnt);
    memset(in_prompt, 0, sizeof in_prompt);
    for (int i = 0; i < np; i++) in_prompt[prompt[i]] = 1;
    for (int i = 0; i < no; i++) cnt[out[i]]++;
    for (int i = 0; i < V; i++) {
        float pen = (in_prompt[i] || cnt[i] > 0) ? p->repetition_penalty : 1.0f;
        float scale = l[i] > 0 ? 1.0f / pen : pen;
        l[i] *= scale;
    }
    for (int i = 0; i < V; i++) l[i] -= p->frequency_penalty * (float)cnt[i];
    for (int i = 0; i < V; i++) l[i] -= p->presence_penalty * (float)(cnt[i] > 0);
}

static int same_row(const float *a, const float *b) {
    for (int i = 0; i < V; i++)
        if (!(a[i] == b[i] || (isnan(a[i]) && isnan(b[i])))) {
            fprintf(stderr, "token %d: %.9g vs reference %.9g\n", i, a[i], b[i]);
            return 0;
        }
    return 1;
}

static void random_logits(float *l) {
    for (int i = 0; i < V; i++) l[i] = runif(-8.0f, 8.0f);
    for (int k = 0; k < 5; k++) l[rint_(V)] = 0.0f; /* exact zeros: the rep-penalty branch edge */
}

/* A token: mostly from a small pool so repeats happen. */
static int32_t rtok(void) { return rint_(4) ? rint_(40) : rint_(V); }

/* ---- random trials: whole generations, step by step ---- */
static void test_random(void) {
    enum { TRIALS = 300, MAXW = 6 };
    static float a[V], b[V];
    for (int t = 0; t < TRIALS; t++) {
        eng_sampling_params p;
        eng_params_default(&p);
        int32_t prompt[200], out[80], stop_ids[4], allowed[60], eos[2] = {rint_(V), rint_(40)};
        int32_t wtok[MAXW][4], *words[MAXW];
        int wlen[MAXW];
        eng_logit_bias lb[12];
        int np = rint_(4) ? rint_(200) : 0, n_eos = rint_(3);
        for (int i = 0; i < np; i++) prompt[i] = rtok();
        int final_len = 1 + rint_(80);
        p.max_tokens = final_len;
        for (int i = 0; i < final_len; i++) out[i] = rtok();
        if (rint_(2)) p.repetition_penalty = rint_(2) ? runif(0.5f, 2.0f) : runif(1.0f, 1.5f);
        if (rint_(2)) p.frequency_penalty = runif(-2.0f, 2.0f);
        if (rint_(2)) p.presence_penalty = runif(-2.0f, 2.0f);
        if (rint_(3) == 0) {
            p.n_allowed = 1 + rint_(60);
            for (int j = 0; j < p.n_allowed; j++) allowed[j] = j && rint_(5) == 0 ? allowed[j - 1] : rtok();
            p.allowed_token_ids = allowed;
        }
        if (rint_(2)) {
            p.n_stop_token_ids = rint_(4);
            for (int j = 0; j < p.n_stop_token_ids; j++) stop_ids[j] = rtok();
            p.stop_token_ids = stop_ids;
            p.min_tokens = rint_(final_len + 1);
        }
        if (rint_(2)) {
            p.n_logit_bias = 1 + rint_(12);
            for (int j = 0; j < p.n_logit_bias; j++) lb[j] = (eng_logit_bias){rtok(), runif(-10.0f, 10.0f)};
            p.logit_bias = lb;
        }
        if (rint_(2)) {
            p.n_bad_words = 1 + rint_(MAXW);
            for (int w = 0; w < p.n_bad_words; w++) {
                wlen[w] = 1 + rint_(4);
                /* copy a stretch of the output so prefixes do match at some step */
                int at = rint_(final_len);
                for (int k = 0; k < wlen[w]; k++) wtok[w][k] = at + k < final_len && rint_(6) ? out[at + k] : rtok();
                words[w] = wtok[w];
            }
            p.bad_words = words;
            p.bad_words_len = wlen;
        }
        CHECK_MSG(eng_params_validate(&p, V) == 0, "trial %d: %s", t, vc_errmsg());
        lp_state st;
        CHECK(lp_state_init(&st, &p, V, eos, n_eos, prompt, np) == 0);
        for (int no = 0; no <= final_len; no++) {
            random_logits(a);
            memcpy(b, a, sizeof a);
            CHECK(lp_apply(&st, out, no, a) == 0);
            ref_apply(&p, eos, n_eos, prompt, np, out, no, b);
            if (!same_row(a, b)) {
                fprintf(stderr, "trial %d, %d output tokens: mismatch\n", t, no);
                test_failures++;
                break;
            }
        }
        /* a restart from a shorter history (recount), then a changed last token */
        int no = final_len / 2;
        random_logits(a);
        memcpy(b, a, sizeof a);
        CHECK(lp_apply(&st, out, no, a) == 0);
        ref_apply(&p, eos, n_eos, prompt, np, out, no, b);
        CHECK(same_row(a, b));
        if (no > 0) {
            out[no - 1] = (int32_t)((out[no - 1] + 1) % V);
            random_logits(a);
            memcpy(b, a, sizeof a);
            CHECK(lp_apply(&st, out, no, a) == 0);
            ref_apply(&p, eos, n_eos, prompt, np, out, no, b);
            CHECK(same_row(a, b));
        }
        lp_state_free(&st);
    }
}

/* ---- hand-made cases ---- */

static lp_state st_of(const eng_sampling_params *p, const int32_t *eos, int n_eos, const int32_t *prompt, int np) {
    lp_state st;
    int rc = lp_state_init(&st, p, V, eos, n_eos, prompt, np);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    return st;
}

static void fill(float *l, float v) {
    for (int i = 0; i < V; i++) l[i] = v;
}

static void test_cases(void) {
    static float l[V];
    eng_sampling_params p;

    /* default parameters: inactive, row untouched */
    eng_params_default(&p);
    int32_t eos[] = {2};
    lp_state st = st_of(&p, eos, 1, NULL, 0);
    CHECK(st.active == 0);
    fill(l, 1.25f);
    int32_t o1[] = {5, 6, 7};
    CHECK(lp_apply(&st, o1, 3, l) == 0);
    int untouched = 1;
    for (int i = 0; i < V; i++) untouched &= l[i] == 1.25f;
    CHECK(untouched);
    lp_state_free(&st);

    /* bad words of length 1 and 3 on an empty and a growing output */
    int32_t w1[] = {9}, w3[] = {4, 5, 6};
    int32_t *words[] = {w1, w3};
    int lens[] = {1, 3};
    p.bad_words = words, p.bad_words_len = lens, p.n_bad_words = 2;
    st = st_of(&p, eos, 1, NULL, 0);
    int32_t out[] = {4, 5, 4, 4, 5};
    fill(l, 1.0f);
    CHECK(lp_apply(&st, out, 0, l) == 0);
    CHECK(l[9] == -INFINITY && l[6] == 1.0f); /* length 1 always; length 3 needs 2 outputs */
    fill(l, 1.0f);
    lp_apply(&st, out, 1, l);
    CHECK(l[6] == 1.0f);
    fill(l, 1.0f);
    lp_apply(&st, out, 2, l); /* ... 4 5 -> ban 6 */
    CHECK(l[6] == -INFINITY && l[9] == -INFINITY);
    fill(l, 1.0f);
    lp_apply(&st, out, 3, l); /* ... 5 4 */
    CHECK(l[6] == 1.0f);
    fill(l, 1.0f);
    lp_apply(&st, out, 5, l); /* ... 4 5 again */
    CHECK(l[6] == -INFINITY);
    lp_state_free(&st);
    p.bad_words = NULL, p.bad_words_len = NULL, p.n_bad_words = 0;

    /* bad words look at the output only, never the prompt */
    int32_t w2[] = {4, 6};
    int32_t *words2[] = {w2};
    int lens2[] = {2};
    p.bad_words = words2, p.bad_words_len = lens2, p.n_bad_words = 1;
    int32_t prompt4[] = {1, 4};
    st = st_of(&p, eos, 1, prompt4, 2);
    fill(l, 1.0f);
    lp_apply(&st, out, 0, l);
    CHECK(l[6] == 1.0f);
    lp_state_free(&st);
    p.bad_words = NULL, p.bad_words_len = NULL, p.n_bad_words = 0;

    /* min_tokens: banned below, free once reached exactly; EOS banned even with ignore_eos (vLLM) */
    int32_t stops[] = {17, 2};
    p.stop_token_ids = stops, p.n_stop_token_ids = 2, p.min_tokens = 2, p.ignore_eos = 1;
    int32_t eos2[] = {2, 3};
    st = st_of(&p, eos2, 2, NULL, 0);
    for (int no = 0; no <= 3; no++) {
        fill(l, 0.5f);
        lp_apply(&st, out, no, l);
        float want = no < 2 ? -INFINITY : 0.5f;
        CHECK(l[17] == want && l[2] == want && l[3] == want && l[4] == 0.5f);
    }
    lp_state_free(&st);
    eng_params_default(&p);

    /* allowed ids with duplicates; bias on a disallowed token stays -inf */
    int32_t allowed[] = {7, 5, 7, 999};
    eng_logit_bias lb[] = {{5, 2.0f}, {6, 50.0f}, {5, -1.0f}}; /* token 5: the last bias wins */
    p.allowed_token_ids = allowed, p.n_allowed = 4, p.logit_bias = lb, p.n_logit_bias = 3;
    st = st_of(&p, eos, 1, NULL, 0);
    fill(l, 3.0f);
    lp_apply(&st, out, 0, l);
    int finite = 0;
    for (int i = 0; i < V; i++) finite += isfinite(l[i]);
    CHECK(finite == 3 && l[7] == 3.0f && l[5] == 2.0f && l[999] == 3.0f && l[6] == -INFINITY);
    lp_state_free(&st);
    eng_params_default(&p);

    /* repetition penalty: positive divided, negative multiplied, zero kept;
     * prompt or output; frequency and presence on output only */
    p.repetition_penalty = 2.0f, p.frequency_penalty = 0.5f, p.presence_penalty = 0.25f;
    int32_t prompt[] = {10, 11, 12, 10};
    int32_t gen[] = {12, 13, 13, 13};
    st = st_of(&p, eos, 1, prompt, 4);
    fill(l, 0.0f);
    l[10] = 3.0f, l[11] = -2.0f, l[12] = 4.0f, l[13] = -1.0f, l[14] = 5.0f;
    lp_apply(&st, gen, 4, l);
    CHECK(l[10] == 1.5f && l[11] == -4.0f && l[14] == 5.0f);
    CHECK(l[12] == 2.0f - 0.5f - 0.25f);                /* in both: one rep penalty, count 1 */
    CHECK(l[13] == -2.0f - 1.5f - 0.25f);               /* output only, count 3 */
    CHECK(l[0] == 0.0f);
    lp_state_free(&st);

    /* order: logit_bias before the repetition penalty changes the branch */
    eng_params_default(&p);
    eng_logit_bias up[] = {{10, 3.0f}};
    p.logit_bias = up, p.n_logit_bias = 1, p.repetition_penalty = 2.0f;
    st = st_of(&p, eos, 1, prompt, 4);
    fill(l, 0.0f);
    l[10] = -1.0f;
    lp_apply(&st, NULL, 0, l);
    CHECK(l[10] == 1.0f); /* (-1 + 3) / 2, not -1 * 2 + 3 */
    lp_state_free(&st);

    /* order: min_tokens -inf is not undone by a bias or a negative penalty */
    eng_params_default(&p);
    int32_t stop1[] = {20};
    eng_logit_bias b20[] = {{20, 100.0f}};
    p.stop_token_ids = stop1, p.n_stop_token_ids = 1, p.min_tokens = 1, p.logit_bias = b20, p.n_logit_bias = 1;
    p.frequency_penalty = -2.0f, p.presence_penalty = -2.0f;
    st = st_of(&p, NULL, 0, NULL, 0);
    fill(l, 0.0f);
    lp_apply(&st, NULL, 0, l);
    CHECK(l[20] == -INFINITY);
    lp_state_free(&st);

    /* errors: an output id outside the vocabulary (with penalties), a bad prompt id */
    eng_params_default(&p);
    p.presence_penalty = 1.0f;
    st = st_of(&p, NULL, 0, NULL, 0);
    int32_t badout[] = {3, V};
    CHECK(lp_apply(&st, badout, 2, l) == VC_EINVAL);
    lp_state_free(&st);
    p.repetition_penalty = 1.5f;
    int32_t badprompt[] = {-1};
    lp_state s2;
    CHECK(lp_state_init(&s2, &p, V, NULL, 0, badprompt, 1) == VC_EINVAL);
    lp_state_free(&s2); /* zeroed on failure: safe */
}

/* ---- lp_logprobs against brute force ---- */
static void test_logprobs(void) {
    static float l[V];
    int32_t ids[64];
    float lps[64];
    for (int t = 0; t < 200; t++) {
        int n = t % 10 == 0 ? 1 + rint_(8) : V; /* some tiny vocabularies: k > n */
        for (int i = 0; i < n; i++) l[i] = (float)(rint_(400) - 200) / 16.0f; /* many ties */
        int k = rint_(4) == 0 ? 0 : 1 + rint_(30);
        int tok = rint_(2) ? rint_(n) : 0;
        if (rint_(2)) { /* often a top token */
            int best = 0;
            for (int i = 1; i < n; i++)
                if (l[i] > l[best]) best = i;
            tok = best;
        }
        float tlp = 0;
        int rank = 0;
        int got = lp_logprobs(l, n, tok, k, ids, lps, &tlp, &rank);
        /* brute force */
        double mx = -INFINITY, s = 0;
        for (int i = 0; i < n; i++) mx = fmax(mx, l[i]);
        for (int i = 0; i < n; i++) s += exp((double)l[i] - mx);
        double lse = mx + log(s);
        int want = k < n ? k : n, r = 0;
        CHECK(got == want);
        for (int i = 0; i < n; i++) r += l[i] >= l[tok];
        CHECK_MSG(rank == r, "rank %d, want %d", rank, r);
        CHECK_NEAR(tlp, (double)l[tok] - lse, 1e-5);
        for (int j = 0; j < got; j++) {
            /* the j-th best: count tokens strictly better, or equal with a lower id */
            int before = 0;
            for (int i = 0; i < n; i++) before += l[i] > l[ids[j]] || (l[i] == l[ids[j]] && i < ids[j]);
            CHECK(before == j);
            CHECK_NEAR(lps[j], (double)l[ids[j]] - lse, 1e-5);
        }
    }
    /* unique best: rank 1; out-of-range token: an error */
    for (int i = 0; i < V; i++) l[i] = (float)i;
    int rank = 0;
    CHECK(lp_logprobs(l, V, V - 1, 1, ids, lps, NULL, &rank) == 1 && rank == 1 && ids[0] == V - 1);
    CHECK(lp_logprobs(l, V, 0, 0, NULL, NULL, NULL, &rank) == 0 && rank == V);
    CHECK(lp_logprobs(l, V, V, 2, ids, lps, NULL, &rank) == VC_EINVAL);
}

int main(void) {
    test_random();
    test_cases();
    test_logprobs();
    TEST_END();
}
