#include "engine/gen.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "runner/runner.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    int len;          /* tokens in context (prompt + generated so far, incl. pending) */
    int prefilled;    /* prompt tokens already run */
    int done;
    int32_t last;     /* most recent sampled token, not yet run */
    samp_rng rng;
} seq_state;

void gen_output_free(gen_output *o) {
    free(o->tokens);
    free(o->lp_ids);
    free(o->lp_vals);
    memset(o, 0, sizeof *o);
}

static int is_eos(const model_config *c, int tok) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_token_ids[i] == tok) return 1;
    return 0;
}

/* Append a sampled token to sequence i; mark it done on EOS or length. */
static void accept(const model_config *c, const gen_request *rq, gen_output *o, seq_state *st, const float *logits,
                   samp_scratch *sc, int max_len) {
    int tok = samp_sample(logits, c->vocab_size, &rq->sp, &st->rng, sc);
    int k = o->lp_k;
    if (k > 0) samp_top_logprobs(logits, c->vocab_size, k, o->lp_ids + (size_t)o->n_tokens * k, o->lp_vals + (size_t)o->n_tokens * k);
    o->tokens[o->n_tokens++] = tok;
    st->last = tok;
    if (!rq->ignore_eos && is_eos(c, tok)) {
        o->finish_stop = 1;
        st->done = 1;
    } else if (o->n_tokens >= rq->max_tokens || st->len + 1 >= max_len) {
        st->done = 1;
    }
}

