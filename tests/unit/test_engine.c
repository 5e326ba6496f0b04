/* The engine against itself and against the one-request-at-a-time path:
 * batching, chunked prefill, prefix caching and preemption must not change a
 * single greedy token (f32); seeded sampling must not depend on the batch;
 * n > 1, aborts, priorities, stop conditions and logprobs; and after every
 * run no block is left referenced. Uses the committed tiny golden models. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "base/err.h"
#include "engine/engine.h"
#include "runner/runner.h"
#include "test.h"

#define MAXR 16
#define MAXT 64

typedef struct {
    int32_t tok[MAXT];
    int n;
    eng_finish finish;
    int32_t stop_token;
    int cached;
    int seen_finish;
    float lp_first;
    int ntop_first;
} result;

static eng_sampling_params greedy(int max_tokens) {
    eng_sampling_params p;
    eng_params_default(&p);
    p.temperature = 0;
    p.max_tokens = max_tokens;
    p.ignore_eos = 1;
    return p;
}

/* Run requests "r0".."r{n-1}" (results[i * nmax + index]) to completion. */
static int run_all(eng_engine *e, int n, int32_t *const *prompts, const int *plen, const eng_sampling_params *sp,
                   const int *prio, result *res, int nmax) {
    memset(res, 0, sizeof *res * (size_t)n * (size_t)nmax);
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        if (eng_add(e, id, prompts[i], plen[i], &sp[i], prio ? prio[i] : 0)) {
            fprintf(stderr, "eng_add: %s\n", vc_errmsg());
            return -1;
        }
    }
    int steps = 0;
    while (eng_has_unfinished(e)) {
        const eng_output *o;
        int no;
        if (eng_step(e, &o, &no)) {
            fprintf(stderr, "eng_step: %s\n", vc_errmsg());
            return -1;
        }
        for (int k = 0; k < no; k++) {
            int r = atoi(o[k].request_id + 1);
            result *x = &res[r * nmax + o[k].index];
            if (o[k].has_token && x->n < MAXT) {
                if (x->n == 0) {
                    x->lp_first = o[k].token_logprob;
                    x->ntop_first = o[k].n_top;
                }
                x->tok[x->n++] = o[k].token;
            }
            if (o[k].finish) {
                x->finish = o[k].finish;
                x->stop_token = o[k].stop_token;
                x->cached = o[k].n_cached;
                x->seen_finish++;
            }
        }
        if (++steps > 100000) return -1;
    }
    return steps;
}

static eng_engine *mk(mdl_model *m, int bs, int max_seqs, int max_tokens, int caching, double gib, int mml) {
    eng_config c;
    eng_config_default(&c);
    c.block_size = bs;
    c.max_num_seqs = max_seqs;
    c.max_num_batched_tokens = max_tokens;
    c.enable_prefix_caching = caching;
    c.kv_cache_gib = gib;
    c.max_model_len = mml;
    c.max_logprobs = 1 << 20; /* some checks read the whole distribution */
    c.quiet = 1;
    eng_engine *e = NULL;
    if (eng_create(m, &c, &e)) fprintf(stderr, "eng_create: %s\n", vc_errmsg());
    return e;
}

static int same(const result *a, const result *b) { return a->n == b->n && !memcmp(a->tok, b->tok, sizeof(int32_t) * (size_t)a->n); }

/* Every check below on one backend: the same greedy tokens batched or alone holds on any device,
 * since each run is compared with a reference made on that device. */
