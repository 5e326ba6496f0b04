/* eng_step: intake, aborts, scheduling, the batched forward pass, sampling and
 * stop checks, and the step's outputs. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "engine/engine_internal.h"

/* Output slots are reserved before the step (reserve()): one per live sequence. */
static eng_output *new_output(eng_engine *e, const eng_seq *s) {
    if (e->n_outs == e->cap_outs) return NULL;
    eng_output *o = &e->outs[e->n_outs++];
    memset(o, 0, sizeof *o);
    o->request_id = s->id;
    o->index = s->index;
    o->stop_token = -1;
    o->n_prompt = s->n_prompt;
    o->n_cached = s->n_cached > 0 ? s->n_cached : 0;
    o->n_output = s->n_tokens - s->n_prompt;
    return o;
}

/* Take a sequence out of its queue and keep it until the next step, when its
 * output (which points into it) has been consumed. */
static int finish(eng_engine *e, eng_seq *s, eng_finish why) {
    if (s->status == RQ_RUNNING) {
        for (int i = 0; i < e->n_running; i++)
            if (e->running[i] == s) {
                memmove(e->running + i, e->running + i + 1, sizeof *e->running * (size_t)(e->n_running - i - 1));
                e->n_running--;
                break;
            }
    } else if (s->status == RQ_WAITING) {
        for (int i = 0; i < e->n_waiting; i++)
            if (e->waiting[i] == s) {
                memmove(e->waiting + i, e->waiting + i + 1, sizeof *e->waiting * (size_t)(e->n_waiting - i - 1));
                e->n_waiting--;
                break;
            }
    }
    if (e->n_finished == e->cap_finished) return -1; /* reserved: cannot happen */
    sched_release(e, s);
    s->status = RQ_FINISHED;
    s->finish = why;
    e->finished[e->n_finished++] = s;
    return 0;
}

static int is_eos(const model_config *c, int32_t t) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_token_ids[i] == t) return 1;
    return 0;
}

/* vLLM's check_stop, after appending token t. */
static eng_finish check_stop(const eng_engine *e, eng_seq *s, int32_t t) {
    int n_out = s->n_tokens - s->n_prompt;
    if (n_out >= s->sp.min_tokens) {
        if (!s->sp.ignore_eos && is_eos(&e->m->cfg, t)) return ENG_FINISH_STOP;
        for (int i = 0; i < s->sp.n_stop_token_ids; i++)
            if (s->sp.stop_token_ids[i] == t) {
                s->stop_token = t;
                return ENG_FINISH_STOP;
            }
    }
    if (n_out >= s->sp.max_tokens || s->n_tokens >= e->max_model_len) return ENG_FINISH_LENGTH;
    return ENG_FINISH_NONE;
}

/* Logprob storage is reserved at the start of each step for the worst case
 * (outputs point into it, so it cannot move during the step). */
static int reserve_lp(eng_engine *e, int k) { return e->lp_used + k <= e->lp_cap ? 0 : -1; }

/* A sampling row the device's argmax can pick (rn_batch.argmax): greedy, no logits processor, no logprobs. */
static int plain_greedy(const eng_seq *s) { return s->sp.temperature < SAMP_EPS && !s->lp.active && s->sp.logprobs < 0; }

/* Candidates a top-k step reads per row beyond a row's top_k: samp_sample_top needs the k-th best to be
 * strictly more likely than the last one read (else it asks for the whole row). */
#define TOPK_MARGIN 8

/* A sampling row whose token samp_sample_top can draw from its best few (rn_batch.topk): sampled with a
 * top_k the device's selection covers, no logits processor, no logprobs. */
static int top_sampled(const eng_seq *s) {
    return s->sp.temperature >= SAMP_EPS && s->sp.top_k > 0 && s->sp.top_k + TOPK_MARGIN <= BE_TOPK_MAX &&
           !s->lp.active && s->sp.logprobs < 0;
}

