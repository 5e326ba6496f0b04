/* serve: `vllmc serve MODEL` with vLLM's flag names and its CPU server
 * defaults (max_num_seqs 128, max_num_batched_tokens 2048). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "server/server.h"

static const char usage[] =
    "usage: vllmc serve MODEL_DIR [options]     (vLLM's `vllm serve`: an OpenAI-compatible API server)\n"
    "  --host HOST                  address to listen on (default: every interface)\n"
    "  --port PORT                  port (default 8000; 0 picks a free one, printed at start)\n"
    "  --served-model-name NAME...  names the API accepts and reports (default: MODEL_DIR)\n"
    "  --api-key KEY                require `Authorization: Bearer KEY` on /v1 (repeatable; env VLLM_API_KEY)\n"
    "  --dtype auto|half|float16|bfloat16|float|float32\n"
    "  --max-model-len N            context length (default: the model's; 4k, 1M forms accepted)\n"
    "  --max-num-seqs N             sequences per step (default 128)\n"
    "  --max-num-batched-tokens N   tokens per step (default 2048)\n"
    "  --block-size N               tokens per KV block (default 16)\n"
    "  --enable-prefix-caching | --no-enable-prefix-caching   (default: on)\n"
    "  --scheduling-policy fcfs|priority\n"
    "  --seed N                     seed for requests without one (default 0)\n"
    "  --chat-template FILE|TEXT    overrides the model's chat template\n"
    "  --generation-config auto|vllm|DIR   sampling defaults from generation_config.json (default auto)\n"
    "  --max-logprobs N             largest logprobs / prompt_logprobs a request may ask (default 20)\n"
    "  --enable-prompt-tokens-details   usage.prompt_tokens_details.cached_tokens\n"
    "  --enable-log-requests        log each request   --disable-log-stats   no periodic stats line\n"
    "  --uvicorn-log-level debug|info|warning|error|critical|trace   (access log at info and below)\n"
    "  --load-format auto|safetensors|dummy   dummy: random weights from config.json (for benchmarks)\n"
    "  --device auto|cpu            --trust-remote-code (accepted; nothing runs remote code here)\n"
    "Environment: VLLM_CPU_KVCACHE_SPACE (GiB of KV cache), VLLM_CPU_OMP_THREADS_BIND, VLLM_API_KEY.\n";

static const char *const known[] = {
    "--host", "--port", "--served-model-name", "--api-key", "--dtype", "--max-model-len", "--max-num-seqs",
    "--max-num-batched-tokens", "--block-size", "--enable-prefix-caching", "--no-enable-prefix-caching",
    "--scheduling-policy", "--seed", "--chat-template", "--generation-config", "--max-logprobs",
    "--enable-prompt-tokens-details", "--enable-log-requests", "--disable-log-requests", "--disable-log-stats",
    "--uvicorn-log-level", "--device", "--load-format", "--trust-remote-code", "--model", "--help"};

/* vLLM's human-readable integers: 4096, 4k, 4K (1024), 1m, 1M. */
static int parse_len(const char *v, const char *name, long long *out) {
    char *end;
    double d = strtod(v, &end);
    long long mult = 1;
    if (end != v && *end) {
        if (*end == 'k') mult = 1000;
        else if (*end == 'K') mult = 1024;
        else if (*end == 'm') mult = 1000000;
        else if (*end == 'M') mult = 1048576;
        else mult = 0;
        if (end[1]) mult = 0;
    }
    if (end == v || !mult || d < 1 || d * (double)mult > 2147483647.0 || (mult == 1 && d != (long long)d)) {
        cli_error("%s: expected a positive integer (4096, 4k, 4K), got '%s'", name, v);
        return -1;
    }
    *out = (long long)(d * (double)mult);
    return 0;
}