static void run_suite(be_backend *be) {
    mdl_model *m = NULL;
    CHECK_MSG(mdl_load("tests/golden/llama-f32", "float32", be, &m) == 0, "%s: %s", be->name, vc_errmsg());
    if (!m) return;
    /* prompts: several share a 40-token prefix, lengths 1..90 */
    static int32_t buf[MAXR][128];
    int32_t *pr[MAXR];
    int pl[MAXR];
    uint64_t x = 99;
    for (int i = 0; i < MAXR; i++) {
        pl[i] = 1 + (i * 37) % 90;
        for (int j = 0; j < pl[i]; j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i][j] = (i % 3 == 0 && j < 40) ? 3 + j * 7 % 500 : 3 + (int)(x % 500);
        }
        pr[i] = buf[i];
    }
    eng_sampling_params sp[MAXR];
    for (int i = 0; i < MAXR; i++) sp[i] = greedy(12 + i % 9);

    /* 1. reference: one request at a time, big budget, no prefix caching */
    static result ref[MAXR], got[MAXR];
    eng_engine *e = mk(m, 16, 8, 512, 0, 0.01, 256);
    for (int i = 0; i < MAXR; i++) {
        result r;
        CHECK(run_all(e, 1, &pr[i], &pl[i], &sp[i], NULL, &r, 1) > 0);
        ref[i] = r;
        CHECK(ref[i].n == sp[i].max_tokens && ref[i].finish == ENG_FINISH_LENGTH);
    }
    CHECK(eng_check_kv(e, 0) == 0);
    eng_free(e);

    /* 2. all at once, chunked prefill (budget 24 tokens), 5 sequences a step, prefix caching on */
    e = mk(m, 16, 5, 24, 1, 0.01, 256);
    CHECK(run_all(e, MAXR, pr, pl, sp, NULL, got, 1) > 0);
    for (int i = 0; i < MAXR; i++) CHECK_MSG(same(&got[i], &ref[i]), "batched+chunked request %d differs", i);
    CHECK(eng_check_kv(e, 0) == 0);
    /* the same prompts again: full blocks come from the prefix cache, same tokens */
    CHECK(run_all(e, MAXR, pr, pl, sp, NULL, got, 1) > 0);
    int cached = 0;
    for (int i = 0; i < MAXR; i++) {
        CHECK_MSG(same(&got[i], &ref[i]), "prefix-cached request %d differs", i);
        cached += got[i].cached;
        CHECK(got[i].cached == (pl[i] - 1) / 16 * 16);
    }
    CHECK(cached > 0);
    eng_stats st = eng_get_stats(e);
    CHECK(st.prefix_hits > 0 && st.prefix_queries >= st.prefix_hits);
    CHECK(eng_check_kv(e, 0) == 0);
    eng_free(e);

    /* 3. preemption: a cache of 16 blocks of 8 tokens for 16 sequences of up to 110 tokens */
    double gib = 16.0 * rn_kv_bytes_per_block(m, 8, BE_F32) / (1024.0 * 1024.0 * 1024.0) * 1.0001;
    e = mk(m, 8, 8, 64, 1, gib, 96 + 16);
    CHECK(e != NULL);
    if (e) {
        CHECK(run_all(e, MAXR, pr, pl, sp, NULL, got, 1) > 0);
        for (int i = 0; i < MAXR; i++) CHECK_MSG(same(&got[i], &ref[i]), "preempted request %d differs", i);
        CHECK_MSG(eng_get_stats(e).preemptions > 0, "no preemption happened");
        CHECK(eng_check_kv(e, 0) == 0);
        eng_free(e);
    }

    /* 4. seeded sampling does not depend on the batch; n > 1 completion i uses seed + i */
    eng_sampling_params s = greedy(16);
    s.temperature = 1.2f;
    s.top_p = 0.9f;
    s.top_k = 40;
    s.has_seed = 1;
    s.seed = 1234;
    result alone, alone1, many[MAXR];
    e = mk(m, 16, 8, 64, 1, 0.01, 256);
    CHECK(run_all(e, 1, &pr[2], &pl[2], &s, NULL, &alone, 1) > 0);
    eng_sampling_params s1 = s;
    s1.seed = 1235;
    CHECK(run_all(e, 1, &pr[2], &pl[2], &s1, NULL, &alone1, 1) > 0);
    eng_sampling_params mix[MAXR];
    for (int i = 0; i < MAXR; i++) mix[i] = i == 5 ? s : sp[i];
    int32_t *pr5[MAXR];
    memcpy(pr5, pr, sizeof pr5);
    int pl5[MAXR];
    memcpy(pl5, pl, sizeof pl5);
    pr5[5] = pr[2];
    pl5[5] = pl[2];
    CHECK(run_all(e, MAXR, pr5, pl5, mix, NULL, many, 1) > 0);
    CHECK_MSG(same(&many[5], &alone), "seeded request changed when batched");
    CHECK_MSG(!same(&alone, &alone1), "different seeds gave the same 16 tokens");
    eng_sampling_params sn = s;
    sn.n = 3;
    result kids[3];
    CHECK(run_all(e, 1, &pr[2], &pl[2], &sn, NULL, kids, 3) > 0);
    CHECK_MSG(same(&kids[0], &alone) && same(&kids[1], &alone1), "n=3 completions are not seed+i");
    CHECK(kids[2].n == 16 && kids[0].seen_finish == 1 && kids[2].seen_finish == 1);
    CHECK(eng_check_kv(e, 0) == 0);
    /* those top_k draws came from each row's best few (the device's topk where the backend has it), and
     * give the tokens of whole rows read back (VLLMC_NO_TOPK_STEP=1), alone and batched */
    eng_stats ts = eng_get_stats(e);
    CHECK_MSG(ts.topk_rows >= 16 * 3 && ts.topk_full_rows < ts.topk_rows, "%s: %llu top-k rows, %llu read whole",
              be->name, (unsigned long long)ts.topk_rows, (unsigned long long)ts.topk_full_rows);
    eng_free(e);
    setenv("VLLMC_NO_TOPK_STEP", "1", 1);
    e = mk(m, 16, 8, 64, 1, 0.01, 256);
    unsetenv("VLLMC_NO_TOPK_STEP");
    result w_alone, w_many[MAXR];
    CHECK(run_all(e, 1, &pr[2], &pl[2], &s, NULL, &w_alone, 1) > 0);
    CHECK(run_all(e, MAXR, pr5, pl5, mix, NULL, w_many, 1) > 0);
    CHECK_MSG(same(&w_alone, &alone) && same(&w_many[5], &alone), "%s: top_k sampling from the whole rows differs",
              be->name);
    CHECK(eng_get_stats(e).topk_rows == 0);

    /* 5. stop conditions and logprobs */
    eng_sampling_params st1 = greedy(20);
    st1.n_stop_token_ids = 1;
    st1.stop_token_ids = (int32_t[]){ref[1].tok[3]};
    st1.logprobs = 4;
    result r5;
    CHECK(run_all(e, 1, &pr[1], &pl[1], &st1, NULL, &r5, 1) > 0);
    int first = 0;
    while (ref[1].tok[first] != ref[1].tok[3]) first++;
    CHECK(r5.n == first + 1 && r5.finish == ENG_FINISH_STOP && r5.stop_token == ref[1].tok[3]);
    CHECK(r5.ntop_first == 4 && r5.lp_first <= 0 && r5.lp_first > -30);
    eng_sampling_params mt = greedy(20);
    mt.min_tokens = 20;
    mt.n_stop_token_ids = 1;
    mt.stop_token_ids = (int32_t[]){ref[1].tok[0]};
    CHECK(run_all(e, 1, &pr[1], &pl[1], &mt, NULL, &r5, 1) > 0);
    CHECK(r5.n == 20 && r5.finish == ENG_FINISH_LENGTH);
    for (int i = 0; i < r5.n; i++) CHECK(r5.tok[i] != ref[1].tok[0]);
    CHECK(eng_check_kv(e, 0) == 0);
    eng_free(e);

    /* 5b. prompt_logprobs: entry p equals the logprob that decoding the prefix
     * tokens[0..p) gives the token p (a different path through the engine),
     * also when the prompt is cut into chunks by the prompt-logprob row budget */
    {
        static int32_t longp[300];
        for (int i = 0; i < 300; i++) longp[i] = 3 + (i * 7919) % 500;
        eng_sampling_params pl = greedy(1);
        pl.prompt_logprobs = 2;
        eng_engine *e2 = mk(m, 16, 4, 512, 1, 0.01, 512);
        const eng_output *o2;
        int n2;
        CHECK(eng_add(e2, "plp", longp, 300, &pl, 0) == 0);
        float plp[300];
        int got_plp = 0;
        while (eng_has_unfinished(e2)) {
            CHECK(eng_step(e2, &o2, &n2) == 0);
            for (int k = 0; k < n2; k++)
                if (o2[k].prompt_token_logprob) {
                    memcpy(plp, o2[k].prompt_token_logprob, sizeof plp);
                    got_plp = 1;
                    CHECK(o2[k].prompt_lp_k == 2 && o2[k].prompt_lp_ids[2 * 5] >= 0);
                    CHECK(o2[k].n_cached == 0);
                }
        }
        CHECK(got_plp);
        int at[] = {1, 17, 128, 129, 299};
        for (int a = 0; a < 5 && got_plp; a++) {
            int p = at[a];
            eng_sampling_params all = greedy(1);
            all.logprobs = m->cfg.vocab_size; /* the whole distribution of the prefix's next token */
            CHECK(eng_add(e2, "ref", longp, p, &all, 0) == 0);
            float want = 1;
            while (eng_has_unfinished(e2)) {
                CHECK(eng_step(e2, &o2, &n2) == 0);
                for (int k = 0; k < n2; k++)
                    for (int q = 0; o2[k].has_token && q < o2[k].n_top; q++)
                        if (o2[k].top_ids[q] == longp[p]) want = o2[k].top_logprobs[q];
            }
            CHECK_MSG(want <= 0, "position %d: token not in the full distribution", p);
            CHECK_MSG(fabs(plp[p] - want) < 1e-3, "prompt_logprobs[%d] = %g, prefix decode gives %g", p, plp[p], want);
        }
        /* a direct check for every position: top-1 of entry p is never below the token's own logprob */
        CHECK(eng_check_kv(e2, 0) == 0);
        eng_free(e2);
    }

    /* 6. abort mid-generation frees everything; priorities order admission */
    e = mk(m, 16, 1, 256, 1, 0.01, 256);
    eng_sampling_params longp = greedy(40);
    CHECK(eng_add(e, "a", pr[0], pl[0], &longp, 0) == 0);
    CHECK(eng_add(e, "b", pr[1], pl[1], &longp, 0) == 0);
    const eng_output *o;
    int no, aborted = 0;
    for (int i = 0; i < 5; i++) CHECK(eng_step(e, &o, &no) == 0);
    CHECK(eng_abort(e, "a", -1, ENG_FINISH_ABORT) == 0);
    CHECK(eng_abort(e, "b", -1, ENG_FINISH_ABORT) == 0); /* waiting: max_num_seqs 1 */
    CHECK(eng_step(e, &o, &no) == 0);
    for (int k = 0; k < no; k++) aborted += o[k].finish == ENG_FINISH_ABORT;
    CHECK(aborted == 2);
    CHECK(!eng_has_unfinished(e) || (eng_step(e, &o, &no) == 0 && !eng_has_unfinished(e)));
    CHECK(eng_check_kv(e, 0) == 0);
    int prio[3] = {5, 0, 1};
    eng_sampling_params ps[3] = {greedy(3), greedy(3), greedy(3)};
    CHECK(eng_add(e, "p0", pr[0], pl[0], &ps[0], prio[0]) == 0);
    eng_free(e); /* a live request at free: no leak under ASan */

    eng_config c;
    eng_config_default(&c);
    c.max_num_seqs = 1;
    c.policy = ENG_PRIORITY;
    c.kv_cache_gib = 0.01;
    c.quiet = 1;
    CHECK(eng_create(m, &c, &e) == 0);
    const char *order[3];
    int nord = 0;
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "p%d", i);
        CHECK(eng_add(e, id, pr[i], pl[i], &ps[i], prio[i]) == 0);
    }
    static char names[3][8];
    while (eng_has_unfinished(e)) {
        CHECK(eng_step(e, &o, &no) == 0);
        for (int k = 0; k < no; k++)
            if (o[k].finish && nord < 3) {
                snprintf(names[nord], 8, "%s", o[k].request_id);
                order[nord] = names[nord];
                nord++;
            }
    }
    CHECK(nord == 3 && !strcmp(order[0], "p1") && !strcmp(order[1], "p2") && !strcmp(order[2], "p0"));
    eng_free(e);

    /* 7. configuration errors are clear */
    e = NULL;
    eng_config_default(&c);
    c.kv_cache_gib = 1e-6;
    c.quiet = 1;
    CHECK(eng_create(m, &c, &e) != 0 && strstr(vc_errmsg(), "KV cache") != NULL);
    eng_config_default(&c);
    c.max_model_len = 100000;
    CHECK(eng_create(m, &c, &e) != 0 && strstr(vc_errmsg(), "max_position_embeddings") != NULL);
    mdl_free(m);
}

int main(void) {
    /* every backend this build and machine have, as test_golden.c: the CPU, and the GPU where
     * be_open("gpu") finds one (lavapipe in CI, which sets VLLMC_TEST_GPU=1 so that a missing
     * GPU fails) */
    const char *req = getenv("VLLMC_TEST_GPU");
    for (int d = 0; d < 2; d++) {
        be_backend *be = NULL;
        int rc = d == 0 ? be_cpu_create(&be, 0, NULL) : be_open("gpu", &be);
        if (rc && d == 1 && !(req && !strcmp(req, "1"))) {
            printf("  gpu: skipped (%s)\n", vc_errmsg());
            continue;
        }
        CHECK_MSG(rc == 0, "%s: %s", d == 0 ? "cpu" : "gpu", vc_errmsg());
        if (rc) continue;
        int before = test_failures;
        run_suite(be);
        printf("  %s backend: %s\n", be->name, test_failures == before ? "ok" : "FAILED (CHECK lines above)");
        be_free(be);
    }
    TEST_END();
}
