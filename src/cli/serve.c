/* serve: `vllmc serve MODEL` with vLLM's flag names and its CPU server
 * defaults (max_num_seqs 128, max_num_batched_tokens 2048). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "cli/cli.h"
#include "server/request.h"
#include "server/server.h"
#include "toolparse/toolparse.h"

static const char usage[] =
    "usage: vllmc serve [model_tag] [options]\n"
    "\n"
    "Start the vLLM OpenAI Compatible API server.\n"
    "\n"
    "positional arguments:\n"
    "  model_tag             The model to serve: a Hugging Face model folder, or a Hub repo id ORG/NAME\n"
    "                        (downloaded into the Hugging Face cache). Default: the bundled demo model.\n"
    "\n"
    "options:\n"
    "  -h, --help            show this help message and exit\n"
    "  --host HOST           Host name. (default: every interface)\n"
    "  --port PORT           Port number; 0 picks a free one, printed at start. (default: 8000)\n"
    "  --served-model-name SERVED_MODEL_NAME [SERVED_MODEL_NAME ...]\n"
    "                        The model name(s) used in the API; the first is the one responses report.\n"
    "                        (default: the model_tag)\n"
    "  --api-key API_KEY     If provided, the server requires this key in the Authorization header\n"
    "                        (Bearer) on /v1 routes. Repeatable. Also read from VLLM_API_KEY.\n"
    "  --dtype {auto,half,float16,bfloat16,float,float32}\n"
    "                        Data type for model weights and activations; auto keeps bf16 checkpoints in\n"
    "                        bf16 and runs f32/f16 ones in f16. (default: auto)\n"
    "  --kv-cache-dtype {auto,bfloat16,float16,float32}\n"
    "                        Data type for the KV cache; auto: the model's dtype. The fp8 kinds are not\n"
    "                        supported (vllmc has no KV cache quantization). (default: auto)\n"
    "  --max-model-len MAX_MODEL_LEN\n"
    "                        Model context length (human-readable forms like 1k, 2K, 1m accepted).\n"
    "                        (default: the model's max_position_embeddings)\n"
    "  --max-num-seqs MAX_NUM_SEQS\n"
    "                        Maximum number of sequences per iteration. (default: 128)\n"
    "  --max-num-batched-tokens MAX_NUM_BATCHED_TOKENS\n"
    "                        Maximum number of batched tokens per iteration. (default: 2048)\n"
    "  --block-size BLOCK_SIZE\n"
    "                        Token block size for contiguous chunks of tokens. (default: 16)\n"
    "  --enable-prefix-caching, --no-enable-prefix-caching\n"
    "                        Whether to enable prefix caching. (default: True)\n"
    "  --scheduling-policy {fcfs,priority}\n"
    "                        fcfs: first come first served; priority: by the request's priority (lower\n"
    "                        first), then arrival. (default: fcfs)\n"
    "  --seed SEED           Random seed for requests that bring none. (default: 0)\n"
    "  --chat-template CHAT_TEMPLATE\n"
    "                        The file path to the chat template, or the template in single-line form.\n"
    "  --trust-request-chat-template\n"
    "                        Accept a `chat_template` sent in a request (refused by default). (default: False)\n"
    "  --generation-config GENERATION_CONFIG\n"
    "                        auto: sampling defaults from the model's generation_config.json; vllm:\n"
    "                        vLLM's defaults; a folder: its generation_config.json. (default: auto)\n"
    "  --max-logprobs MAX_LOGPROBS\n"
    "                        Maximum number of log probabilities to return; -1: the vocabulary.\n"
    "                        (default: 20)\n"
    "  --enable-prompt-tokens-details\n"
    "                        If set to True, enable prompt_tokens_details in usage. (default: False)\n"
    "  --enable-log-requests  Log each request as it arrives. (default: False)\n"
    "  --disable-log-stats   Disable the periodic throughput and cache log line. (default: False)\n"
    "  --uvicorn-log-level {critical,error,warning,info,debug,trace}\n"
    "                        Access log at info and below. (default: info)\n"
    "  --load-format {auto,safetensors,dummy}\n"
    "                        dummy: random weights from config.json, for benchmarks. (default: auto)\n"
    "  --revision REVISION   The Hub revision (branch, tag or commit) to download. (default: main)\n"
    "  --download-dir DOWNLOAD_DIR\n"
    "                        Directory to download and load the weights (default: the Hugging Face cache)\n"
    "  --device {auto,cpu,gpu}\n"
    "                        Device type for vLLM execution: auto takes a GPU when the build and the\n"
    "                        machine have one, else the CPU. (default: auto)\n"
    "  --gpu-memory-utilization GPU_MEMORY_UTILIZATION\n"
    "                        The fraction of a discrete GPU's memory for weights, activations and the KV\n"
    "                        cache, in (0, 1]. (default: 0.9)\n"
    "  --trust-remote-code   Accepted for compatibility; no model code is ever downloaded or run.\n"
    "  --enable-lora         If True, enable handling of LoRA adapters: a request whose `model` names an\n"
    "                        adapter runs with it. (default: False)\n"
    "  --lora-modules LORA_MODULES [LORA_MODULES ...]\n"
    "                        LoRA adapters to load at start-up, each 'name=path' or the JSON form\n"
    "                        '{\"name\": \"name\", \"path\": \"lora_path\", \"base_model_name\": \"id\"}'; a path\n"
    "                        is a PEFT adapter folder or a Hub repo id. Needs --enable-lora. A bad adapter\n"
    "                        stops the server. (Repeating the flag adds to the list.)\n"
    "  --max-loras MAX_LORAS Max number of LoRAs in a single batch. (default: 1)\n"
    "  --max-lora-rank {1,8,16,32,64,128,256,320,512}\n"
    "                        Max LoRA rank. (default: 16)\n"
    "  --enable-auto-tool-choice\n"
    "                        Enable auto tool choice for supported models: tool_choice \"auto\" (the\n"
    "                        default when a request has tools) reads tool calls from the output with\n"
    "                        --tool-call-parser. (default: False)\n"
    "  --tool-call-parser {hermes,llama3_json,llama4_json,mistral,pythonic,openai,qwen3_coder,qwen3_xml}\n"
    "                        The parser of the model's tool calls: hermes (Qwen2.5, Qwen3, Hermes),\n"
    "                        llama3_json / llama4_json (Llama 3.1-3.3 JSON calls), mistral ([TOOL_CALLS]),\n"
    "                        pythonic (Llama 3.2 / 4 [f(a=1)]), openai (gpt-oss harmony), qwen3_coder /\n"
    "                        qwen3_xml (Qwen3-Coder <function=f><parameter=k>, values typed by the\n"
    "                        request's tool schema). Needs --enable-auto-tool-choice.\n"
    "  --reasoning-parser {deepseek_r1,qwen3,openai}\n"
    "                        Split the model's <think>...</think> reasoning into `reasoning` (and\n"
    "                        `reasoning_content`): deepseek_r1 (DeepSeek-R1, QwQ, Qwen3 -Thinking-2507),\n"
    "                        qwen3 (Qwen3 hybrid thinking), openai (gpt-oss harmony analysis channel).\n"
    "  --chat-template-content-format {auto,string,openai}\n"
    "                        How message content reaches the chat template: string flattens it to text,\n"
    "                        openai keeps a list of {\"type\": \"text\", \"text\": ...} parts; auto picks\n"
    "                        openai when the template loops over a message's content. (default: auto)\n"
    "  --max-cpu-loras MAX_CPU_LORAS\n"
    "                        Maximum number of LoRAs to store in CPU memory. Must be >= --max-loras.\n"
    "                        (default: --max-loras)\n"
    "\n"
    "Environment variables: VLLM_CPU_KVCACHE_SPACE (GiB of KV cache; default 50% of memory),\n"
    "VLLM_CPU_OMP_THREADS_BIND (auto | all | nobind | CPU list), VLLM_API_KEY, HF_TOKEN, HF_HOME,\n"
    "HF_HUB_CACHE, HF_HUB_OFFLINE, HF_ENDPOINT, VLLM_HTTP_TIMEOUT_KEEP_ALIVE (s, default 5). vllmc's own\n"
    "limits (docs/ARCHITECTURE.md, Limits): VLLMC_HTTP_MAX_CONNECTIONS, VLLMC_HTTP_READ_TIMEOUT,\n"
    "VLLMC_HTTP_IO_TIMEOUT, VLLMC_HTTP_THREADS, VLLMC_HTTP_WORKERS, VLLMC_MAX_SEQS_PER_REQUEST,\n"
    "VLLMC_MAX_PROMPT_TOKENS_PER_REQUEST, VLLMC_SHUTDOWN_GRACE_S (default 5).\n"
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING=1 (or true) adds POST /v1/load_lora_adapter {\"lora_name\", \"lora_path\"} and\n"
    "POST /v1/unload_lora_adapter {\"lora_name\"} (for local development, as in vLLM).\n";

static const char *const known[] = {
    "--host", "--port", "--served-model-name", "--api-key", "--dtype", "--max-model-len", "--max-num-seqs",
    "--max-num-batched-tokens", "--block-size", "--enable-prefix-caching", "--no-enable-prefix-caching",
    "--scheduling-policy", "--seed", "--chat-template", "--trust-request-chat-template", "--generation-config",
    "--max-logprobs",
    "--enable-prompt-tokens-details", "--enable-log-requests", "--disable-log-requests", "--disable-log-stats",
    "--uvicorn-log-level", "--device", "--load-format", "--trust-remote-code", "--model", "--revision",
    "--download-dir", "--kv-cache-dtype", "--gpu-memory-utilization", "--enable-lora", "--lora-modules",
    "--max-loras", "--max-lora-rank", "--max-cpu-loras", "--enable-auto-tool-choice", "--tool-call-parser",
    "--reasoning-parser", "--chat-template-content-format", "--help"};

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

/* --enable-auto-tool-choice, --tool-call-parser, --reasoning-parser, --chat-template-content-format:
 * 1 taken, 0 not one of them, -1 bad value. */