/* Sample for a sequence whose scheduled tokens reached the end of its context: from its logits row, or take
 * `picked` (>= 0: the device's argmax of the row, for a plain_greedy sequence, whose logits were not read
 * back). */
static int sample_one(eng_engine *e, eng_seq *s, float *logits, int32_t picked) {
    const model_config *c = &e->m->cfg;
    int V = c->vocab_size, K = s->sp.logprobs;
    int32_t t = picked;
    if (t < 0) {
        if (K >= 0) memcpy(e->raw, logits, sizeof(float) * (size_t)V);
        int rc = lp_apply(&s->lp, s->tokens + s->n_prompt, s->n_tokens - s->n_prompt, logits);
        if (rc && s->lp.g_err) {
            /* its grammar allows no token (or was violated): the request ends, the step goes on */
            eng_output *o = new_output(e, s);
            if (!o) return vc_errf(VC_ERR, "engine: no output slot reserved");
            o->finish = ENG_FINISH_ABORT;
            o->error = s->lp.g_msg;
            if (finish(e, s, ENG_FINISH_ABORT)) return vc_errf(VC_ERR, "engine: no finished slot reserved");
            return VC_OK;
        }
        if (rc) return rc;
        samp_params p = {s->sp.temperature, s->sp.top_p, s->sp.top_k, s->sp.min_p};
        t = samp_sample(logits, V, &p, &s->rng, &e->sc);
    }
    s->tokens[s->n_tokens++] = t;
    e->generation_tokens++;
    eng_output *o = new_output(e, s);
    if (!o) return vc_errf(VC_ERR, "engine: no output slot reserved");
    o->has_token = 1;
    o->token = t;
    if (s->sp.prompt_logprobs >= 0 && !s->plp_sent) {
        s->plp_sent = 1;
        o->prompt_lp_k = s->plp_k > 0 ? s->plp_k : 0;
        o->prompt_lp_ids = s->plp_ids;
        o->prompt_lp_vals = s->plp_vals;
        o->prompt_token_logprob = s->plp_tok;
        o->prompt_token_rank = s->plp_rank;
    }
    if (K >= 0) {
        int k = K < V ? K : V;
        if (reserve_lp(e, k)) return vc_errf(VC_ENOMEM, "logprob storage exhausted");
        o->top_ids = e->lp_ids + e->lp_used;
        o->top_logprobs = e->lp_vals + e->lp_used;
        int got = lp_logprobs(e->raw, V, t, k, e->lp_ids + e->lp_used, e->lp_vals + e->lp_used, &o->token_logprob,
                              &o->token_rank);
        if (got < 0) return got;
        o->n_top = got;
        e->lp_used += got;
    }
    eng_finish f = check_stop(e, s, t);
    if (f != ENG_FINISH_NONE) {
        o->finish = f;
        o->stop_token = s->stop_token;
        if (finish(e, s, f)) return vc_errf(VC_ERR, "engine: no finished slot reserved");
    }
    return VC_OK;
}

/* Sample row r of a top-k step from its best few (samp_sample_top); where they do not decide the token,
 * from the whole row, read back now into `row`. */
static int sample_top(eng_engine *e, eng_seq *s, int r, float *row) {
    int k = e->topk_step, V = e->m->cfg.vocab_size;
    samp_params p = {s->sp.temperature, s->sp.top_p, s->sp.top_k, s->sp.min_p};
    int32_t t = samp_sample_top(e->top_ids + (size_t)r * k, e->top_vals + (size_t)r * k, k, V, &p, &s->rng, &e->sc);
    e->topk_rows++;
    if (t < 0) {
        int rc = rn_read_logits(e->runner, r, row);
        if (rc) return rc;
        e->topk_full_rows++;
    }
    return sample_one(e, s, row, t);
}

static int grow_to(void *arrp, int *cap, int need, size_t elem) {
    if (need <= *cap) return VC_OK;
    int nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *n = realloc(*(void **)arrp, elem * (size_t)nc);
    if (!n) return vc_errf(VC_ENOMEM, "out of memory");
    *(void **)arrp = n;
    *cap = nc;
    return VC_OK;
}