int cli_serve(int argc, char **argv) {
    srv_config c = {.port = 8000, .generation_config = "auto", .log_stats = 1, .access_log = 1,
                    .shutdown_grace_s = 5.0};
    eng_config_default(&c.ec);
    c.ec.max_num_seqs = 128;
    c.ec.max_num_batched_tokens = 2048;
    const char **names = calloc((size_t)argc + 1, sizeof *names);
    const char **keys = calloc((size_t)argc + 2, sizeof *keys);
    int status = 2;
    be_backend *be = NULL;
    if (!names || !keys) goto done;
    cli_args a = {argc, 0, argv, NULL};
    const char *v;
    long long n;
    while (a.i < argc) {
        const char *arg = argv[a.i];
#define VAL(f) if (!(v = cli_value(&a, f))) goto done
#define INT(f, lo, hi, dst) VAL(f); if (cli_parse_int(v, f, lo, hi, &n)) goto done; dst = (int)n
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(usage, stdout);
            status = 0;
            goto done;
        } else if (cli_flag(&a, "--host")) {
            VAL("--host");
            c.host = v;
        } else if (cli_flag(&a, "--port")) {
            INT("--port", 0, 65535, c.port);
        } else if (cli_flag(&a, "--served-model-name")) {
            if (a.inline_val) names[c.n_names++] = cli_value(&a, "--served-model-name");
            while (a.i < argc && argv[a.i][0] != '-') names[c.n_names++] = argv[a.i++];
            if (!c.n_names) {
                cli_error("--served-model-name needs at least one name");
                goto done;
            }
        } else if (cli_flag(&a, "--api-key")) {
            VAL("--api-key");
            keys[c.n_api_keys++] = v;
        } else if (cli_flag(&a, "--dtype")) {
            VAL("--dtype");
            c.dtype = v;
        } else if (cli_flag(&a, "--max-model-len")) {
            VAL("--max-model-len");
            if (parse_len(v, "--max-model-len", &n)) goto done;
            c.ec.max_model_len = (int)n;
        } else if (cli_flag(&a, "--max-num-seqs")) {
            INT("--max-num-seqs", 1, 1 << 20, c.ec.max_num_seqs);
        } else if (cli_flag(&a, "--max-num-batched-tokens")) {
            VAL("--max-num-batched-tokens");
            if (parse_len(v, "--max-num-batched-tokens", &n)) goto done;
            c.ec.max_num_batched_tokens = (int)n;
        } else if (cli_flag(&a, "--block-size")) {
            INT("--block-size", 1, 1024, c.ec.block_size);
        } else if (cli_flag(&a, "--enable-prefix-caching")) {
            c.ec.enable_prefix_caching = 1;
        } else if (cli_flag(&a, "--no-enable-prefix-caching")) {
            c.ec.enable_prefix_caching = 0;
        } else if (cli_flag(&a, "--scheduling-policy")) {
            VAL("--scheduling-policy");
            if (!strcmp(v, "fcfs")) c.ec.policy = ENG_FCFS;
            else if (!strcmp(v, "priority")) c.ec.policy = ENG_PRIORITY;
            else {
                cli_error("--scheduling-policy: expected fcfs or priority, got '%s'", v);
                goto done;
            }
        } else if (cli_flag(&a, "--seed")) {
            VAL("--seed");
            if (cli_parse_int(v, "--seed", 0, (long long)1 << 62, &n)) goto done;
            c.ec.seed = (uint64_t)n;
        } else if (cli_flag(&a, "--chat-template")) {
            VAL("--chat-template");
            c.chat_template = v;
        } else if (cli_flag(&a, "--generation-config")) {
            VAL("--generation-config");
            c.generation_config = v;
        } else if (cli_flag(&a, "--max-logprobs")) {
            INT("--max-logprobs", -1, 1 << 24, c.ec.max_logprobs);
        } else if (cli_flag(&a, "--enable-prompt-tokens-details")) {
            c.prompt_tokens_details = 1;
        } else if (cli_flag(&a, "--enable-log-requests")) {
            c.log_requests = 1;
        } else if (cli_flag(&a, "--disable-log-requests")) {
            c.log_requests = 0;
        } else if (cli_flag(&a, "--disable-log-stats")) {
            c.log_stats = 0;
        } else if (cli_flag(&a, "--uvicorn-log-level")) {
            VAL("--uvicorn-log-level");
            static const char *const lv[] = {"critical", "error", "warning", "info", "debug", "trace"};
            int k = 0;
            while (k < 6 && strcmp(v, lv[k])) k++;
            if (k == 6) {
                cli_error("--uvicorn-log-level: expected one of critical, error, warning, info, debug, trace; got '%s'",
                          v);
                goto done;
            }
            c.access_log = k >= 3;
        } else if (cli_flag(&a, "--load-format")) {
            VAL("--load-format");
            if (!strcmp(v, "dummy")) c.load_dummy = 1;
            else if (strcmp(v, "auto") && strcmp(v, "safetensors")) {
                cli_error("--load-format: expected auto, safetensors or dummy, got '%s'", v);
                goto done;
            }
        } else if (cli_flag(&a, "--device")) {
            VAL("--device");
            c.device = v;
        } else if (cli_flag(&a, "--trust-remote-code")) {
        } else if (cli_flag(&a, "--model")) {
            VAL("--model");
            c.model = v;
        } else if (arg[0] == '-') {
            const char *s = cli_suggest(arg, known, (int)(sizeof known / sizeof *known));
            if (s) cli_error("serve: unrecognized arguments: %s (did you mean %s?)", arg, s);
            else cli_error("serve: unrecognized arguments: %s", arg);
            goto done;
        } else if (!c.model) {
            c.model = argv[a.i++];
        } else {
            cli_error("serve: unexpected argument '%s'", arg);
            goto done;
        }
#undef VAL
#undef INT
    }
    if (!c.model) {
        cli_error("serve: a MODEL_DIR is required");
        fputs(usage, stderr);
        goto done;
    }
    const char *env_key = getenv("VLLM_API_KEY");
    if (env_key && *env_key && !c.n_api_keys) keys[c.n_api_keys++] = env_key;
    c.names = names;
    c.api_keys = keys;
    status = 1;
    if (cli_open_backend(c.device, &be)) goto done;
    c.be = be;
    status = srv_run(&c);
done:
    be_free(be);
    free(names);
    free(keys);
    return status;
}
