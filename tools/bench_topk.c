/* Seeded top_k sampling (temperature 0.8, top_k 40, top_p 0.95), 16 sequences of 32 + 64 tokens, the engine
 * on random bf16 weights of a config.json; two rounds (the first warms up). Run it with and without
 * VLLMC_NO_TOPK_STEP=1 (the engine's top-k steps against whole logit rows), alternating:
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Isrc -Iinclude -pthread -o /tmp/bench_topk tools/bench_topk.c \
 *       build/libvllmc.a -lmicrohttpd -lcurl -lcjson -lpcre2-8 -lutf8proc -lm -ldl
 *   /tmp/bench_topk CONFIG.json [cpu|gpu] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "stack.h"
#include "base/err.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
    stk_params p;
    stk_params_default(&p);
    p.model = argv[1];
    p.load_dummy = 1;
    p.dtype = "bfloat16";
    p.device = argc > 2 ? argv[2] : "cpu";
    p.tokenizer = 0;
    p.quiet = 1;
    p.ec.max_num_seqs = 16;
    p.ec.max_model_len = 512;
    p.ec.quiet = 1;
    stk_stack *st;
    if (stk_open(&p, &st)) { fprintf(stderr, "%s\n", vc_errmsg()); return 1; }
    int V = st->m->cfg.vocab_size;
    for (int round = 0; round < 2; round++) {
        int32_t prompt[32];
        eng_sampling_params sp;
        eng_params_default(&sp);
        sp.temperature = 0.8f; sp.top_k = 40; sp.top_p = 0.95f; sp.max_tokens = 64; sp.ignore_eos = 1; sp.has_seed = 1;
        for (int i = 0; i < 16; i++) {
            char id[16]; snprintf(id, sizeof id, "r%d_%d", round, i);
            for (int j = 0; j < 32; j++) prompt[j] = (i * 131 + j * 7919) % V;
            sp.seed = i;
            if (eng_add(st->e, id, prompt, 32, &sp, 0)) { fprintf(stderr, "%s\n", vc_errmsg()); return 1; }
        }
        double t0 = now(); int toks = 0;
        while (eng_has_unfinished(st->e)) {
            const eng_output *o; int n;
            if (eng_step(st->e, &o, &n)) { fprintf(stderr, "%s\n", vc_errmsg()); return 1; }
            for (int k = 0; k < n; k++) toks += o[k].has_token;
        }
        double dt = now() - t0;
        eng_stats s = eng_get_stats(st->e);
        printf("round %d: %d tokens in %.3f s = %.1f tok/s (topk rows %llu, whole %llu)\n", round, toks, dt, toks / dt,
               (unsigned long long)s.topk_rows, (unsigned long long)s.topk_full_rows);
    }
    stk_free(st);
    return 0;
}