static int max_logprobs_of(eng_seq *const *q, int n, int k) {
    for (int i = 0; i < n; i++) k = q[i]->sp.logprobs > k ? q[i]->sp.logprobs : k;
    return k;
}

/* Everything this step can need, taken before anything changes (caller holds mu), so that a failed
 * allocation fails the step with the engine as it was: the waiting queue for every live sequence
 * (preemption moves running ones there), an output and a finished slot per live sequence (each
 * ends or samples at most once per step), logprob storage, and each sequence's penalty counts. */
static int reserve(eng_engine *e) {
    int live = e->n_waiting + e->n_running + e->n_inbox, rc;
    if ((rc = grow_to(&e->waiting, &e->cap_waiting, live + 1, sizeof *e->waiting)) ||
        (rc = grow_to(&e->outs, &e->cap_outs, e->n_outs + live, sizeof *e->outs)) ||
        (rc = grow_to(&e->finished, &e->cap_finished, e->n_finished + live, sizeof *e->finished)))
        return rc;
    int maxk = max_logprobs_of(e->running, e->n_running, 0);
    maxk = max_logprobs_of(e->waiting, e->n_waiting, maxk);
    maxk = max_logprobs_of(e->inbox, e->n_inbox, maxk);
    if (maxk > e->m->cfg.vocab_size) maxk = e->m->cfg.vocab_size;
    int samplers = live < e->cfg.max_num_seqs ? live : e->cfg.max_num_seqs;
    size_t need = (size_t)e->lp_used + (size_t)(samplers > 0 ? samplers : 1) * (size_t)(maxk + 1);
    if (need > (size_t)e->lp_cap) {
        int32_t *ni = realloc(e->lp_ids, sizeof *ni * need);
        if (ni) e->lp_ids = ni;
        float *nv = realloc(e->lp_vals, sizeof *nv * need);
        if (nv) e->lp_vals = nv;
        if (!ni || !nv) return vc_errf(VC_ENOMEM, "out of memory");
        e->lp_cap = (int)need;
    }
    for (int pass = 0; pass < 2; pass++) {
        eng_seq **q = pass ? e->waiting : e->running;
        int n = pass ? e->n_waiting : e->n_running;
        for (int i = 0; i < n; i++)
            if ((rc = lp_reserve(&q[i]->lp, q[i]->n_tokens - q[i]->n_prompt))) return rc;
    }
    return VC_OK;
}

/* Grammar masks for the next token of the sequences this step samples (lp_prepare: feeding the
 * matcher and the mask, the part of sampling that can allocate). They read only each sequence's
 * tokens and logits-processor state, which the forward pass does not touch, so they are computed on
 * the mask worker while it runs (the engine lock is not held: eng_add need not wait on them). */
static int samples(const eng_seq *s) { return s->n_computed + s->sched_tokens == s->n_tokens; }

static int prepare_masks(void *arg) {
    eng_engine *e = arg;
    for (int i = 0; i < e->n_sched; i++) {
        eng_seq *s = e->b_seqs[i];
        int rc = samples(s) ? lp_prepare(&s->lp, s->tokens + s->n_prompt, s->n_tokens - s->n_prompt) : VC_OK;
        if (rc) return rc;
    }
    return VC_OK;
}

static int masks_pending(const eng_engine *e) {
    for (int i = 0; i < e->n_sched; i++) {
        const eng_seq *s = e->b_seqs[i];
        if (samples(s) && lp_pending(&s->lp, s->n_tokens - s->n_prompt)) return 1;
    }
    return 0;
}