static int parser_flag(cli_args *a, srv_config *c, int *auto_tools) {
    const char *v;
    if (cli_flag(a, "--enable-auto-tool-choice")) {
        *auto_tools = 1;
        return 1;
    }
    if (cli_flag(a, "--tool-call-parser")) {
        if (!(v = cli_value(a, "--tool-call-parser"))) return -1;
        if (!toolp_parser_by_name(TOOLP_KIND_TOOL, v)) {
            cli_error("invalid tool call parser: %s (chose from { %s })", v, toolp_parser_names(TOOLP_KIND_TOOL));
            return -1;
        }
        c->tool_call_parser = v;
        return 1;
    }
    if (cli_flag(a, "--reasoning-parser")) {
        if (!(v = cli_value(a, "--reasoning-parser"))) return -1;
        if (!toolp_parser_by_name(TOOLP_KIND_REASONING, v)) {
            cli_error("argument --reasoning-parser: invalid choice: '%s' (choose from %s)", v,
                      toolp_parser_names(TOOLP_KIND_REASONING));
            return -1;
        }
        c->reasoning_parser = v;
        return 1;
    }
    if (cli_flag(a, "--chat-template-content-format")) {
        if (!(v = cli_value(a, "--chat-template-content-format"))) return -1;
        static const char *const f[] = {"auto", "string", "openai"}; /* SRV_CONTENT_* order */
        for (int k = 0; k < 3; k++)
            if (!strcmp(v, f[k])) {
                c->content_format = k;
                return 1;
            }
        cli_error("argument --chat-template-content-format: invalid choice: '%s' (choose from auto, string, openai)", v);
        return -1;
    }
    return 0;
}

