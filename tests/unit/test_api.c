/* The public API (include/vllmc.h only): a second thread adds and aborts
 * requests while the main thread steps; every request ends exactly once and
 * greedy results match a quiet run of the same prompt. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "test.h"
#include "vllmc.h"

enum { N = 40 };

typedef struct {
    vllmc_engine *e;
    int32_t prompts[N][8];
} feeder;

static void *feed(void *arg) {
    feeder *f = arg;
    vllmc_sampling_params p;
    vllmc_sampling_params_default(&p);
    p.temperature = 0;
    p.max_tokens = 6;
    p.ignore_eos = 1;
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%d", i);
        if (vllmc_add_request(f->e, id, f->prompts[i], 8, &p, 0) != 0) return (void *)1;
        if (i % 7 == 3) {
            snprintf(id, sizeof id, "t%d", i - 1);
            vllmc_abort(f->e, id);
        }
    }
    return NULL;
}

int main(void) {
    vllmc_engine_args a;
    vllmc_engine_args_default(&a);
    a.model = "tests/golden/qwen3-f32";
    a.dtype = "float32";
    a.max_num_seqs = 4;
    a.kv_cache_gib = 0.02;
    vllmc_engine *e = NULL;
    a.kv_cache_dtype = "fp8_e5m2"; /* refused before anything is opened */
    CHECK(vllmc_engine_create(&a, &e) != 0 && e == NULL && strstr(vllmc_last_error(), "no KV cache quantization"));
    a.kv_cache_dtype = "float32";
    a.gpu_memory_utilization = 1.5;
    CHECK(vllmc_engine_create(&a, &e) != 0 && e == NULL && strstr(vllmc_last_error(), "(0, 1]"));
    a.gpu_memory_utilization = 0.5; /* read on discrete GPUs only */
    int rc = vllmc_engine_create(&a, &e);
    CHECK_MSG(rc == 0, "%s", vllmc_last_error());
    if (rc) TEST_END();
    static feeder f;
    f.e = e;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 8; j++) f.prompts[i][j] = 3 + (i * 31 + j * 17) % 500;
    /* reference: prompt 0 alone */
    vllmc_sampling_params p;
    vllmc_sampling_params_default(&p);
    p.temperature = 0;
    p.max_tokens = 6;
    p.ignore_eos = 1;
    int32_t ref[6];
    int nref = 0;
    CHECK(vllmc_add_request(e, NULL, f.prompts[0], 8, &p, 0) == 0); /* named "req-0" by the engine */
    while (vllmc_has_unfinished(e)) {
        const vllmc_output *o;
        int n;
        CHECK(vllmc_step(e, &o, &n) == 0);
        for (int k = 0; k < n; k++) {
            CHECK(strcmp(o[k].request_id, "req-0") == 0);
            if (o[k].has_token && nref < 6) ref[nref++] = o[k].token;
        }
    }
    CHECK(nref == 6);
    pthread_t th;
    pthread_create(&th, NULL, feed, &f);
    int ended[N] = {0}, ntok[N] = {0}, aborted = 0, same0 = 1;
    int32_t got0[6];
    for (int spins = 0; spins < 1000000; spins++) {
        const vllmc_output *o;
        int n;
        CHECK(vllmc_step(e, &o, &n) == 0);
        for (int k = 0; k < n; k++) {
            int r;
            if (sscanf(o[k].request_id, "t%d", &r) != 1 || r < 0 || r >= N) continue;
            if (o[k].has_token) {
                if (r == 0 && ntok[0] < 6) got0[ntok[0]] = o[k].token;
                ntok[r]++;
            }
            if (o[k].finish) {
                ended[r]++;
                aborted += o[k].finish == VLLMC_FINISH_ABORT;
            }
        }
        int all = 1;
        for (int i = 0; i < N; i++) all &= ended[i] > 0;
        if (all && !vllmc_has_unfinished(e)) break;
    }
    void *ret;
    pthread_join(th, &ret);
    CHECK(ret == NULL);
    for (int i = 0; i < N; i++) {
        CHECK_MSG(ended[i] == 1, "request %d ended %d times", i, ended[i]);
        CHECK(ntok[i] <= 6);
    }
    for (int i = 0; i < 6; i++) same0 &= got0[i] == ref[i];
    CHECK_MSG(same0, "request 0 differs from its quiet run");
    printf("  %d of %d requests aborted (those aborted before they finished)\n", aborted, N);
    vllmc_engine_free(e);
    TEST_END();
}