static int intake(eng_engine *e) {
    pthread_mutex_lock(&e->mu);
    int rc = reserve(e);
    if (rc) {
        pthread_mutex_unlock(&e->mu);
        return rc;
    }
    for (int i = 0; i < e->n_inbox; i++) {
        e->waiting[e->n_waiting++] = e->inbox[i];
        e->prompt_tokens += (uint64_t)e->inbox[i]->n_prompt;
    }
    e->n_inbox = 0;
    /* aborts: take them under the lock, apply below */
    int na = e->n_aborts;
    char **ids = e->aborts;
    eng_finish *why = e->abort_why;
    int *idx = e->abort_index;
    e->aborts = NULL;
    e->abort_why = NULL;
    e->abort_index = NULL;
    e->n_aborts = e->cap_aborts = 0;
    pthread_mutex_unlock(&e->mu);
    for (int a = 0; a < na; a++) {
        for (int pass = 0; pass < 2 && !rc; pass++) {
            eng_seq **q = pass ? e->waiting : e->running;
            int *n = pass ? &e->n_waiting : &e->n_running;
            for (int i = 0; i < *n;) {
                eng_seq *s = q[i];
                if (strcmp(s->id, ids[a]) != 0 || (idx[a] >= 0 && s->index != idx[a])) {
                    i++;
                    continue;
                }
                eng_output *o = new_output(e, s);
                if (!o || finish(e, s, why[a])) {
                    rc = vc_errf(VC_ERR, "engine: no output slot reserved");
                    break;
                }
                o->finish = why[a];
            }
        }
        free(ids[a]);
    }
    free(ids);
    free(why);
    free(idx);
    return rc;
}

/* The slot for adapter l this step: the one holding it, else a free one, else the least recently
 * used one that no sequence of this step uses (the scheduler keeps a step within max_loras). */
static int pick_slot(const eng_engine *e, const eng_lora *l) {
    int best = -1;
    for (int k = 0; k < e->cfg.max_loras; k++) {
        if (e->lslot[k] == l) return k;
        if (e->lstamp[k] == e->steps) continue; /* in use this step */
        if (best < 0 || (e->lslot[best] && (!e->lslot[k] || e->lstamp[k] < e->lstamp[best]))) best = k;
    }
    return best;
}

/* Put the scheduled sequences' adapters into the runner's LoRA slots and order the batch by slot, so
 * that each adapter's rows are one segment of the forward pass. */
static int assign_lora(eng_engine *e) {
    if (e->cfg.max_loras <= 0) return VC_OK;
    e->steps++;
    int any = 0;
    for (int i = 0; i < e->n_sched; i++) {
        eng_seq *s = e->b_seqs[i];
        s->lslot = -1;
        if (!s->lora) continue;
        any = 1;
        int k = pick_slot(e, s->lora);
        if (k < 0) return vc_errf(VC_ERR, "engine: more adapters in one step than --max-loras %d", e->cfg.max_loras);
        if (e->lslot[k] != s->lora) {
            eng_lora_unref(e->lslot[k]);
            e->lslot[k] = NULL; /* empty until written whole */
            int rc = rn_lora_set(e->runner, k, eng_lora_weights(s->lora));
            if (rc) return rc;
            e->lslot[k] = eng_lora_ref(s->lora);
        }
        e->lstamp[k] = e->steps;
        s->lslot = k;
    }
    for (int i = 1; any && i < e->n_sched; i++) { /* stable: by slot, the base model (-1) first */
        eng_seq *s = e->b_seqs[i];
        int j = i;
        for (; j > 0 && e->b_seqs[j - 1]->lslot > s->lslot; j--) e->b_seqs[j] = e->b_seqs[j - 1];
        e->b_seqs[j] = s;
    }
    return VC_OK;
}

