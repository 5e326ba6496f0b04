/* test_model_gptoss: a whole tiny gpt-oss (GptOssForCausalLM) on the GPU against the CPU. The model is
 * made here: random weights (mdl_random, the same seed on both backends, so the same bytes) for a config
 * with MXFP4 experts, attention sinks, sliding and full layers alternating (a window of 4 tokens), YaRN,
 * q/k/v/o biases and top-2 routing of 4 experts. Three prompts (1, 6 and 30 tokens) run in one batch with
 * chunked prefill, greedy, every step's whole distribution returned: the GPU must give the CPU's tokens
 * (until the CPU's top-1/top-2 margin falls under the token tolerance, where a near tie may go either
 * way) and its log-probabilities within a tolerance per weight dtype (near-flat distributions of random
 * weights: the margins are small, so the token tolerance is tight). f32 weights with an f32 cache, then
 * bf16 weights with a bf16 cache (gpt-oss's own dtype). The GPU pass cuts decode contexts into splits
 * of 4 keys (VLLMC_VULKAN_ATTN_SPLIT) and submits in pieces of 7 dispatches, as test_golden does.
 *
 * MoE routing (issue 12): decode steps (and small prefill chunks) route on the device (moe_topk,
 * moe_matmul_ids; rn_moe_device_passes() must grow); each backend also runs with VLLMC_MOE_HOST_ROUTING=1
 * (every pass reads the router logits back): the GPU's host-routed run must match the CPU as well, and the
 * CPU's two paths must give the same bits (the CPU ops share the host path's routing and kernels).
 *
 * Backends: the CPU always; the GPU when be_open("gpu") succeeds (VLLMC_TEST_GPU=1: a failure if not). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/err.h"
#include "engine/offline.h"
#include "model/config.h"
#include "model/model.h"
#include "runner/runner.h"
#include "test.h"

#define STEPS 10
#define NREQ 3

static const char CONFIG[] =
    "{\"architectures\":[\"GptOssForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":32,"
    "\"num_hidden_layers\":4,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16,"
    "\"vocab_size\":64,\"num_local_experts\":4,\"experts_per_token\":2,\"max_position_embeddings\":512,"
    "\"sliding_window\":4,\"quantization_config\":{\"quant_method\":\"mxfp4\"},\"rope_theta\":150000,"
    "\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":8.0,\"original_max_position_embeddings\":64}}";

/* Greedy completions of the three prompts on backend `dev` with weights in dt (the cache too). */
static int run_on(const char *dev, be_dtype dt, off_completion *outs);

/* One run, with routing on the device (decode) or forced to the host, checking which one ran. */
static int run(const char *dev, be_dtype dt, int host, off_completion *outs) {
    if (host) setenv("VLLMC_MOE_HOST_ROUTING", "1", 1);
    uint64_t before = rn_moe_device_passes();
    int rc = run_on(dev, dt, outs);
    uint64_t passes = rn_moe_device_passes() - before;
    unsetenv("VLLMC_MOE_HOST_ROUTING");
    printf("  %s %s %s routing: %llu MoE passes routed on the device\n", dev, be_dtype_name(dt),
           host ? "host" : "device", (unsigned long long)passes);
    CHECK_MSG(host ? passes == 0 : passes > 0, "%s %s: %llu device-routed passes with host routing %s", dev,
              be_dtype_name(dt), (unsigned long long)passes, host ? "forced" : "allowed");
    return rc;
}

static int run_on(const char *dev, be_dtype dt, off_completion *outs) {
    model_config cfg;
    be_backend *be = NULL;
    mdl_model *m = NULL;
    eng_engine *e = NULL;
    int rc = cfg_parse(CONFIG, sizeof CONFIG - 1, "config.json", &cfg);
    if (!rc) rc = be_open(dev, &be);
    if (!rc) rc = mdl_random(&cfg, dt, 11, be, &m);
    int32_t prompts[NREQ][30];
    int lens[NREQ] = {1, 6, 30};
    for (int i = 0; i < NREQ; i++)
        for (int t = 0; t < lens[i]; t++) prompts[i][t] = (int32_t)((7 * i + 13 * t + 3) % 64);
    eng_sampling_params sp;
    eng_params_default(&sp);
    sp.temperature = 0, sp.max_tokens = STEPS, sp.ignore_eos = 1, sp.logprobs = 64;
    off_request rq[NREQ];
    for (int i = 0; i < NREQ; i++) rq[i] = (off_request){prompts[i], lens[i], &sp, 0, NULL};
    eng_config ec;
    eng_config_default(&ec);
    ec.kv_cache_gib = 0.01, ec.kv_dtype = dt, ec.max_logprobs = 64, ec.quiet = 1, ec.block_size = 4;
    ec.max_num_batched_tokens = 24; /* the 30-token prompt in two chunks, beside the others' steps */
    ec.max_num_seqs = 4;
    if (!rc) rc = eng_create(m, &ec, &e);
    if (!rc) rc = off_run(e, rq, NREQ, outs, NULL, NULL, NULL);
    CHECK_MSG(rc == 0, "%s %s: %s", dev, be_dtype_name(dt), vc_errmsg());
    eng_free(e);
    mdl_free(m);
    be_free(be);
    return rc;
}

