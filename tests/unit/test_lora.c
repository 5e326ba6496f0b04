/* LoRA in the engine (step 8), against itself: a mixed batch of adapters gives each request exactly
 * what it gets alone; an adapter whose B is zero gives the base model's outputs; a real adapter
 * changes them; --max-loras 1 with two adapters still runs every request (one adapter per step) to
 * the same outputs; the prefix cache never shares blocks between adapters, or with the base model;
 * bad uses are refused. HF peft goldens (test_lora_golden) check the values themselves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "base/err.h"
#include "engine/engine.h"
#include "test.h"

#define NR 6
#define MAXT 16

typedef struct {
    int32_t tok[MAXT];
    int n, cached;
    float lp0;
} result;

/* A random adapter on the modules in `mask` at rank r (B zero when zero_b). */
static eng_lora *make_adapter(const mdl_model *m, int id, unsigned mask, int r, int zero_b, uint64_t seed) {
    eng_lora *l = NULL;
    CHECK(eng_lora_random(&m->cfg, m->wdtype, id, mask, r, zero_b, seed, &l) == 0);
    return l;
}

/* The test's reference is the last: the engines dropped theirs (slots, sequences). */
static void drop(eng_lora *l) {
    if (!l) return;
    CHECK(eng_lora_refs(l) == 1);
    eng_lora_unref(l);
}

static eng_engine *mk(mdl_model *m, int max_loras, int caching) {
    eng_config c;
    eng_config_default(&c);
    c.block_size = 16;
    c.max_num_seqs = 8;
    c.max_num_batched_tokens = 256;
    c.enable_prefix_caching = caching;
    c.kv_cache_gib = 0.01;
    c.max_model_len = 256;
    c.quiet = 1;
    c.max_loras = max_loras;
    c.max_lora_rank = 8;
    eng_engine *e = NULL;
    if (eng_create(m, &c, &e)) fprintf(stderr, "eng_create: %s\n", vc_errmsg());
    return e;
}

/* Run requests i in [0, n) with adapters lo[i] (NULL: base) to completion. */
static int run(eng_engine *e, int n, int32_t *const *pr, const int *pl, eng_lora *const *lo, result *res) {
    memset(res, 0, sizeof *res * (size_t)n);
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        eng_sampling_params sp;
        eng_params_default(&sp);
        sp.temperature = 0;
        sp.max_tokens = 10;
        sp.ignore_eos = 1;
        sp.logprobs = 0;
        if (eng_add_lora(e, id, pr[i], pl[i], &sp, 0, lo[i])) {
            fprintf(stderr, "eng_add_lora: %s\n", vc_errmsg());
            return -1;
        }
    }
    for (int steps = 0; eng_has_unfinished(e); steps++) {
        const eng_output *o;
        int no;
        if (steps > 10000 || eng_step(e, &o, &no)) {
            fprintf(stderr, "eng_step: %s\n", vc_errmsg());
            return -1;
        }
        for (int k = 0; k < no; k++) {
            result *x = &res[atoi(o[k].request_id + 1)];
            if (o[k].has_token && x->n < MAXT) {
                if (x->n == 0) x->lp0 = o[k].token_logprob;
                x->tok[x->n++] = o[k].token;
            }
            if (o[k].finish) x->cached = o[k].n_cached;
        }
    }
    return 0;
}

static int same(const result *a, const result *b) { return a->n == b->n && !memcmp(a->tok, b->tok, sizeof(int32_t) * (size_t)a->n); }

