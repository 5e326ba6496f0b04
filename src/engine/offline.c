#include "engine/offline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int off_count(const off_request *rq, int n) {
    int t = 0;
    for (int i = 0; i < n; i++) t += rq[i].sp->n;
    return t;
}

void off_free(off_completion *c, int n) {
    for (int i = 0; i < n; i++) {
        free(c[i].tokens);
        free(c[i].lp_ids);
        free(c[i].lp_vals);
        free(c[i].tok_lp);
        free(c[i].tok_rank);
        free(c[i].plp_ids);
        free(c[i].plp_vals);
        free(c[i].plp_tok);
        free(c[i].error);
    }
    memset(c, 0, sizeof *c * (size_t)n);
}

static int append(off_completion *c, int cap, const eng_output *o) {
    if (c->n_tokens >= cap) return VC_OK; /* cannot happen: max_tokens bounds it */
    if (o->prompt_token_logprob && !c->plp_tok) {
        size_t np = (size_t)o->n_prompt, k = (size_t)o->prompt_lp_k;
        c->plp_tok = malloc(sizeof(float) * np);
        c->plp_ids = malloc(sizeof(int32_t) * np * (k ? k : 1));
        c->plp_vals = malloc(sizeof(float) * np * (k ? k : 1));
        if (!c->plp_tok || !c->plp_ids || !c->plp_vals) return vc_errf(VC_ENOMEM, "out of memory");
        memcpy(c->plp_tok, o->prompt_token_logprob, sizeof(float) * np);
        if (k) {
            memcpy(c->plp_ids, o->prompt_lp_ids, sizeof(int32_t) * np * k);
            memcpy(c->plp_vals, o->prompt_lp_vals, sizeof(float) * np * k);
        }
        c->plp_k = (int)k;
    }
    int i = c->n_tokens++;
    c->tokens[i] = o->token;
    if (c->lp_k > 0) {
        for (int k = 0; k < c->lp_k; k++) {
            c->lp_ids[(size_t)i * c->lp_k + k] = k < o->n_top ? o->top_ids[k] : -1;
            c->lp_vals[(size_t)i * c->lp_k + k] = k < o->n_top ? o->top_logprobs[k] : 0.0f;
        }
    }
    if (c->tok_lp) {
        c->tok_lp[i] = o->token_logprob;
        c->tok_rank[i] = o->token_rank;
    }
    return VC_OK;
}

/* After an error: abort requests 0..n-1 of this run and step until the engine holds none, so that
 * it is left as it was found (ids "0".."n-1" free for the next run). A step that fails again (a
 * lost device) ends it; an abort that could not be queued runs its request to the end. */
static void withdraw(eng_engine *e, int n) {
    char id[24];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%d", i);
        eng_abort(e, id, -1, ENG_FINISH_ABORT);
    }
    while (eng_has_unfinished(e)) {
        const eng_output *o;
        int no;
        if (eng_step(e, &o, &no)) break;
    }
}

int off_run(eng_engine *e, const off_request *rq, int n, off_completion *out, off_token_fn fn, void *ctx,
            double *t_total) {
    int total = off_count(rq, n), rc = VC_OK;
    memset(out, 0, sizeof *out * (size_t)total);
    int *first = malloc(sizeof(int) * (size_t)(n + 1));
    int *cap = malloc(sizeof(int) * (size_t)(total > 0 ? total : 1));
    if (!first || !cap) {
        free(first);
        free(cap);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    first[0] = 0;
    for (int i = 0; i < n; i++) first[i + 1] = first[i] + rq[i].sp->n;
    for (int i = 0; i < n && !rc; i++)
        for (int j = 0; j < rq[i].sp->n; j++) {
            off_completion *c = &out[first[i] + j];
            int mt = rq[i].sp->max_tokens; /* at most what the context leaves room for */
            if (mt > eng_max_model_len(e) || mt < 1) mt = eng_max_model_len(e);
            cap[first[i] + j] = mt;
            c->stop_token = -1;
            c->plp_k = -1;
            c->n_prompt = rq[i].n_prompt;
            c->tokens = malloc(sizeof(int32_t) * (size_t)mt);
            if (rq[i].sp->logprobs >= 0) {
                c->lp_k = rq[i].sp->logprobs;
                c->lp_ids = malloc(sizeof(int32_t) * (size_t)mt * (size_t)(c->lp_k ? c->lp_k : 1));
                c->lp_vals = malloc(sizeof(float) * (size_t)mt * (size_t)(c->lp_k ? c->lp_k : 1));
                c->tok_lp = malloc(sizeof(float) * (size_t)mt);
                c->tok_rank = malloc(sizeof(int) * (size_t)mt);
                if (!c->lp_ids || !c->lp_vals || !c->tok_lp || !c->tok_rank) rc = vc_errf(VC_ENOMEM, "out of memory");
            }
            if (!c->tokens) rc = vc_errf(VC_ENOMEM, "out of memory");
        }
    double t0 = now_s();
    int added = 0;
    for (int i = 0; i < n && !rc; i++) {
        char id[24];
        snprintf(id, sizeof id, "%d", i);
        rc = eng_add_lora(e, id, rq[i].prompt, rq[i].n_prompt, rq[i].sp, rq[i].priority, rq[i].lora);
        if (rc) vc_err_prefix(rc, "prompt %d", i);
        else added++;
    }
    while (!rc && eng_has_unfinished(e)) {
        const eng_output *o;
        int no;
        if ((rc = eng_step(e, &o, &no))) break;
        double t = now_s() - t0;
        for (int k = 0; k < no; k++) {
            int r = atoi(o[k].request_id);
            if (r < 0 || r >= n || o[k].index >= rq[r].sp->n) continue;
            off_completion *c = &out[first[r] + o[k].index];
            if (o[k].has_token) {
                if (c->n_tokens == 0) c->t_first = t;
                if ((rc = append(c, cap[first[r] + o[k].index], &o[k]))) break;
                if (o[k].finish) c->finish = o[k].finish; /* fn sees why a last token ended the sequence */
                /* every token reaches fn (the last one too, for its text); only a live one can be stopped */
                if (fn && fn(ctx, r, o[k].index, c) && !o[k].finish &&
                    (rc = eng_abort(e, o[k].request_id, o[k].index, ENG_FINISH_STOP)))
                    break;
            }
            if (o[k].finish) {
                c->finish = o[k].finish;
                c->stop_token = o[k].stop_token;
                c->n_cached = o[k].n_cached;
                c->t_end = t;
                if (o[k].error && !c->error && !(c->error = strdup(o[k].error))) {
                    rc = vc_errf(VC_ENOMEM, "out of memory");
                    break;
                }
            }
        }
    }
    if (rc) {
        char msg[1024]; /* withdrawing may overwrite the message */
        snprintf(msg, sizeof msg, "%s", vc_errmsg());
        withdraw(e, added);
        vc_errf(rc, "%s", msg);
    }
    if (t_total) *t_total = now_s() - t0;
    free(first);
    free(cap);
    if (rc) off_free(out, total);
    return rc;
}