int gen_run(mdl_model *m, const gen_options *o, const gen_request *reqs, int n, gen_output *outs, gen_timing *t) {
    const model_config *c = &m->cfg;
    int bs = o && o->block_size > 0 ? o->block_size : 16;
    int max_bt = o && o->max_batch_tokens > 0 ? o->max_batch_tokens : 2048;
    int max_len = c->max_position_embeddings;
    memset(t, 0, sizeof *t);
    memset(outs, 0, sizeof *outs * (size_t)n);
    if (n < 1) return VC_OK;
    if (max_bt < n) max_bt = n;
    int max_blocks = 1, total_blocks = 0;
    int64_t total_prompt = 0;
    for (int i = 0; i < n; i++) {
        const gen_request *rq = &reqs[i];
        if (rq->prompt_len < 1) return vc_errf(VC_EINVAL, "prompt %d is empty", i);
        if (rq->prompt_len >= max_len)
            return vc_errf(VC_EINVAL, "prompt %d has %d tokens; the model's maximum context length is %d", i,
                           rq->prompt_len, max_len);
        if (rq->max_tokens < 1) return vc_errf(VC_EINVAL, "max_tokens must be at least 1, got %d", rq->max_tokens);
        for (int j = 0; j < rq->prompt_len; j++)
            if (rq->prompt[j] < 0 || rq->prompt[j] >= c->vocab_size)
                return vc_errf(VC_EINVAL, "prompt %d: token id %d out of vocabulary (size %d)", i, rq->prompt[j], c->vocab_size);
        int rc = samp_params_check(&rq->sp);
        if (rc) return vc_err_prefix(rc, "prompt %d", i);
        int64_t len = (int64_t)rq->prompt_len + rq->max_tokens;
        if (len > max_len) len = max_len;
        int nb = (int)((len + bs - 1) / bs);
        if (nb > max_blocks) max_blocks = nb;
        total_blocks += nb;
        total_prompt += rq->prompt_len;
    }
    if (total_prompt < max_bt) max_bt = (int)total_prompt < n ? n : (int)total_prompt;
    rn_params rp = {.max_tokens = max_bt, .max_seqs = n, .max_blocks = max_blocks, .num_blocks = total_blocks, .block_size = bs};
    rn_runner *r = NULL;
    int rc = rn_create(m, &rp, &r);
    if (rc) return rc;

    seq_state *st = calloc((size_t)n, sizeof *st);
    int32_t *bt = calloc((size_t)n * (size_t)max_blocks, sizeof *bt);
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)max_bt), *pos = malloc(sizeof(int32_t) * (size_t)max_bt);
    int32_t *slot = malloc(sizeof(int32_t) * (size_t)max_bt), *qs = malloc(sizeof(int32_t) * (size_t)(n + 1));
    int32_t *slen = malloc(sizeof(int32_t) * (size_t)n), *lrows = malloc(sizeof(int32_t) * (size_t)n);
    int32_t *bt_batch = malloc(sizeof(int32_t) * (size_t)n * (size_t)max_blocks);
    int *who = malloc(sizeof(int) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)n * (size_t)c->vocab_size);
    samp_scratch sc = {0};
    if (!st || !bt || !tok || !pos || !slot || !qs || !slen || !lrows || !bt_batch || !who || !logits) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = samp_scratch_init(&sc, c->vocab_size))) goto out;
    int next_block = 0;
    for (int i = 0; i < n; i++) {
        int64_t len = (int64_t)reqs[i].prompt_len + reqs[i].max_tokens;
        if (len > max_len) len = max_len;
        for (int j = 0; j < (len + bs - 1) / bs; j++) bt[(size_t)i * max_blocks + j] = next_block++;
        samp_rng_seed(&st[i].rng, reqs[i].seed);
        outs[i].tokens = malloc(sizeof(int32_t) * (size_t)reqs[i].max_tokens);
        if (!outs[i].tokens) {
            rc = vc_errf(VC_ENOMEM, "out of memory");
            goto out;
        }
        if (reqs[i].logprobs > 0) {
            int k = reqs[i].logprobs < c->vocab_size ? reqs[i].logprobs : c->vocab_size;
            outs[i].lp_k = k;
            outs[i].lp_ids = malloc(sizeof(int32_t) * (size_t)k * (size_t)reqs[i].max_tokens);
            outs[i].lp_vals = malloc(sizeof(float) * (size_t)k * (size_t)reqs[i].max_tokens);
            if (!outs[i].lp_ids || !outs[i].lp_vals) {
                rc = vc_errf(VC_ENOMEM, "out of memory");
                goto out;
            }
        }
    }

    /* Prefill: fill each chunk with as many prompt tokens as fit, in prompt order. */
    double t0 = now_s();
    int cur = 0;
    while (cur < n) {
        int nt = 0, ns = 0, nl = 0;
        qs[0] = 0;
        for (int i = cur; i < n && nt < max_bt; i++) {
            const gen_request *rq = &reqs[i];
            int take = rq->prompt_len - st[i].prefilled;
            if (take > max_bt - nt) take = max_bt - nt;
            for (int j = 0; j < take; j++) {
                int p = st[i].prefilled + j;
                tok[nt] = rq->prompt[p];
                pos[nt] = p;
                slot[nt] = bt[(size_t)i * max_blocks + p / bs] * bs + p % bs;
                nt++;
            }
            st[i].prefilled += take;
            st[i].len = st[i].prefilled;
            memcpy(bt_batch + (size_t)ns * max_blocks, bt + (size_t)i * max_blocks, sizeof(int32_t) * (size_t)max_blocks);
            slen[ns] = st[i].len;
            qs[ns + 1] = nt;
            if (st[i].prefilled == rq->prompt_len) {
                lrows[nl] = nt - 1;
                who[nl++] = i;
            }
            ns++;
        }
        rn_batch b = {nt, tok, pos, slot, ns, qs, slen, bt_batch, max_blocks, nl, lrows};
        if ((rc = rn_forward(r, &b, logits))) goto out;
        for (int j = 0; j < nl; j++)
            accept(c, &reqs[who[j]], &outs[who[j]], &st[who[j]], logits + (size_t)j * c->vocab_size, &sc, max_len);
        while (cur < n && st[cur].prefilled == reqs[cur].prompt_len) cur++;
    }
    double t1 = now_s();
    t->prefill_s = t1 - t0;
    t->prefill_tokens = total_prompt;

    /* Decode: one token per unfinished sequence per step. */
    for (;;) {
        int ns = 0;
        qs[0] = 0;
        for (int i = 0; i < n; i++) {
            if (st[i].done) continue;
            int p = st[i].len;
            tok[ns] = st[i].last;
            pos[ns] = p;
            slot[ns] = bt[(size_t)i * max_blocks + p / bs] * bs + p % bs;
            st[i].len++;
            memcpy(bt_batch + (size_t)ns * max_blocks, bt + (size_t)i * max_blocks, sizeof(int32_t) * (size_t)max_blocks);
            slen[ns] = st[i].len;
            lrows[ns] = ns;
            who[ns] = i;
            qs[ns + 1] = ns + 1;
            ns++;
        }
        if (ns == 0) break;
        rn_batch b = {ns, tok, pos, slot, ns, qs, slen, bt_batch, max_blocks, ns, lrows};
        if ((rc = rn_forward(r, &b, logits))) goto out;
        for (int j = 0; j < ns; j++)
            accept(c, &reqs[who[j]], &outs[who[j]], &st[who[j]], logits + (size_t)j * c->vocab_size, &sc, max_len);
        t->decode_tokens += ns;
    }
    t->decode_s = now_s() - t1;
out:
    if (rc)
        for (int i = 0; i < n; i++) gen_output_free(&outs[i]);
    samp_scratch_free(&sc);
    free(st);
    free(bt);
    free(tok);
    free(pos);
    free(slot);
    free(qs);
    free(slen);
    free(lrows);
    free(bt_batch);
    free(who);
    free(logits);
    rn_free(r);
    return rc;
}
