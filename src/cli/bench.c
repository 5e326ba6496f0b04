/* vllmc bench latency | throughput | prefix-cache (here), tokenize, serve, structured (own files).
 *
 * latency: one batch through the engine, prefill and decode speed next to the
 * machine's limits measured in the same run (STREAM triad bandwidth, taken
 * after every iteration because this kind of VM drifts, and peak FMA rate; on the CPU also the bf16
 * dot-product peak where the CPU has one).
 * throughput: many requests at once (vLLM's benchmark_throughput): requests/s,
 * output tokens/s, total tokens/s, with the single-sequence decode rate of the
 * same model measured in the same run for comparison. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "base/err.h"
#include "cli/cli.h"
#include "cli/cli_tok.h"
#include "engine/offline.h"
#include "model/model.h"
#include "stack.h"

static const char usage[] =
    "usage: vllmc bench latency [MODEL_DIR | --random-weights CONFIG.json] [--input-len 128] [--output-len 64]\n"
    "       [--batch-size 1] [--num-iters 3] [--num-iters-warmup 1] [--dtype D] [--json]\n"
    "       vllmc bench throughput [MODEL_DIR | --random-weights CONFIG.json] --input-len I --output-len O\n"
    "       --num-prompts P [--max-num-seqs S] [--max-num-batched-tokens T] [--prefix-len L] [--dtype D] [--json]\n"
    "       [--num-loras K [--max-loras M (default K)] [--max-lora-rank R (default 16)]]\n"
    "         --num-loras: K random LoRA adapters of rank 16 on all seven modules (made in memory), the\n"
    "         requests spread over them round-robin (the single-sequence run uses the first); every step\n"
    "         may run M of them (vLLM's benchmark runs --max-loras adapters with --max-loras M; a smaller M\n"
    "         measures adapter swapping). The base model's figure: the same command without --num-loras.\n"
    "       vllmc bench prefix-cache [MODEL_DIR | --random-weights CONFIG.json] [--prefix-len 1024] [--input-len 16]\n"
    "       [--output-len 1] [--dtype D] [--json]\n"
    "       MODEL_DIR may be a Hugging Face repo id ORG/NAME [--revision REV] [--download-dir DIR]\n"
    "       all three also take [--device auto|cpu|gpu] [--kv-cache-dtype auto|bfloat16|float16|float32]\n"
    "       [--num-layers N] (with --random-weights: only the first N layers, for models beyond this memory)\n"
    "       [--gpu-memory-utilization F] (a fraction of a discrete GPU's memory, default 0.9)\n"
    "       vllmc bench tokenize DIR FILE\n"
    "       vllmc bench structured [MODEL_DIR | --random-weights CONFIG.json --tokenizer DIR] [--json-schema FILE]\n"
    "       [--regex R] [--grammar FILE] [--output-len 48] [--batch-size 16] [--json]   (see --help)\n"
    "       vllmc bench serve [--base-url URL] --num-prompts P [--max-concurrency C] [--request-rate R]\n"
    "       --random-input-len I --random-output-len O [--json]   (see vllmc bench serve --help)\n";

#define BENCH_LORA_RANK 16 /* --num-loras adapters' rank */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct {
    stk_params st;             /* the model (MODEL_DIR, or a config.json with random weights), dtype, device,
                                  engine config; each benchmark makes its own engines from st.ec */
    long long in_len, out_len, batch, iters, warm, prompts, prefix_len;
    long long num_loras;       /* throughput: K in-memory adapters (0: the base model) */
    cli_lora lora;             /* --max-loras (default K here), --max-lora-rank */
    int max_loras_given;
    int json;
} bench_args;