/* The log-probability of token id in step s of completion c (NAN if not listed). */
static double lp_of(const off_completion *c, int s, int id) {
    for (int j = 0; j < c->lp_k; j++)
        if (c->lp_ids[s * c->lp_k + j] == id) return c->lp_vals[s * c->lp_k + j];
    return NAN;
}

static void compare(be_dtype dt, const off_completion *cpu, const off_completion *gpu) {
    /* bf16: a cached key or value may round to the other neighbour where the two backends' f32 values
     * differ in the last bit, which moves a log-probability by about 1e-3 at most */
    double tok_tol = dt == BE_F32 ? 1e-3 : 2e-3, lp_tol = dt == BE_F32 ? 1e-4 : 1e-2, worst = 0;
    int compared = 0;
    for (int i = 0; i < NREQ; i++) {
        const off_completion *a = &cpu[i], *b = &gpu[i];
        CHECK_MSG(a->n_tokens == STEPS && b->n_tokens == STEPS && a->lp_k == 64 && b->lp_k == 64,
                  "request %d: %d/%d tokens, %d/%d logprobs", i, a->n_tokens, b->n_tokens, a->lp_k, b->lp_k);
        if (a->n_tokens != STEPS || b->n_tokens != STEPS || a->lp_k != 64 || b->lp_k != 64) continue;
        for (int s = 0; s < STEPS; s++) {
            for (int id = 0; id < 64; id++) {
                double d = fabs(lp_of(a, s, id) - lp_of(b, s, id));
                worst = d <= worst ? worst : d == d ? d : INFINITY; /* NaN never passes */
            }
            compared++;
            double margin = a->lp_vals[s * 64] - a->lp_vals[s * 64 + 1];
            if (margin < tok_tol) break; /* a near tie: later steps may differ */
            CHECK_MSG(a->tokens[s] == b->tokens[s], "%s request %d step %d: gpu %d, cpu %d (margin %.3g)",
                      be_dtype_name(dt), i, s, b->tokens[s], a->tokens[s], margin);
            if (a->tokens[s] != b->tokens[s]) break;
        }
    }
    printf("  %s: %d steps compared, worst logprob difference %.2e (tol %.0e)\n", be_dtype_name(dt), compared, worst,
           lp_tol);
    CHECK_MSG(worst <= lp_tol, "%s: logprobs differ by %.3g > %.3g", be_dtype_name(dt), worst, lp_tol);
    CHECK_MSG(compared >= NREQ * 3, "%s: only %d steps compared (near ties)", be_dtype_name(dt), compared);
}

int main(void) {
    be_backend *probe = NULL;
    const char *req = getenv("VLLMC_TEST_GPU");
    setenv("VLLMC_VULKAN_ATTN_SPLIT", "4", 1);
    setenv("VLLMC_VULKAN_FLUSH_EVERY", "7", 1);
    if (be_open("gpu", &probe)) {
        CHECK_MSG(!(req && !strcmp(req, "1")), "gpu: be_open failed: %s", vc_errmsg());
        printf("gpu: skipped (%s)\n", vc_errmsg());
        TEST_END();
    }
    be_free(probe);
    static const be_dtype dts[2] = {BE_F32, BE_BF16};
    for (int d = 0; d < 2; d++) {
        off_completion cpu[NREQ], gpu[NREQ], cpu_h[NREQ], gpu_h[NREQ];
        memset(cpu, 0, sizeof cpu), memset(gpu, 0, sizeof gpu);
        memset(cpu_h, 0, sizeof cpu_h), memset(gpu_h, 0, sizeof gpu_h);
        if (run("cpu", dts[d], 0, cpu) == 0 && run("gpu", dts[d], 0, gpu) == 0) compare(dts[d], cpu, gpu);
        if (run("gpu", dts[d], 1, gpu_h) == 0) compare(dts[d], cpu, gpu_h);
        if (run("cpu", dts[d], 1, cpu_h) == 0)
            for (int i = 0; i < NREQ; i++) {
                int same = cpu[i].n_tokens == cpu_h[i].n_tokens && cpu[i].lp_k == cpu_h[i].lp_k &&
                           !memcmp(cpu[i].tokens, cpu_h[i].tokens, sizeof(int32_t) * (size_t)cpu[i].n_tokens) &&
                           !memcmp(cpu[i].lp_vals, cpu_h[i].lp_vals,
                                   sizeof(*cpu[i].lp_vals) * (size_t)cpu[i].n_tokens * (size_t)cpu[i].lp_k);
                CHECK_MSG(same, "%s request %d: the CPU's device and host routing differ", be_dtype_name(dts[d]), i);
            }
        off_free(cpu, NREQ), off_free(gpu, NREQ), off_free(cpu_h, NREQ), off_free(gpu_h, NREQ);
    }
    TEST_END();
}