static void run_suite(be_backend *be) {
    mdl_model *m = NULL;
    CHECK_MSG(mdl_load("tests/golden/llama-f32", "float32", be, &m) == 0, "%s: %s", be->name, vc_errmsg());
    if (!m) return;
    static int32_t buf[NR][64];
    int32_t *pr[NR];
    int pl[NR];
    for (int i = 0; i < NR; i++) {
        pl[i] = 5 + 9 * i;
        for (int j = 0; j < pl[i]; j++) buf[i][j] = 3 + (j * 31 + i * 17) % 500;
        pr[i] = buf[i];
    }
    eng_lora *A = make_adapter(m, 1, 0x7f, 4, 0, 7), *B = make_adapter(m, 2, 1u << RN_LORA_Q | 1u << RN_LORA_V, 2, 0, 9),
             *Z = make_adapter(m, 3, 0x7f, 4, 1, 11);
    eng_lora *mixed[NR] = {NULL, A, B, A, Z, B}, *base[NR] = {0};
    result alone[NR], got[NR], b0[NR];
    eng_engine *e = mk(m, 2, 0);
    CHECK(e != NULL);
    if (!e) goto out;
    /* alone: one request per run */
    for (int i = 0; i < NR; i++) CHECK(run(e, 1, &pr[i], &pl[i], &mixed[i], &alone[i]) == 0);
    CHECK(run(e, NR, pr, pl, base, b0) == 0);
    /* mixed: all in one batch (three adapters and the base with 2 slots: the scheduler spreads them) */
    CHECK(run(e, NR, pr, pl, mixed, got) == 0);
    int changed = 0;
    for (int i = 0; i < NR; i++) {
        CHECK_MSG(same(&got[i], &alone[i]), "request %d: mixed batch differs from alone", i);
        CHECK_NEAR(got[i].lp0, alone[i].lp0, 1e-4);
        if (mixed[i] == Z) {
            CHECK_MSG(same(&got[i], &b0[i]), "request %d: a zero-B adapter changed the output", i);
            CHECK_NEAR(got[i].lp0, b0[i].lp0, 1e-6);
        }
        if (mixed[i] == A || mixed[i] == B) changed += !same(&got[i], &b0[i]) || fabsf(got[i].lp0 - b0[i].lp0) > 1e-3f;
    }
    CHECK_MSG(changed == 4, "the adapters changed %d of 4 requests", changed);
    eng_free(e);
    /* one slot, two adapters at once: one adapter per step, the same outputs */
    e = mk(m, 1, 0);
    CHECK(e && run(e, NR, pr, pl, mixed, got) == 0);
    for (int i = 0; e && i < NR; i++) CHECK_MSG(same(&got[i], &alone[i]), "max_loras 1: request %d differs", i);
    eng_free(e);
    /* prefix cache: adapter A's blocks are not the base model's, nor B's */
    e = mk(m, 2, 1);
    int32_t *p5[1] = {pr[5]};
    int l5[1] = {pl[5]};
    result ra, r1;
    eng_lora *la[1] = {A}, *lb[1] = {B}, *ln[1] = {NULL};
    CHECK(e && run(e, 1, p5, l5, la, &ra) == 0 && ra.cached == 0);
    CHECK(e && run(e, 1, p5, l5, ln, &r1) == 0 && r1.cached == 0 && same(&r1, &b0[5]));
    CHECK(e && run(e, 1, p5, l5, lb, &r1) == 0 && r1.cached == 0 && same(&r1, &alone[5]));
    CHECK(e && run(e, 1, p5, l5, la, &r1) == 0 && r1.cached > 0 && same(&r1, &ra));
    CHECK(e && run(e, 1, p5, l5, lb, &r1) == 0 && r1.cached > 0 && same(&r1, &alone[5]));
    eng_free(e);
    /* refused: an adapter without --enable-lora, a rank above max_lora_rank */
    e = mk(m, 0, 0);
    eng_sampling_params sp;
    eng_params_default(&sp);
    CHECK(e && eng_add_lora(e, "x", pr[0], pl[0], &sp, 0, A) != 0 && strstr(vc_errmsg(), "LoRA is not enabled"));
    eng_free(e);
    eng_lora *big = make_adapter(m, 4, 1, 16, 0, 3);
    e = mk(m, 2, 0);
    CHECK(e && eng_add_lora(e, "x", pr[0], pl[0], &sp, 0, big) != 0 && strstr(vc_errmsg(), "max_lora_rank"));
    eng_free(e);
    drop(big);
out:
    drop(A);
    drop(B);
    drop(Z);
    mdl_free(m);
}

int main(void) {
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