/* vLLM: auto tool choice needs a parser; a parser without it is not used. */
static int check_parsers(srv_config *c, int auto_tools) {
    if (auto_tools && !c->tool_call_parser) {
        cli_error("--enable-auto-tool-choice requires --tool-call-parser");
        return -1;
    }
    if (!auto_tools) c->tool_call_parser = NULL;
    return 0;
}

int cli_serve(int argc, char **argv) {
    srv_config c = {.port = 8000, .generation_config = "auto", .log_stats = 1, .access_log = 1,
                    .shutdown_grace_s = 5.0};
    stk_params p;
    stk_params_default(&p);
    p.ec.max_num_seqs = 128;
    p.ec.max_num_batched_tokens = 2048;
    const char **names = calloc((size_t)argc + 1, sizeof *names);
    const char **keys = calloc((size_t)argc + 2, sizeof *keys);
    int status = 2, k;
    stk_stack *st = NULL;
    cli_lora lora;
    lora_registry *reg = NULL;
    int auto_tools = 0;
    cli_lora_init(&lora);
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
        } else if ((k = cli_stack_flag(&a, &p))) {
            if (k < 0) goto done;
        } else if ((k = cli_lora_flag(&a, &lora, "--lora-modules"))) {
            if (k < 0) goto done;
        } else if (cli_flag(&a, "--max-model-len")) {
            VAL("--max-model-len");
            if (parse_len(v, "--max-model-len", &n)) goto done;
            p.ec.max_model_len = (int)n;
        } else if (cli_flag(&a, "--max-num-seqs")) {
            INT("--max-num-seqs", 1, 1 << 20, p.ec.max_num_seqs);
        } else if (cli_flag(&a, "--max-num-batched-tokens")) {
            VAL("--max-num-batched-tokens");
            if (parse_len(v, "--max-num-batched-tokens", &n)) goto done;
            p.ec.max_num_batched_tokens = (int)n;
        } else if (cli_flag(&a, "--block-size")) {
            INT("--block-size", 1, 1024, p.ec.block_size);
        } else if (cli_flag(&a, "--enable-prefix-caching")) {
            p.ec.enable_prefix_caching = 1;
        } else if (cli_flag(&a, "--no-enable-prefix-caching")) {
            p.ec.enable_prefix_caching = 0;
        } else if (cli_flag(&a, "--scheduling-policy")) {
            VAL("--scheduling-policy");
            if (!strcmp(v, "fcfs")) p.ec.policy = ENG_FCFS;
            else if (!strcmp(v, "priority")) p.ec.policy = ENG_PRIORITY;
            else {
                cli_error("--scheduling-policy: expected fcfs or priority, got '%s'", v);
                goto done;
            }
        } else if (cli_flag(&a, "--seed")) {
            VAL("--seed");
            if (cli_parse_int(v, "--seed", 0, (long long)1 << 62, &n)) goto done;
            p.ec.seed = (uint64_t)n;
        } else if (cli_flag(&a, "--trust-request-chat-template")) {
            c.trust_request_chat_template = 1;
        } else if (cli_flag(&a, "--chat-template")) {
            VAL("--chat-template");
            c.chat_template = v;
        } else if (cli_flag(&a, "--generation-config")) {
            VAL("--generation-config");
            c.generation_config = v;
        } else if (cli_flag(&a, "--max-logprobs")) {
            INT("--max-logprobs", -1, 1 << 24, p.ec.max_logprobs);
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
            if (!strcmp(v, "dummy")) p.load_dummy = 1;
            else if (strcmp(v, "auto") && strcmp(v, "safetensors")) {
                cli_error("--load-format: expected auto, safetensors or dummy, got '%s'", v);
                goto done;
            }
        } else if ((k = parser_flag(&a, &c, &auto_tools))) {
            if (k < 0) goto done;
        } else if (cli_flag(&a, "--trust-remote-code")) {
        } else if (cli_flag(&a, "--model")) {
            VAL("--model");
            p.model = v;
        } else if (arg[0] == '-') {
            const char *s = cli_suggest(arg, known, (int)(sizeof known / sizeof *known));
            if (s) cli_error("serve: unrecognized arguments: %s (did you mean %s?)", arg, s);
            else cli_error("serve: unrecognized arguments: %s", arg);
            goto done;
        } else if (!p.model) {
            p.model = argv[a.i++];
        } else {
            cli_error("serve: unexpected argument '%s'", arg);
            goto done;
        }