static int parse(int argc, char **argv, bench_args *b) {
    const char *dir = NULL, *cfg_path = NULL;
    cli_args a = {argc, 0, argv, NULL};
    while (a.i < argc) {
        const char *v;
        long long iv;
        int k;
        CLI_INT_FLAG("--input-len", b->in_len, 1, 1 << 20)
        CLI_INT_FLAG("--output-len", b->out_len, 1, 1 << 20)
        CLI_INT_FLAG("--batch-size", b->batch, 1, 4096)
        CLI_INT_FLAG("--num-iters", b->iters, 1, 1000)
        CLI_INT_FLAG("--num-iters-warmup", b->warm, 0, 1000)
        CLI_INT_FLAG("--num-prompts", b->prompts, 1, 1 << 20)
        CLI_INT_FLAG("--prefix-len", b->prefix_len, 0, 1 << 20)
        CLI_INT_FLAG("--max-num-seqs", b->st.ec.max_num_seqs, 1, 1 << 20)
        CLI_INT_FLAG("--max-num-batched-tokens", b->st.ec.max_num_batched_tokens, 1, 1 << 24)
        CLI_INT_FLAG("--max-model-len", b->st.ec.max_model_len, 1, 1 << 30)
        CLI_INT_FLAG("--num-loras", b->num_loras, 1, 4096)
        CLI_INT_FLAG("--num-layers", b->st.num_layers, 1, 4095)
        if (!strncmp(argv[a.i], "--max-loras", 11)) b->max_loras_given = 1;
        if ((k = cli_stack_flag(&a, &b->st))) {
            if (k < 0) return 2;
        } else if ((k = cli_lora_flag(&a, &b->lora, NULL))) {
            if (k < 0) return 2;
        } else if (cli_flag(&a, "--random-weights")) {
            if (!(cfg_path = cli_value(&a, "--random-weights"))) return 2;
        } else if (cli_flag(&a, "--no-enable-prefix-caching")) {
            b->st.ec.enable_prefix_caching = 0;
        } else if (cli_flag(&a, "--json")) {
            b->json = 1;
        } else if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(usage, stdout);
            return 1;
        } else if (argv[a.i][0] == '-') {
            cli_error("bench: unknown option '%s'", argv[a.i]);
            return 2;
        } else if (!dir) {
            dir = argv[a.i++];
        } else {
            cli_error("bench: unexpected argument '%s'", argv[a.i]);
            return 2;
        }
    }
    if (!dir == !cfg_path) {
        cli_error("bench: give either MODEL_DIR or --random-weights CONFIG.json");
        fputs(usage, stderr);
        return 2;
    }
    b->st.model = dir ? dir : cfg_path;
    b->st.load_dummy = cfg_path != NULL;
    if (b->st.num_layers && !cfg_path) {
        cli_error("bench: --num-layers needs --random-weights");
        return 2;
    }
    if (b->num_loras) {
        b->lora.enable = 1;
        if (!b->max_loras_given) b->lora.max_loras = (int)b->num_loras;
        if (b->lora.max_lora_rank < BENCH_LORA_RANK) {
            cli_error("bench: --num-loras makes adapters of rank %d; --max-lora-rank %d is below it", BENCH_LORA_RANK,
                      b->lora.max_lora_rank);
            return 2;
        }
    }
    return cli_stack_check(&b->st) || cli_lora_check(&b->lora, &b->st.ec) ? 2 : 0;
}

/* Backend and model; the benchmarks make their engines. */
static int load(bench_args *b, stk_stack **st) {
    if (stk_open(&b->st, st)) {
        cli_error("%s", vc_errmsg());
        return -1;
    }
    return 0;
}

/* Random prompt tokens; the first prefix_len of every prompt are shared. */
static int32_t *random_prompts(int vocab, long long n, long long len, long long prefix_len) {
    int32_t *p = malloc(sizeof *p * (size_t)(n * len));
    if (!p) return NULL;
    uint64_t x = 88172645463325252ull;
    for (long long i = 0; i < n * len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (int32_t)(x % (uint64_t)vocab);
        if (i % len < prefix_len) p[i] = (int32_t)((i % len) * 7919 % vocab);
    }
    return p;
}

static double matmul_params(const mdl_model *m) {
    double n = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const mdl_layer *L = &m->layers[l];
        const be_tensor *ts[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down, &L->router,
                                 &L->shared_gate};
        for (int i = 0; i < 9; i++) n += (double)ts[i]->rows * (double)ts[i]->cols;
        if (L->exp_gate) { /* a MoE layer: each token runs num_experts_per_tok experts (gpt-oss: no exp_up) */
            double e = (double)L->exp_gate[0].rows * (double)L->exp_gate[0].cols +
                       (double)L->exp_down[0].rows * (double)L->exp_down[0].cols;
            if (L->exp_up) e += (double)L->exp_up[0].rows * (double)L->exp_up[0].cols;
            n += m->cfg.n_experts_per_tok * e;
        }
    }
    return n;
}

