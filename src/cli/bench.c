/* vllmc bench latency: prefill and decode speed of one batch, printed next to
 * the machine's limits measured in the same run (STREAM triad bandwidth and
 * peak FMA throughput of the same threads). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "base/err.h"
#include "base/file.h"
#include "cli/cli.h"
#include "engine/gen.h"
#include "model/model.h"

static const char usage[] =
    "usage: vllmc bench latency [MODEL_DIR | --random-weights CONFIG.json] [--input-len 128] [--output-len 64]\n"
    "       [--batch-size 1] [--num-iters 3] [--num-iters-warmup 1] [--dtype D] [--device auto|cpu] [--json]\n";

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int bench_latency(int argc, char **argv) {
    const char *dir = NULL, *cfg_path = NULL, *dtype = NULL, *device = NULL;
    long long in_len = 128, out_len = 64, batch = 1, iters = 3, warm = 1;
    int json = 0, status = 2;
    be_backend *be = NULL;
    mdl_model *m = NULL;
    int32_t *prompt = NULL;
    gen_request *reqs = NULL;
    gen_output *outs = NULL;
    double *pf = NULL, *dc = NULL, *tr = NULL, *frac = NULL;
    cli_args a = {argc, 0, argv, NULL};
    while (a.i < argc) {
        const char *v;
        if (cli_flag(&a, "--random-weights")) {
            if (!(cfg_path = cli_value(&a, "--random-weights"))) return 2;
        } else if (cli_flag(&a, "--input-len")) {
            if (!(v = cli_value(&a, "--input-len")) || cli_parse_int(v, "--input-len", 1, 1 << 20, &in_len)) return 2;
        } else if (cli_flag(&a, "--output-len")) {
            if (!(v = cli_value(&a, "--output-len")) || cli_parse_int(v, "--output-len", 1, 1 << 20, &out_len)) return 2;
        } else if (cli_flag(&a, "--batch-size")) {
            if (!(v = cli_value(&a, "--batch-size")) || cli_parse_int(v, "--batch-size", 1, 4096, &batch)) return 2;
        } else if (cli_flag(&a, "--num-iters")) {
            if (!(v = cli_value(&a, "--num-iters")) || cli_parse_int(v, "--num-iters", 1, 1000, &iters)) return 2;
        } else if (cli_flag(&a, "--num-iters-warmup")) {
            if (!(v = cli_value(&a, "--num-iters-warmup")) || cli_parse_int(v, "--num-iters-warmup", 0, 1000, &warm)) return 2;
        } else if (cli_flag(&a, "--dtype")) {
            if (!(dtype = cli_value(&a, "--dtype"))) return 2;
        } else if (cli_flag(&a, "--device")) {
            if (!(device = cli_value(&a, "--device"))) return 2;
        } else if (cli_flag(&a, "--json")) {
            json = 1;
        } else if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (argv[a.i][0] == '-') {
            cli_error("bench latency: unknown option '%s'", argv[a.i]);
            return 2;
        } else if (!dir) {
            dir = argv[a.i++];
        } else {
            cli_error("bench latency: unexpected argument '%s'", argv[a.i]);
            return 2;
        }
    }
    if (!dir == !cfg_path) {
        cli_error("bench latency: give either MODEL_DIR or --random-weights CONFIG.json");
        fputs(usage, stderr);
        return 2;
    }
    status = 1;
    if (cli_open_backend(device, &be)) goto done;
    if (cfg_path) {
        char *text;
        size_t len;
        model_config cfg;
        cfg_dtype dt;
        if (vc_read_file(cfg_path, 16 << 20, &text, &len)) {
            cli_error("%s", vc_errmsg());
            goto done;
        }
        int rc = cfg_parse(text, len, cfg_path, &cfg);
        free(text);
        if (rc || cfg_resolve_dtype(dtype ? dtype : "auto", cfg.torch_dtype, &dt) ||
            mdl_random(&cfg, mdl_dtype_from_cfg(dt), 1234, be, &m)) {
            cli_error("%s", vc_errmsg());
            goto done;
        }
    } else if (mdl_load(dir, dtype, be, &m)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    const model_config *c = &m->cfg;
    if (in_len + out_len > c->max_position_embeddings) {
        cli_error("--input-len + --output-len (%lld) exceeds the model's context length %d", in_len + out_len,
                  c->max_position_embeddings);
        goto done;
    }
    tp_pool *pool = be_cpu_pool(be);
    /* This VM's bandwidth drifts by 2x within a minute (shared host), so the
     * triad is measured next to every timed iteration and each decode figure
     * is compared with its own neighbour; we report medians of both. */
    double peak = cpu_measure_peak_gflops(pool);

    prompt = malloc(sizeof *prompt * (size_t)in_len * (size_t)batch);
    reqs = calloc((size_t)batch, sizeof *reqs);
    outs = calloc((size_t)batch, sizeof *outs);
    pf = calloc((size_t)iters, sizeof *pf);
    dc = calloc((size_t)iters, sizeof *dc);
    tr = calloc((size_t)iters, sizeof *tr);
    frac = calloc((size_t)iters, sizeof *frac);
    if (!prompt || !reqs || !outs || !pf || !dc || !tr || !frac) goto done;
    uint64_t x = 88172645463325252ull;
    for (long long i = 0; i < in_len * batch; i++) { /* random prompt tokens */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        prompt[i] = (int32_t)(x % (uint64_t)c->vocab_size);
    }
    samp_params greedy = {.temperature = 0, .top_p = 1, .top_k = 0, .min_p = 0};
    for (long long b = 0; b < batch; b++)
        reqs[b] = (gen_request){prompt + b * in_len, (int)in_len, (int)out_len, 1, greedy, (uint64_t)b, 0};
    gen_options go = {.block_size = 16, .max_batch_tokens = (int)(in_len * batch < 8192 ? in_len * batch : 8192)};
    for (long long it = 0; it < warm + iters; it++) {
        gen_timing t;
        if (gen_run(m, &go, reqs, (int)batch, outs, &t)) {
            cli_error("%s", vc_errmsg());
            goto done;
        }
        for (long long b = 0; b < batch; b++) gen_output_free(&outs[b]);
        if (it >= warm) {
            int k = (int)(it - warm);
            pf[k] = (double)t.prefill_tokens / t.prefill_s;
            dc[k] = t.decode_s > 0 ? (double)t.decode_tokens / t.decode_s : 0;
            tr[k] = cpu_measure_triad_gbs(pool, (size_t)256 << 20, 3);
            /* decode reads every weight once per step; a step makes `batch` tokens */
            frac[k] = tr[k] > 0 ? dc[k] / (double)batch * (double)m->decode_bytes_per_token * 1e-9 / tr[k] : 0;
        }
        if (!json) fprintf(stderr, "%s %lld: prefill %.1f tok/s, decode %.2f tok/s\n", it < warm ? "warmup" : "iter",
                           it < warm ? it : it - warm, (double)t.prefill_tokens / t.prefill_s,
                           t.decode_s > 0 ? (double)t.decode_tokens / t.decode_s : 0);
    }
    double pf_tps = median(pf, (int)iters), dc_tps = median(dc, (int)iters);
    double triad = median(tr, (int)iters), bw_frac = median(frac, (int)iters);
    /* Per prefill token: 2 flops per matmul weight outside the embedding and head. */
    double mat_params = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const mdl_layer *L = &m->layers[l];
        const be_tensor *ts[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) mat_params += (double)ts[i]->rows * (double)ts[i]->cols;
    }
    double pf_gflops = pf_tps * 2.0 * mat_params * 1e-9;
    double bw = dc_tps / (double)batch * (double)m->decode_bytes_per_token * 1e-9;
    printf("model: %s %s, %d layers, hidden %d, %.1f M params, weights %.2f GB, decode reads %.1f MB/step\n",
           c->arch, be_dtype_name(m->wdtype), c->n_layers, c->hidden_size,
           (double)m->weight_bytes / be_dtype_size(m->wdtype) * 1e-6, (double)m->weight_bytes * 1e-9,
           (double)m->decode_bytes_per_token * 1e-6);
    printf("machine: %d threads (%s), triad %.1f GB/s (median of %lld, one after each iteration), peak FMA %.1f GFLOP/s\n",
           be_cpu_nthreads(be), tp_describe(pool), triad, iters, peak);
    printf("prefill: %.1f tokens/s (input %lld x batch %lld), %.1f GFLOP/s = %.0f%% of peak\n", pf_tps, in_len, batch,
           pf_gflops, 100.0 * pf_gflops / peak);
    printf("decode: %.2f tokens/s (output %lld x batch %lld), weight bandwidth %.1f GB/s = %.0f%% of triad\n", dc_tps,
           out_len, batch, bw, 100.0 * bw_frac);
    if (json)
        printf("{\"model\":\"%s\",\"dtype\":\"%s\",\"input_len\":%lld,\"output_len\":%lld,\"batch_size\":%lld,"
               "\"threads\":%d,\"prefill_tokens_per_s\":%.3f,\"prefill_gflops\":%.3f,\"decode_tokens_per_s\":%.3f,"
               "\"decode_bandwidth_gbs\":%.3f,\"decode_bandwidth_fraction\":%.4f,\"machine_bandwidth_gbs\":%.3f,"
               "\"machine_peak_gflops\":%.3f,\"decode_bytes_per_step\":%llu}\n",
               c->arch, be_dtype_name(m->wdtype), in_len, out_len, batch, be_cpu_nthreads(be), pf_tps, pf_gflops,
               dc_tps, bw, bw_frac, triad, peak, (unsigned long long)m->decode_bytes_per_token);
    status = 0;
done:
    free(prompt);
    free(reqs);
    free(outs);
    free(pf);
    free(dc);
    free(tr);
    free(frac);
    mdl_free(m);
    be_free(be);
    return status;
}

int cli_bench(int argc, char **argv) {
    if (argc >= 1 && strcmp(argv[0], "latency") == 0) return bench_latency(argc - 1, argv + 1);
    cli_error("bench: unknown benchmark '%s' (available: latency)", argc >= 1 ? argv[0] : "");
    fputs(usage, stderr);
    return 2;
}