#undef VAL
#undef INT
    }
    char demo[4096];
    if (!p.model) { /* `vllmc serve`: the bundled demo model */
        if (!cli_demo_model(demo, sizeof demo)) {
            cli_error("serve: no model given and the demo model (models/demo next to the build folder, or "
                      "$VLLMC_DEMO_MODEL) is not there; pass a model folder or ORG/NAME");
            goto done;
        }
        p.model = demo;
        if (c.n_names == 0) names[c.n_names++] = "demo";
    }
    const char *grace = getenv("VLLMC_SHUTDOWN_GRACE_S"); /* how long SIGINT/SIGTERM lets requests finish */
    if (grace && *grace) {
        char *end;
        double g = strtod(grace, &end);
        if (*end || !(g >= 0 && g <= 3600)) {
            cli_error("VLLMC_SHUTDOWN_GRACE_S: expected seconds in [0, 3600], got '%s'", grace);
            goto done;
        }
        c.shutdown_grace_s = g;
    }
    const char *env_key = getenv("VLLM_API_KEY");
    if (env_key && *env_key && !c.n_api_keys) keys[c.n_api_keys++] = env_key;
    c.names = names;
    c.api_keys = keys;
    if (c.n_names == 0) names[c.n_names++] = p.model; /* vLLM reports ORG/NAME, not the cache folder */
    if (cli_stack_check(&p) || cli_lora_check(&lora, &p.ec) || check_parsers(&c, auto_tools)) goto done;
    status = 1;
    if (stk_open(&p, &st)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    if (!st->model_dir) {
        cli_error("serve: the model must be a folder or ORG/NAME, not a file");
        goto done;
    }
    if (cli_lora_open(&lora, &p, st, names, c.n_names, &reg)) goto done;
    const char *rt = getenv("VLLM_ALLOW_RUNTIME_LORA_UPDATING"); /* vLLM: strip().lower() in ("1", "true") */
    if (rt) {
        while (isspace((unsigned char)*rt)) rt++;
        size_t n = strlen(rt);
        while (n && isspace((unsigned char)rt[n - 1])) n--;
        c.runtime_lora = (n == 1 && rt[0] == '1') || (n == 4 && !strncasecmp(rt, "true", 4));
    }
    c.loras = reg;
    c.max_loras = p.ec.max_loras;
    c.stk = st;
    c.max_logprobs = p.ec.max_logprobs;
    c.priority_scheduling = p.ec.policy == ENG_PRIORITY;
    status = srv_run(&c);
done:
    lora_reg_free(reg); /* after srv_run: every request (and its references) is gone */
    cli_lora_free(&lora);
    stk_free(st);
    free(names);
    free(keys);
    return status;
}