static int bench_latency(bench_args *b) {
    stk_stack *st = NULL;
    be_backend *be;
    mdl_model *m;
    eng_engine *e = NULL;
    int32_t *prompt = NULL;
    off_request *rq = NULL;
    off_completion *outs = NULL;
    double *pf = NULL, *dc = NULL, *tr = NULL, *frac = NULL;
    int status = 1;
    if (load(b, &st)) goto done;
    be = st->be, m = st->m;
    const model_config *c = &m->cfg;
    if (b->in_len + b->out_len > c->max_position_embeddings) {
        cli_error("--input-len + --output-len (%lld) exceeds the model's context length %d", b->in_len + b->out_len,
                  c->max_position_embeddings);
        goto done;
    }
    /* the whole batch's prefill is one step, as in vLLM's latency benchmark */
    if (!b->st.ec.max_num_batched_tokens) b->st.ec.max_num_batched_tokens = (int)(b->in_len * b->batch);
    if (b->st.ec.max_num_seqs < b->batch) b->st.ec.max_num_seqs = (int)b->batch;
    b->st.ec.max_model_len = (int)(b->in_len + b->out_len);
    b->st.ec.enable_prefix_caching = 0; /* repeated iterations must not hit the cache */
    b->st.ec.quiet = 1;
    if (eng_create(m, &b->st.ec, &e)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    be_info info;
    if (be->info(be->ctx, &info)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    /* the CPU backend measures a STREAM triad, a GPU a device-to-device copy */
    const char *bw_name = strcmp(be->name, "cpu") ? "copy" : "triad";
    /* This VM's bandwidth drifts by 2x within a minute (shared host), so the
     * triad is measured next to every timed iteration and each decode figure
     * is compared with its own neighbour; we report medians of both. */
    double peak = be_peak_gflops(be);
    /* the CPU's bf16 dot-product peak (VDPBF16PS, BFMMLA) beside it, on threads placed as the backend's */
    int cpu_be = !strcmp(be->name, "cpu");
    double peak_bf16 = 0;
    tp_pool *bf16_pool = NULL;
    if (cpu_be && cpu_have_bf16_dot() && tp_create(&bf16_pool, 0, getenv("VLLM_CPU_OMP_THREADS_BIND")) == 0) {
        peak_bf16 = cpu_measure_peak_bf16_gflops(bf16_pool);
        tp_free(bf16_pool);
    }
    prompt = random_prompts(c->vocab_size, b->batch, b->in_len, 0);
    rq = calloc((size_t)b->batch, sizeof *rq);
    outs = calloc((size_t)b->batch, sizeof *outs);
    pf = calloc((size_t)b->iters, sizeof *pf);
    dc = calloc((size_t)b->iters, sizeof *dc);
    tr = calloc((size_t)b->iters, sizeof *tr);
    frac = calloc((size_t)b->iters, sizeof *frac);
    if (!prompt || !rq || !outs || !pf || !dc || !tr || !frac) goto done;
    eng_sampling_params sp;
    eng_params_default(&sp);
    sp.temperature = 0;
    sp.max_tokens = (int)b->out_len;
    sp.ignore_eos = 1;
    for (long long i = 0; i < b->batch; i++) rq[i] = (off_request){prompt + i * b->in_len, (int)b->in_len, &sp, 0, NULL};
    for (long long it = 0; it < b->warm + b->iters; it++) {
        double total;
        if (off_run(e, rq, (int)b->batch, outs, NULL, NULL, &total)) {
            cli_error("%s", vc_errmsg());
            goto done;
        }
        /* prefill: until every sequence has its first token; decode: the rest */
        double t_first = 0;
        for (long long i = 0; i < b->batch; i++) t_first = outs[i].t_first > t_first ? outs[i].t_first : t_first;
        double p = (double)(b->in_len * b->batch) / t_first;
        double d = b->out_len > 1 ? (double)((b->out_len - 1) * b->batch) / (total - t_first) : 0;
        off_free(outs, (int)b->batch);
        if (it >= b->warm) {
            int k = (int)(it - b->warm);
            pf[k] = p;
            dc[k] = d;
            tr[k] = be_bandwidth_gbs(be, (size_t)256 << 20);
            /* decode reads every weight once per step; a step makes `batch` tokens */
            frac[k] = tr[k] > 0 ? d / (double)b->batch * (double)m->decode_bytes_per_token * 1e-9 / tr[k] : 0;
        }
        if (!b->json)
            fprintf(stderr, "%s %lld: prefill %.1f tok/s, decode %.2f tok/s\n", it < b->warm ? "warmup" : "iter",
                    it < b->warm ? it : it - b->warm, p, d);
    }
    double pf_tps = median(pf, (int)b->iters), dc_tps = median(dc, (int)b->iters);
    double triad = median(tr, (int)b->iters), bw_frac = median(frac, (int)b->iters);
    double pf_gflops = pf_tps * 2.0 * matmul_params(m) * 1e-9;
    double bw = dc_tps / (double)b->batch * (double)m->decode_bytes_per_token * 1e-9;
    printf("model: %s %s, %d layers, hidden %d, %.1f M params, weights %.2f GB, decode reads %.1f MB/step\n", c->arch,
           be_dtype_name(m->wdtype), c->n_layers, c->hidden_size,
           (double)m->n_params * 1e-6, (double)m->weight_bytes * 1e-9,
           (double)m->decode_bytes_per_token * 1e-6);
    printf("machine: %s, %s %.1f GB/s (median of %lld, one after each iteration)", info.desc, bw_name, triad, b->iters);
    if (peak > 0) printf(", peak FMA %.1f GFLOP/s", peak);
    if (peak_bf16 > 0) printf(", bf16 dot %.1f GFLOP/s", peak_bf16);
    else if (cpu_be) printf(", no native bf16 dot product");
    printf("\n");
    printf("prefill: %.1f tokens/s (input %lld x batch %lld), %.1f GFLOP/s", pf_tps, b->in_len, b->batch, pf_gflops);
    /* bf16 weights run on the bf16 dot product where the CPU has one (from 16 tokens) */
    if (peak_bf16 > 0 && m->wdtype == BE_BF16)
        printf(" = %.0f%% of the bf16 dot peak (%.0f%% of the FMA peak)", 100.0 * pf_gflops / peak_bf16,
               100.0 * pf_gflops / peak);
    else if (peak > 0)
        printf(" = %.0f%% of peak", 100.0 * pf_gflops / peak);
    printf("\n");
    printf("decode: %.2f tokens/s (output %lld x batch %lld), weight bandwidth %.1f GB/s = %.0f%% of %s\n", dc_tps,
           b->out_len, b->batch, bw, 100.0 * bw_frac, bw_name);
    if (b->json)
        printf("{\"model\":\"%s\",\"dtype\":\"%s\",\"input_len\":%lld,\"output_len\":%lld,\"batch_size\":%lld,"
               "\"backend\":\"%s\",\"prefill_tokens_per_s\":%.3f,\"prefill_gflops\":%.3f,\"decode_tokens_per_s\":%.3f,"
               "\"decode_bandwidth_gbs\":%.3f,\"decode_bandwidth_fraction\":%.4f,\"machine_bandwidth_gbs\":%.3f,"
               "\"machine_peak_gflops\":%.3f,\"machine_peak_bf16_gflops\":%.3f,\"decode_bytes_per_step\":%llu}\n",
               c->arch, be_dtype_name(m->wdtype), b->in_len, b->out_len, b->batch, be->name, pf_tps,
               pf_gflops, dc_tps, bw, bw_frac, triad, peak, peak_bf16, (unsigned long long)m->decode_bytes_per_token);
    status = 0;
done:
    free(prompt);
    free(rq);
    free(outs);
    free(pf);
    free(dc);
    free(tr);
    free(frac);
    eng_free(e);
    stk_free(st);
    return status;
}

/* Run n prompts through a fresh engine, prompt i with adapter loras[i % nl] (nl 0: the base model);
 * returns wall seconds or < 0. */
static double run_batch(mdl_model *m, const eng_config *ec, const int32_t *prompts, long long n, long long in_len,
                        const eng_sampling_params *sp, eng_lora *const *loras, int nl, double *ttft_mean) {
    eng_engine *e = NULL;
    off_request *rq = calloc((size_t)n, sizeof *rq);
    off_completion *outs = calloc((size_t)n, sizeof *outs);
    double total = -1;
    if (!rq || !outs || eng_create(m, ec, &e)) goto out;
    for (long long i = 0; i < n; i++)
        rq[i] = (off_request){prompts + i * in_len, (int)in_len, sp, 0, nl ? loras[i % nl] : NULL};
    if (off_run(e, rq, (int)n, outs, NULL, NULL, &total)) {
        total = -1;
        goto out;
    }
    double s = 0;
    for (long long i = 0; i < n; i++) s += outs[i].t_first;
    if (ttft_mean) *ttft_mean = s / (double)n;
    off_free(outs, (int)n);
out:
    if (total < 0) cli_error("%s", vc_errmsg());
    eng_free(e);
    free(rq);
    free(outs);
    return total;
}

static int bench_throughput(bench_args *b) {
    stk_stack *st = NULL;
    mdl_model *m;
    int32_t *prompts = NULL;
    eng_lora **loras = NULL;
    int nl = (int)b->num_loras, status = 1;
    if (!b->prompts) {
        cli_error("bench throughput: --num-prompts is required");
        return 2;
    }
    if (load(b, &st)) goto done;
    m = st->m;
    const model_config *c = &m->cfg;
    b->st.ec.quiet = 1;
    if (!b->st.ec.max_model_len) b->st.ec.max_model_len = (int)(b->in_len + b->out_len);
    if (b->st.ec.max_model_len > c->max_position_embeddings) b->st.ec.max_model_len = c->max_position_embeddings;
    prompts = random_prompts(c->vocab_size, b->prompts, b->in_len, b->prefix_len);
    if (!prompts) goto done;
    eng_sampling_params sp;
    eng_params_default(&sp);
    sp.temperature = 0;
    sp.max_tokens = (int)b->out_len;
    sp.ignore_eos = 1;
    if (nl && !(loras = calloc((size_t)nl, sizeof *loras))) goto done;
    for (int k = 0; k < nl; k++)
        if (eng_lora_random(&m->cfg, m->wdtype, k + 1, (1u << RN_LORA_MODULES) - 1, BENCH_LORA_RANK, 0,
                            0x9E3779B97F4A7C15ull * (uint64_t)(k + 1), &loras[k])) {
            cli_error("%s", vc_errmsg());
            goto done;
        }
    /* the single-sequence rate of the same model (with the first adapter), for the speed-up */
    eng_config one = b->st.ec;
    one.max_num_seqs = 1;
    double t1 = run_batch(m, &one, prompts, 1, b->in_len, &sp, loras, nl, NULL);
    double tall, ttft;
    if (t1 < 0 || (tall = run_batch(m, &b->st.ec, prompts, b->prompts, b->in_len, &sp, loras, nl, &ttft)) < 0)
        goto done;
    double single = (double)b->out_len / t1;
    double rps = (double)b->prompts / tall, ops = (double)(b->prompts * b->out_len) / tall;
    double tps = (double)(b->prompts * (b->in_len + b->out_len)) / tall;
    printf("model: %s %s; %lld prompts x (%lld in + %lld out), max_num_seqs %d, max_num_batched_tokens %d%s\n",
           c->arch, be_dtype_name(m->wdtype), b->prompts, b->in_len, b->out_len, b->st.ec.max_num_seqs,
           b->st.ec.max_num_batched_tokens, b->st.ec.enable_prefix_caching ? ", prefix caching" : "");
    if (nl)
        printf("LoRA: %d adapters of rank %d on q,k,v,o,gate,up,down_proj, requests round-robin, max_loras %d "
               "(the base model: the same command without --num-loras)\n", nl, BENCH_LORA_RANK, b->st.ec.max_loras);
    printf("Throughput: %.2f requests/s, %.2f total tokens/s, %.2f output tokens/s\n", rps, tps, ops);
    printf("single sequence (same prompt length): %.2f output tokens/s (incl. prefill); batched / single = %.2fx\n",
           single, ops / single);
    printf("mean time to first token: %.3f s\n", ttft);
    if (b->json)
        printf("{\"model\":\"%s\",\"dtype\":\"%s\",\"num_prompts\":%lld,\"input_len\":%lld,\"output_len\":%lld,"
               "\"max_num_seqs\":%d,\"requests_per_s\":%.4f,\"output_tokens_per_s\":%.3f,\"total_tokens_per_s\":%.3f,"
               "\"single_sequence_output_tokens_per_s\":%.3f,\"speedup_vs_single\":%.3f,\"mean_ttft_s\":%.4f,"
               "\"elapsed_s\":%.3f,\"num_loras\":%d,\"max_loras\":%d,\"lora_rank\":%d}\n",
               c->arch, be_dtype_name(m->wdtype), b->prompts, b->in_len, b->out_len, b->st.ec.max_num_seqs, rps, ops, tps,
               single, ops / single, ttft, tall, nl, b->st.ec.max_loras, nl ? BENCH_LORA_RANK : 0);
    status = 0;
done:
    for (int k = 0; loras && k < nl; k++) eng_lora_unref(loras[k]); /* the engines dropped theirs */
    free(loras);
    free(prompts);
    stk_free(st);
    return status;
}

/* Time to first token of a prompt whose first prefix_len tokens another
 * request has just computed, against the same prompt on a cold cache. */
static int bench_prefix(bench_args *b) {
    stk_stack *st = NULL;
    mdl_model *m;
    eng_engine *e = NULL;
    int32_t *p = NULL;
    int status = 1;
    if (load(b, &st)) goto done;
    m = st->m;
    long long plen = b->prefix_len ? b->prefix_len : 1024, slen = b->in_len, len = plen + slen;
    b->st.ec.quiet = 1;
    b->st.ec.max_model_len = (int)(len + b->out_len);
    if (b->st.ec.max_model_len > m->cfg.max_position_embeddings) {
        cli_error("prefix + input + output (%d) exceeds the model's context length", b->st.ec.max_model_len);
        goto done;
    }
    if (!b->st.ec.max_num_batched_tokens) b->st.ec.max_num_batched_tokens = 2048;
    if (eng_create(m, &b->st.ec, &e)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    p = random_prompts(m->cfg.vocab_size, 3, len, plen); /* same prefix, different suffixes */
    if (!p) goto done;
    eng_sampling_params sp;
    eng_params_default(&sp);
    sp.temperature = 0;
    sp.max_tokens = (int)b->out_len;
    sp.ignore_eos = 1;
    double ttft[3];
    int cached[3];
    for (int i = 0; i < 3; i++) { /* 0: warm-up of the code paths on an unrelated prompt; 1: cold; 2: warm */
        int32_t *pr = p + (size_t)i * (size_t)len;
        if (i == 0) pr[0] = (pr[0] + 1) % m->cfg.vocab_size; /* differs from the first block on */
        off_request rq = {pr, (int)len, &sp, 0, NULL};
        off_completion c;
        if (off_run(e, &rq, 1, &c, NULL, NULL, NULL)) {
            cli_error("%s", vc_errmsg());
            goto done;
        }
        ttft[i] = c.t_first;
        cached[i] = c.n_cached;
        off_free(&c, 1);
    }
    printf("prompt %lld tokens (shared prefix %lld + own %lld), block size %d\n", len, plen, slen, b->st.ec.block_size);
    printf("time to first token: cold %.3f s, prefix-cache hit %.3f s (%d tokens from cache): %.1fx faster\n", ttft[1],
           ttft[2], cached[2], ttft[1] / ttft[2]);
    if (b->json)
        printf("{\"prefix_len\":%lld,\"prompt_len\":%lld,\"ttft_cold_s\":%.4f,\"ttft_cached_s\":%.4f,"
               "\"cached_tokens\":%d,\"speedup\":%.3f}\n",
               plen, len, ttft[1], ttft[2], cached[2], ttft[1] / ttft[2]);
    status = 0;
done:
    free(p);
    eng_free(e);
    stk_free(st);
    return status;
}

int cli_bench(int argc, char **argv) {
    const char *what = argc >= 1 ? argv[0] : "";
    if (!strcmp(what, "--help") || !strcmp(what, "-h")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(what, "tokenize")) return cli_bench_tokenize(argc - 1, argv + 1);
    if (!strcmp(what, "serve")) return cli_bench_serve(argc - 1, argv + 1);
    if (!strcmp(what, "structured")) return cli_bench_structured(argc - 1, argv + 1);
    bench_args b = {.in_len = 128, .out_len = 64, .batch = 1, .iters = 3, .warm = 1};
    stk_params_default(&b.st);
    cli_lora_init(&b.lora);
    b.st.tokenizer = 0;
    b.st.engine = 0;
    b.st.quiet = 1;
    b.st.ec.max_num_batched_tokens = 0; /* each benchmark has its own default */
    if (!strcmp(what, "latency") || !strcmp(what, "throughput") || !strcmp(what, "prefix-cache")) {
        int rc = parse(argc - 1, argv + 1, &b);
        if (rc) return rc == 1 ? 0 : rc;
        if (b.num_loras && strcmp(what, "throughput")) {
            cli_error("bench %s: --num-loras is a bench throughput flag", what);
            return 2;
        }
        if (!strcmp(what, "latency")) return bench_latency(&b);
        if (!strcmp(what, "prefix-cache")) {
            if (b.in_len == 128) b.in_len = 16;
            if (b.out_len == 64) b.out_len = 1;
            return bench_prefix(&b);
        }
        if (!b.st.ec.max_num_batched_tokens) b.st.ec.max_num_batched_tokens = 4096;
        return bench_throughput(&b);
    }
    cli_error("bench: unknown benchmark '%s' (available: latency, throughput, prefix-cache, tokenize, serve, structured)", what);
    fputs(usage, stderr);
    return 2;
}
