/* vllmc generate: offline generation from token-id prompts, one JSON line per prompt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "base/err.h"
#include "cli/cli.h"
#include "engine/gen.h"
#include "model/model.h"

static const char usage[] =
    "usage: vllmc generate MODEL_DIR --prompt-token-ids 1,5,9 [--prompt-token-ids ...] --max-tokens N\n"
    "       [--temperature T] [--top-p P] [--top-k K] [--min-p M] [--seed S] [--dtype D]\n"
    "       [--device auto|cpu] [--logprobs K] [--ignore-eos] [--block-size B] --json\n"
    "Without --temperature decoding is greedy.\n";

static void print_output(const gen_request *rq, const gen_output *o) {
    printf("{\"prompt_token_ids\":[");
    for (int j = 0; j < rq->prompt_len; j++) printf("%s%d", j ? "," : "", rq->prompt[j]);
    printf("],\"token_ids\":[");
    for (int j = 0; j < o->n_tokens; j++) printf("%s%d", j ? "," : "", o->tokens[j]);
    printf("],\"logprobs\":");
    if (o->lp_k > 0) {
        printf("[");
        for (int j = 0; j < o->n_tokens; j++) {
            printf("%s{", j ? "," : "");
            for (int q = 0; q < o->lp_k; q++)
                printf("%s\"%d\":%.9g", q ? "," : "", o->lp_ids[(size_t)j * o->lp_k + q], o->lp_vals[(size_t)j * o->lp_k + q]);
            printf("}");
        }
        printf("]");
    } else {
        printf("null");
    }
    printf(",\"finish_reason\":\"%s\"}\n", o->finish_stop ? "stop" : "length");
}

int cli_generate(int argc, char **argv) {
    const char *dir = NULL, *dtype = NULL, *device = NULL;
    int json = 0, ignore_eos = 0, np = 0, logprobs = 0, block_size = 16;
    long long max_tokens = 16, seed = -1;
    samp_params sp = {.temperature = 0.0f, .top_p = 1.0f, .top_k = 0, .min_p = 0.0f};
    int32_t **prompts = calloc((size_t)argc + 1, sizeof *prompts);
    int *plen = calloc((size_t)argc + 1, sizeof *plen);
    int status = 2;
    be_backend *be = NULL;
    mdl_model *m = NULL;
    gen_request *reqs = NULL;
    gen_output *outs = NULL;
    if (!prompts || !plen) goto done;
    cli_args a = {argc, 0, argv, NULL};
    while (a.i < argc) {
        const char *v;
        long long iv;
        double fv;
        if (cli_flag(&a, "--prompt-token-ids")) {
            if (!(v = cli_value(&a, "--prompt-token-ids")) || cli_parse_ids(v, &prompts[np], &plen[np])) goto done;
            np++;
        } else if (cli_flag(&a, "--max-tokens")) {
            if (!(v = cli_value(&a, "--max-tokens")) || cli_parse_int(v, "--max-tokens", 1, 1 << 24, &max_tokens)) goto done;
        } else if (cli_flag(&a, "--temperature")) {
            if (!(v = cli_value(&a, "--temperature")) || cli_parse_float(v, "--temperature", &fv)) goto done;
            sp.temperature = (float)fv;
        } else if (cli_flag(&a, "--top-p")) {
            if (!(v = cli_value(&a, "--top-p")) || cli_parse_float(v, "--top-p", &fv)) goto done;
            sp.top_p = (float)fv;
        } else if (cli_flag(&a, "--top-k")) {
            if (!(v = cli_value(&a, "--top-k")) || cli_parse_int(v, "--top-k", -1, 1 << 30, &iv)) goto done;
            sp.top_k = (int)iv;
        } else if (cli_flag(&a, "--min-p")) {
            if (!(v = cli_value(&a, "--min-p")) || cli_parse_float(v, "--min-p", &fv)) goto done;
            sp.min_p = (float)fv;
        } else if (cli_flag(&a, "--seed")) {
            if (!(v = cli_value(&a, "--seed")) || cli_parse_int(v, "--seed", INT64_MIN, INT64_MAX, &seed)) goto done;
        } else if (cli_flag(&a, "--logprobs")) {
            if (!(v = cli_value(&a, "--logprobs")) || cli_parse_int(v, "--logprobs", 0, 1 << 20, &iv)) goto done;
            logprobs = (int)iv;
        } else if (cli_flag(&a, "--block-size")) {
            if (!(v = cli_value(&a, "--block-size")) || cli_parse_int(v, "--block-size", 1, 1024, &iv)) goto done;
            block_size = (int)iv;
        } else if (cli_flag(&a, "--dtype")) {
            if (!(dtype = cli_value(&a, "--dtype"))) goto done;
        } else if (cli_flag(&a, "--device")) {
            if (!(device = cli_value(&a, "--device"))) goto done;
        } else if (cli_flag(&a, "--ignore-eos")) {
            ignore_eos = 1;
        } else if (cli_flag(&a, "--json")) {
            json = 1;
        } else if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(usage, stdout);
            status = 0;
            goto done;
        } else if (argv[a.i][0] == '-' && argv[a.i][1] == '-') {
            cli_error("generate: unknown option '%s'", argv[a.i]);
            goto done;
        } else if (!dir) {
            dir = argv[a.i++];
        } else {
            cli_error("generate: unexpected argument '%s'", argv[a.i]);
            goto done;
        }
    }
    if (!dir || np == 0) {
        cli_error("generate: a MODEL_DIR and at least one --prompt-token-ids are required");
        fputs(usage, stderr);
        goto done;
    }
    if (!json) {
        cli_error("generate: only --json output is supported; pass --json");
        goto done;
    }
    status = 1;
    if (cli_open_backend(device, &be)) goto done;
    if (mdl_load(dir, dtype, be, &m)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    reqs = calloc((size_t)np, sizeof *reqs);
    outs = calloc((size_t)np, sizeof *outs);
    if (!reqs || !outs) goto done;
    uint64_t base_seed = seed >= 0 ? (uint64_t)seed : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
    for (int i = 0; i < np; i++)
        reqs[i] = (gen_request){prompts[i], plen[i], (int)max_tokens, ignore_eos, sp,
                                seed >= 0 ? base_seed : base_seed + (uint64_t)i, logprobs};
    gen_options go = {.block_size = block_size, .max_batch_tokens = 2048};
    gen_timing t;
    if (gen_run(m, &go, reqs, np, outs, &t)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    for (int i = 0; i < np; i++) print_output(&reqs[i], &outs[i]);
    status = fflush(stdout) == 0 ? 0 : 1;
done:
    for (int i = 0; i < np; i++) {
        if (outs) gen_output_free(&outs[i]);
        free(prompts[i]);
    }
    free(outs);
    free(reqs);
    free(prompts);
    free(plen);
    mdl_free(m);
    be_free(be);
    return status;
}