static int run_batch(eng_engine *e) {
    int bs = e->cfg.block_size, mb = e->max_blocks_per_seq, nt = 0, nl = 0;
    e->b_qstart[0] = 0;
    for (int i = 0; i < e->n_sched; i++) {
        eng_seq *s = e->b_seqs[i];
        for (int j = 0; j < s->sched_tokens; j++) {
            int p = s->n_computed + j;
            e->b_tokens[nt] = s->tokens[p];
            e->b_pos[nt] = p;
            e->b_slots[nt] = s->blocks[p / bs] * bs + p % bs;
            nt++;
        }
        memcpy(e->b_bt + (size_t)i * mb, s->blocks, sizeof(int32_t) * (size_t)s->n_blocks);
        e->b_lora[i] = s->lora ? s->lslot : -1;
        e->b_seqlen[i] = s->n_computed + s->sched_tokens;
        e->b_ropelen[i] = s->n_prompt > e->b_seqlen[i] ? s->n_prompt : e->b_seqlen[i];
        e->b_qstart[i + 1] = nt;
        /* prompt_logprobs: the row at position p scores prompt token p + 1 */
        if (s->sp.prompt_logprobs >= 0)
            for (int j = 0; j < s->sched_tokens; j++) {
                int p = s->n_computed + j;
                if (p + 1 >= s->n_prompt) break;
                e->row_seq[nl] = i;
                e->row_pos[nl] = p + 1;
                e->b_lrows[nl++] = nt - s->sched_tokens + j;
            }
        if (s->n_computed + s->sched_tokens == s->n_tokens) {
            e->row_seq[nl] = i;
            e->row_pos[nl] = -1;
            e->b_lrows[nl++] = nt - 1;
        }
    }
    e->max_rows_used = nl;
    /* every row a plain greedy sampling row: the runner returns each row's argmax (on the device where it
     * can) instead of the logits */
    e->amax_step = nl > 0;
    for (int r = 0; r < nl && e->amax_step; r++)
        e->amax_step = e->row_pos[r] < 0 && plain_greedy(e->b_seqs[e->row_seq[r]]);
    /* else every row plain greedy or top_k sampled: each row's best few come back instead of its logits */
    e->topk_step = 0;
    int topk_ok = !e->amax_step && !e->no_topk && nl > 0;
    for (int r = 0; r < nl && topk_ok; r++) {
        const eng_seq *s = e->b_seqs[e->row_seq[r]];
        topk_ok = e->row_pos[r] < 0 && (plain_greedy(s) || top_sampled(s));
        int k = plain_greedy(s) ? 1 : s->sp.top_k + TOPK_MARGIN;
        if (topk_ok && k > e->topk_step) e->topk_step = k;
    }
    if (!topk_ok || e->topk_step > e->m->cfg.vocab_size) e->topk_step = 0;
    rn_batch b = {.n_tokens = nt, .tokens = e->b_tokens, .positions = e->b_pos, .slots = e->b_slots,
                  .n_seqs = e->n_sched, .q_start = e->b_qstart, .seq_len = e->b_seqlen, .block_table = e->b_bt,
                  .max_blocks = mb, .n_logits = nl, .logit_rows = e->b_lrows,
                  .seq_lora = e->cfg.max_loras > 0 ? e->b_lora : NULL, .seq_rope_len = e->b_ropelen,
                  .argmax = e->amax_step ? e->amax : NULL, .topk = e->topk_step, .top_ids = e->top_ids,
                  .top_vals = e->top_vals};
    return rn_forward(e->runner, &b, e->logits);
}

/* A step either fails before it changes anything (reserve()), or, when the forward pass fails,
 * with its scheduling undone (sched_unwind) and the finish events of the aborts it applied kept
 * for the next step: the caller may step again. Sampling allocates nothing. */
