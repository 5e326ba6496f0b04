/* The model stack (stack.h): every flag is checked before anything is opened or downloaded, the
 * device is opened before the download, and what stk_open builds (folder, dummy weights from a
 * config.json, engine or not) and how the weights were placed (read vs used in place). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "stack.h"
#include "test.h"

/* rc is `code` and the message holds `want` */
static void expect_err_at(int line, int rc, int code, const char *want) {
    if (rc != code || !strstr(vc_errmsg(), want)) {
        fprintf(stderr, "test_stack.c:%d: rc %d (want %d), message '%s' (want '%s')\n", line, rc, code, vc_errmsg(),
                want);
        test_failures++;
    }
}
#define EXPECT_ERR(rc, code, want) expect_err_at(__LINE__, rc, code, want)

static stk_params params(const char *model) {
    stk_params p;
    stk_params_default(&p);
    p.model = model;
    p.quiet = 1;
    p.ec.quiet = 1;
    p.ec.kv_cache_gib = 0.01;
    return p;
}

static void test_check(void) {
    stk_params p;
    stk_params_default(&p);
    CHECK(p.tokenizer == 1 && p.engine == 1 && p.ec.kv_dtype == -1 && !p.load_dummy && !p.dtype && !p.device);
    EXPECT_ERR(stk_check(&p), VC_EINVAL, "no model");
    p = params("tests/golden/llama-f32");
    CHECK(stk_check(&p) == 0);
    p.dtype = "int8";
    EXPECT_ERR(stk_check(&p), VC_EINVAL, "unknown --dtype 'int8' (expected auto, half, float16, bfloat16, float, float32)");
    p = params("x");
    p.device = "tpu";
    EXPECT_ERR(stk_check(&p), VC_EINVAL, "--device 'tpu' is not available in this build (available: auto, cpu");
    p.device = "cpu";
    CHECK(stk_check(&p) == 0);

    static const struct {
        const char *flag;
        int want;
    } kv[] = {{"auto", -1}, {"bfloat16", BE_BF16}, {"float16", BE_F16}, {"float32", BE_F32}};
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) {
        p = params("x");
        p.kv_cache_dtype = kv[i].flag;
        CHECK_MSG(stk_check(&p) == 0 && p.ec.kv_dtype == kv[i].want, "--kv-cache-dtype %s", kv[i].flag);
    }
    static const char *const fp8[] = {"fp8", "fp8_e4m3", "fp8_e5m2"};
    for (size_t i = 0; i < sizeof fp8 / sizeof *fp8; i++) {
        p.kv_cache_dtype = fp8[i];
        EXPECT_ERR(stk_check(&p), VC_EUNSUP, "not supported: vllmc has no KV cache quantization");
    }
    p.kv_cache_dtype = "half";
    EXPECT_ERR(stk_check(&p), VC_EINVAL, "unknown --kv-cache-dtype 'half' (expected auto, bfloat16, float16, float32)");

    p = params("x");
    static const double bad[] = {-0.1, 1.01, 2};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p.ec.gpu_memory_utilization = bad[i];
        EXPECT_ERR(stk_check(&p), VC_EINVAL, "--gpu-memory-utilization must be in (0, 1]");
    }
    p.ec.gpu_memory_utilization = 0.5;
    CHECK(stk_check(&p) == 0);
}

/* A repo id with a bad flag fails on the flag, without asking the (unreachable) Hub. */
static void test_no_download_on_bad_flag(void) {
    char home[] = "/tmp/vllmc-test-stack-XXXXXX";
    CHECK(mkdtemp(home) != NULL);
    setenv("HF_HOME", home, 1);
    setenv("HF_ENDPOINT", "http://127.0.0.1:9", 1);
    unsetenv("HF_HUB_OFFLINE");
    unsetenv("HF_HUB_CACHE");
    stk_params p = params("test-org/tiny-llama");
    p.dtype = "fp8";
    stk_stack *s = (stk_stack *)1;
    EXPECT_ERR(stk_open(&p, &s), VC_EINVAL, "unknown --dtype 'fp8'");
    CHECK(s == NULL);
    p = params("test-org/tiny-llama");
    p.kv_cache_dtype = "fp8_e4m3";
    EXPECT_ERR(stk_open(&p, &s), VC_EUNSUP, "no KV cache quantization");
    p = params("test-org/tiny-llama");
    p.device = "tpu";
    EXPECT_ERR(stk_open(&p, &s), VC_EINVAL, "not available");
    /* and with good flags it does ask (and fails to connect): the flags above were the reason */
    p = params("test-org/tiny-llama");
    CHECK(stk_open(&p, &s) != 0 && strstr(vc_errmsg(), "127.0.0.1:9"));
    char hub[256];
    snprintf(hub, sizeof hub, "%s/hub", home);
    rmdir(hub);
    rmdir(home);
}

static void test_open(void) {
    stk_free(NULL);
    /* f32 checkpoint run in f32: every matmul weight is used in place from the mmap (CPU wraps host memory) */
    stk_params p = params("tests/golden/llama-f32");
    p.dtype = "float32";
    p.engine = 0;
    stk_stack *s = NULL;
    int rc = stk_open(&p, &s);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    if (!rc) {
        CHECK(s->model_dir && !strcmp(s->model_dir, "tests/golden/llama-f32") && s->be && s->m && !s->e);
        CHECK(s->tok == NULL); /* the folder has no tokenizer.json */
        CHECK(s->m->wdtype == BE_F32 && s->m->weight_bytes > 0);
        CHECK(s->m->bytes_in_place == s->m->weight_bytes && s->m->bytes_loaded == 0);
    }
    stk_free(s);
    /* the same checkpoint in f16: the matmul weights converted, only the f32 norms in place; an engine */
    p.dtype = "half";
    p.engine = 1;
    rc = stk_open(&p, &s);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    if (!rc) {
        CHECK(s->e != NULL && s->m->wdtype == BE_F16);
        CHECK(s->m->bytes_in_place + s->m->bytes_loaded == s->m->weight_bytes);
        CHECK(s->m->bytes_in_place > 0 && s->m->bytes_loaded > 20 * s->m->bytes_in_place);
    }
    stk_free(s);
    /* --load-format dummy: a config.json file (bench --random-weights) or a folder's */
    p = params("tests/golden/qwen3-bf16/config.json");
    p.load_dummy = 1;
    rc = stk_open(&p, &s);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    if (!rc) {
        CHECK(s->model_dir == NULL && s->m->st.n_files == 0 && s->m->wdtype == BE_BF16 && s->e);
        CHECK(s->m->bytes_loaded == s->m->weight_bytes && s->m->bytes_in_place == 0);
    }
    stk_free(s);
    p = params("tests/golden/qwen3-f32");
    p.load_dummy = 1;
    p.dtype = "bfloat16";
    rc = stk_open(&p, &s);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    if (!rc) CHECK(s->model_dir != NULL && s->m->st.n_files == 0 && s->m->wdtype == BE_BF16);
    stk_free(s);
    /* a failure after the backend opened leaves nothing behind (ASan checks the leak) */
    p = params("tests/golden/no-such-model");
    CHECK(stk_open(&p, &s) < 0 && strstr(vc_errmsg(), "no such model directory: tests/golden/no-such-model"));
    CHECK(s == NULL);
}

int main(void) {
    test_check();
    test_no_download_on_bad_flag();
    test_open();
    TEST_END();
}
