/* The public API (include/vllmc.h only): a second thread adds and aborts
 * requests while the main thread steps; every request ends exactly once and
 * greedy results match a quiet run of the same prompt. */
#include <cjson/cJSON.h>
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

/* LoRA through the API: the HF peft golden of tests/golden/lora/llama-f32-all7, its case 4 (a 100-token
 * prompt): the first greedy token with the adapter (201, margin 1.47) is not the base model's (474). */
static int32_t first_token(vllmc_engine *e, const int32_t *prompt, int n, const char *lora) {
    vllmc_sampling_params p;
    vllmc_sampling_params_default(&p);
    p.temperature = 0;
    p.max_tokens = 1;
    int32_t t = -1;
    if (vllmc_add_request_lora(e, NULL, prompt, n, &p, 0, lora)) return -2;
    while (vllmc_has_unfinished(e)) {
        const vllmc_output *o;
        int no;
        if (vllmc_step(e, &o, &no)) return -3;
        for (int k = 0; k < no; k++)
            if (o[k].has_token) t = o[k].token;
    }
    return t;
}

static void test_lora_api(void) {
    static char text[1 << 20];
    int32_t prompt[128];
    int n = 0, want = -1;
    FILE *f = fopen("tests/golden/lora/llama-f32-all7/golden.json", "rb");
    size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[len] = 0;
    cJSON *g = cJSON_Parse(text);
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(g, "cases"), 4), *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(c, "prompt")) if (n < 128) prompt[n++] = (int32_t)x->valuedouble;
    x = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "greedy"), 0);
    if (x) want = (int)x->valuedouble;
    cJSON_Delete(g);
    CHECK(n == 100 && want == 201);
    vllmc_engine_args a;
    vllmc_engine_args_default(&a);
    a.model = "tests/golden/llama-f32";
    a.dtype = "float32";
    a.kv_cache_gib = 0.02;
    a.kv_cache_dtype = "float32";
    vllmc_engine *e = NULL;
    CHECK_MSG(vllmc_engine_create(&a, &e) == 0, "%s", vllmc_last_error());
    if (!e) return;
    CHECK(vllmc_add_request_lora(e, NULL, prompt, n, NULL, 0, "x") != 0 && strstr(vllmc_last_error(), "not enabled"));
    CHECK(first_token(e, prompt, n, NULL) == 474); /* the base model's golden */
    vllmc_engine_free(e);
    a.enable_lora = 1;
    CHECK_MSG(vllmc_engine_create(&a, &e) == 0, "%s", vllmc_last_error());
    if (!e) return;
    CHECK_MSG(vllmc_lora_load(e, "all7", "tests/golden/lora/llama-f32-all7") == 0, "%s", vllmc_last_error());
    CHECK(vllmc_lora_load(e, "all7", "tests/golden/lora/llama-f32-all7") != 0 && strstr(vllmc_last_error(), "already"));
    CHECK(first_token(e, prompt, n, "all7") == want); /* peft's greedy token */
    CHECK(first_token(e, prompt, n, NULL) == 474);
    CHECK(vllmc_lora_unload(e, "all7") == 0);
    CHECK(first_token(e, prompt, n, "all7") == -2 && strstr(vllmc_last_error(), "does not exist"));
    vllmc_engine_free(e);
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
    test_lora_api();
    TEST_END();
}