static int step(eng_engine *e) {
    int rc = intake(e);
    if (rc) return rc;
    sched_step(e);
    if (e->n_sched == 0) return VC_OK;
    if ((rc = assign_lora(e))) {
        sched_unwind(e);
        return rc;
    }
    int pending = masks_pending(e), mrc = VC_OK;
    if (pending && !e->mw) mw_start(&e->mw); /* no thread: the masks are computed here, before the pass */
    if (pending && e->mw) mw_submit(e->mw, prepare_masks, e);
    else if (pending) mrc = prepare_masks(e);
    if (!mrc) rc = run_batch(e);
    if (pending && e->mw) mrc = mw_wait(e->mw);
    if (rc || mrc) { /* a failed pass, or a mask that could not be allocated: the step is undone */
        sched_unwind(e);
        return rc ? rc : mrc;
    }
    int V = e->m->cfg.vocab_size;
    for (int i = 0; i < e->n_sched; i++) {
        eng_seq *s = e->b_seqs[i];
        s->n_computed += s->sched_tokens;
        s->sched_tokens = 0;
    }
    /* rows in batch order: each sequence's prompt-logprob rows, then its sampling row */
    for (int r = 0; r < e->max_rows_used && !rc; r++) {
        eng_seq *s = e->b_seqs[e->row_seq[r]];
        float *row = e->logits + (size_t)r * (size_t)V;
        if (e->row_pos[r] >= 0) {
            int p = e->row_pos[r];
            int got = lp_logprobs(row, V, s->tokens[p], s->plp_k, s->plp_ids + (size_t)p * (size_t)s->plp_k,
                                  s->plp_vals + (size_t)p * (size_t)s->plp_k, &s->plp_tok[p], &s->plp_rank[p]);
            if (got < 0) rc = got;
            for (int q = got; q >= 0 && q < s->plp_k; q++) s->plp_ids[(size_t)p * s->plp_k + q] = -1;
        } else if (e->topk_step > 0) {
            rc = sample_top(e, s, r, row);
        } else {
            rc = sample_one(e, s, row, e->amax_step ? e->amax[r] : -1);
        }
    }
    return rc;
}

/* The distinct adapter ids of q[0..n) into ids (at most ENG_STATS_LORAS). */
static int lora_ids(eng_seq *const *q, int n, int *ids, int k) {
    for (int i = 0; i < n && k < ENG_STATS_LORAS; i++) {
        if (!q[i]->lora) continue;
        int id = eng_lora_id(q[i]->lora), seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = ids[j] == id;
        if (!seen) ids[k++] = id;
    }
    return k;
}

int eng_step(eng_engine *e, const eng_output **outs, int *n_outs) {
    *outs = NULL;
    *n_outs = 0;
    if (!e->carry) {
        /* last step's finished sequences: their outputs have been read */
        pthread_mutex_lock(&e->mu);
        e->live -= e->n_finished;
        pthread_mutex_unlock(&e->mu);
        for (int i = 0; i < e->n_finished; i++) eng_seq_free(e->finished[i]);
        e->n_finished = 0;
        e->n_outs = 0;
        e->lp_used = 0;
    }
    int rc = step(e);
    e->carry = rc != 0 && e->n_outs > 0;
    if (rc) return rc;
    pthread_mutex_lock(&e->mu);
    e->stats.running = e->n_running;
    e->stats.waiting = e->n_waiting + e->n_inbox;
    e->stats.kv_usage = kv_usage(e->kv);
    e->stats.preemptions = e->preemptions;
    kv_stats ks = kv_get_stats(e->kv);
    e->stats.prefix_queries = ks.queries;
    e->stats.prefix_hits = ks.hits;
    e->stats.prompt_tokens = e->prompt_tokens;
    e->stats.generation_tokens = e->generation_tokens;
    e->stats.topk_rows = e->topk_rows;
    e->stats.topk_full_rows = e->topk_full_rows;
    e->stats.max_loras = e->cfg.max_loras;
    e->stats.n_lora_running = lora_ids(e->running, e->n_running, e->stats.lora_running, 0);
    int nw = lora_ids(e->waiting, e->n_waiting, e->stats.lora_waiting, 0);
    e->stats.n_lora_waiting = lora_ids(e->inbox, e->n_inbox, e->stats.lora_waiting, nw);
    pthread_mutex_unlock(&e->mu);
    *outs = e->outs;
    *n_outs = e->n_outs;
    return VC_OK;
}
