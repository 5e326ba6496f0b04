/* frontend: the engine thread and the channels between it and the HTTP
 * threads. HTTP threads register a call's engine requests here before adding
 * them to the engine, so no output can arrive for an unknown id; the engine
 * thread copies each output into its call and wakes the waiting HTTP thread.
 * Token timing metrics (TTFT, ITL) are taken here, when the engine produces a
 * token; a completion's end is counted where the client's answer is decided
 * (openai.c), so request_success_total carries the reason the client got. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/ckd.h"
#include "base/err.h"
#include "server/internal.h"

double fe_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static unsigned hash(const char *s) {
    unsigned h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h % SRV_BUCKETS;
}

void srv_event_free(srv_event *ev) {
    free(ev->top_ids);
    free(ev->top_vals);
    free(ev->plp_ids);
    free(ev->plp_vals);
    free(ev->plp_tok);
    free(ev->plp_rank);
}

static void call_free(srv_call *c) {
    for (int i = 0; i < c->nev; i++) srv_event_free(&c->ev[i]);
    free(c->ev);
    for (int i = 0; i < c->n_prompts; i++) free(c->ids ? c->ids[i] : NULL);
    free(c->ids);
    free(c->t_first);
    free(c->t_last);
    free(c->n_out);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void unref(srv_call *c) {
    pthread_mutex_lock(&c->mu);
    int left = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (!left) call_free(c);
}

/* Copy an engine output into an event. */
static int copy_event(srv_event *ev, const eng_output *o, int prompt) {
    memset(ev, 0, sizeof *ev);
    ev->prompt = prompt;
    ev->index = o->index;
    ev->has_token = o->has_token;
    ev->token = o->token;
    ev->lp = o->token_logprob;
    ev->rank = o->token_rank;
    ev->finish = o->finish;
    ev->stop_token = o->stop_token;
    ev->n_cached = o->n_cached;
    ev->plp_k = -1;
    ev->n_prompt = o->n_prompt;
    if (o->n_top > 0) {
        ev->top_ids = malloc(sizeof(int32_t) * (size_t)o->n_top);
        ev->top_vals = malloc(sizeof(float) * (size_t)o->n_top);
        if (!ev->top_ids || !ev->top_vals) return -1;
        memcpy(ev->top_ids, o->top_ids, sizeof(int32_t) * (size_t)o->n_top);
        memcpy(ev->top_vals, o->top_logprobs, sizeof(float) * (size_t)o->n_top);
        ev->n_top = o->n_top;
    }
    if (o->prompt_token_logprob) {
        size_t np = (size_t)o->n_prompt, k = (size_t)o->prompt_lp_k;
        ev->plp_tok = malloc(sizeof(float) * np);
        ev->plp_rank = malloc(sizeof(int) * np);
        ev->plp_ids = malloc(sizeof(int32_t) * (np * k + 1));
        ev->plp_vals = malloc(sizeof(float) * (np * k + 1));
        if (!ev->plp_tok || !ev->plp_rank || !ev->plp_ids || !ev->plp_vals) return -1;
        memcpy(ev->plp_tok, o->prompt_token_logprob, sizeof(float) * np);
        if (o->prompt_token_rank) memcpy(ev->plp_rank, o->prompt_token_rank, sizeof(int) * np);
        else memset(ev->plp_rank, 0, sizeof(int) * np);
        if (k) {
            memcpy(ev->plp_ids, o->prompt_lp_ids, sizeof(int32_t) * np * k);
            memcpy(ev->plp_vals, o->prompt_lp_vals, sizeof(float) * np * k);
        }
        ev->plp_k = (int)k;
    }
    return 0;
}

static srv_entry *find(srv_server *s, const char *id, srv_entry ***link) {
    srv_entry **p = &s->table[hash(id)];
    for (; *p; p = &(*p)->next)
        if (!strcmp((*p)->id, id)) {
            if (link) *link = p;
            return *p;
        }
    return NULL;
}

static void fail_in_flight(srv_server *s, int status, const char *msg);

/* Wake whoever waits on c (wake_mu nests inside s->mu, never the reverse). */
static void notify(srv_server *s, srv_call *c) {
    pthread_mutex_lock(&s->wake_mu);
    if (c->waiter) srv_wake(s, c->waiter);
    pthread_mutex_unlock(&s->wake_mu);
}

static void fail_call(srv_server *s, srv_call *c, int status, const char *msg) {
    pthread_mutex_lock(&c->mu);
    if (!c->fail_status) {
        c->fail_status = status;
        snprintf(c->fail_msg, sizeof c->fail_msg, "%s", msg);
    }
    pthread_mutex_unlock(&c->mu);
    notify(s, c);
}

/* Engine thread: one output. Called with s->mu held. */
static void dispatch(srv_server *s, const eng_output *o, double now) {
    srv_entry **link;
    srv_entry *en = find(s, o->request_id, &link);
    if (!en) return;
    srv_call *c = en->call;
    int k = en->prompt * c->n + o->index;
    if (o->has_token) {
        int first = c->n_out[k]++ == 0;
        mt_token(&s->metrics, first, now - (first ? c->arrival : c->t_last[k]));
        if (first) c->t_first[k] = now;
        c->t_last[k] = now;
    }
    pthread_mutex_lock(&c->mu);
    int lost = 0;
    if (c->nev == c->cap) {
        int nc = c->cap ? c->cap * 2 : 16;
        srv_event *ne = nc > 0 ? realloc(c->ev, sizeof *ne * (size_t)nc) : NULL;
        if (ne) {
            c->ev = ne;
            c->cap = nc;
        }
    }
    if (c->nev < c->cap && !copy_event(&c->ev[c->nev], o, en->prompt)) c->nev++;
    else if (c->nev < c->cap) srv_event_free(&c->ev[c->nev]), lost = 1;
    else lost = 1;
    pthread_mutex_unlock(&c->mu);
    if (lost || o->error) { /* the answer would be incomplete or wrong: the request fails, as a whole */
        char msg[sizeof c->fail_msg];
        snprintf(msg, sizeof msg, "%s", lost ? "out of memory: an output of the engine could not be kept" : o->error);
        fail_call(s, c, lost ? 500 : 400, msg); /* the engine's errors here are the request's grammar's */
        for (int i = 0; i < c->n_prompts; i++) eng_abort(s->e, c->ids[i], -1, ENG_FINISH_ABORT);
    } else {
        notify(s, c);
    }
    if (o->finish && --en->remaining == 0) { /* the engine is done with this request */
        *link = en->next;
        free(en->id);
        free(en);
        unref(c);
    }
}

static void fail_all(srv_server *s, const char *msg) {
    pthread_mutex_lock(&s->mu);
    s->dead = 1;
    snprintf(s->dead_msg, sizeof s->dead_msg, "%s", msg);
    for (int b = 0; b < SRV_BUCKETS; b++)
        while (s->table[b]) {
            srv_entry *en = s->table[b];
            s->table[b] = en->next;
            char m[sizeof en->call->fail_msg];
            snprintf(m, sizeof m, "The engine failed: %s", msg);
            fail_call(s, en->call, 500, m);
            unref(en->call);
            free(en->id);
            free(en);
        }
    pthread_mutex_unlock(&s->mu);
}

/* vLLM's periodic "Engine 000: Avg prompt throughput ..." line, every 10 s while busy. */
static void log_stats(srv_server *s, double *last_t, uint64_t *last_p, uint64_t *last_g) {
    double now = fe_now();
    if (now - *last_t < 10.0) return;
    eng_stats st = eng_get_stats(s->e);
    if (st.prompt_tokens != *last_p || st.generation_tokens != *last_g || st.running || st.waiting) {
        double dt = now - *last_t;
        fprintf(stderr,
                "INFO vllmc: Engine 000: Avg prompt throughput: %.1f tokens/s, Avg generation throughput: %.1f "
                "tokens/s, Running: %d reqs, Waiting: %d reqs, KV cache usage: %.1f%%, Prefix cache hit rate: %.1f%%\n",
                (double)(st.prompt_tokens - *last_p) / dt, (double)(st.generation_tokens - *last_g) / dt, st.running,
                st.waiting, 100.0 * st.kv_usage,
                st.prefix_queries ? 100.0 * (double)st.prefix_hits / (double)st.prefix_queries : 0.0);
    }
    *last_t = now;
    *last_p = st.prompt_tokens;
    *last_g = st.generation_tokens;
}

static void *engine_main(void *arg) {
    srv_server *s = arg;
    double last_t = fe_now();
    uint64_t last_p = 0, last_g = 0;
    /* Test hook (tests/cli/test_serve.sh): VLLMC_FAULT_AFTER_STEPS=N makes step N+1 fail as a broken
     * engine would, to exercise the error paths (an error event mid-stream, 503 afterwards). */
    const char *fault = getenv("VLLMC_FAULT_AFTER_STEPS");
    long long fault_after = fault && *fault ? atoll(fault) : -1, steps = 0;
    int oom_steps = 0; /* steps in a row that failed for memory */
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stopping && !eng_has_unfinished(s->e)) {
            if (s->cfg.log_stats) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&s->work, &s->mu, &ts);
                pthread_mutex_unlock(&s->mu);
                log_stats(s, &last_t, &last_p, &last_g);
                pthread_mutex_lock(&s->mu);
            } else {
                pthread_cond_wait(&s->work, &s->mu);
            }
        }
        int stop = s->stopping && !eng_has_unfinished(s->e);
        pthread_mutex_unlock(&s->mu);
        if (stop) break;
        const eng_output *outs;
        int n;
        int src = fault_after >= 0 && steps++ >= fault_after ? vc_errf(VC_EIO, "injected fault (VLLMC_FAULT_AFTER_STEPS)")
                                                              : eng_step(s->e, &outs, &n);
        if (src == VC_ENOMEM) { /* the step changed nothing (engine.h): try again, then give up on what runs */
            if (++oom_steps < 3) {
                usleep(1000);
                continue;
            }
            fprintf(stderr, "WARNING vllmc: three engine steps in a row ran out of memory: failing the requests in "
                            "flight\n");
            fail_in_flight(s, 500, "out of memory: the engine could not run a step");
            oom_steps = 0;
            continue;
        }
        if (src) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", vc_errmsg());
            fprintf(stderr, "ERROR vllmc: the engine failed: %s\n", msg);
            fail_all(s, msg);
            break;
        }
        oom_steps = 0;
        double now = fe_now();
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < n; i++) dispatch(s, &outs[i], now);
        pthread_mutex_unlock(&s->mu);
        if (s->cfg.log_stats) log_stats(s, &last_t, &last_p, &last_g);
    }
    return NULL;
}

int fe_start(srv_server *s) {
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    if (pthread_create(&s->thread, NULL, engine_main, s)) return vc_errf(VC_EIO, "cannot start the engine thread");
    return VC_OK;
}

void fe_stop(srv_server *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    for (int b = 0; b < SRV_BUCKETS; b++)
        for (srv_entry *en = s->table[b]; en; en = en->next) eng_abort(s->e, en->id, -1, ENG_FINISH_ABORT);
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    fail_all(s, "the server is shutting down");
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
}

srv_call *fe_submit(srv_server *s, const srv_request *r, const char *base_id, srv_error *err) {
    srv_call *c = calloc(1, sizeof *c);
    if (!c) {
        srv_fail(err, 500, NULL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->n_prompts = r->n_prompts;
    c->n = r->sp.n;
    size_t total; /* request.c bounds prompts x n; checked again where it sizes memory */
    if (vc_ckd_mul_size((size_t)c->n_prompts, (size_t)c->n, &total)) total = SIZE_MAX / 64;
    c->ids = calloc((size_t)c->n_prompts, sizeof *c->ids);
    c->t_first = calloc(total, sizeof *c->t_first);
    c->t_last = calloc(total, sizeof *c->t_last);
    c->n_out = calloc(total, sizeof *c->n_out);
    c->refs = 1;
    c->arrival = fe_now();
    if (!c->ids || !c->t_first || !c->t_last || !c->n_out) {
        call_free(c);
        srv_fail(err, 500, NULL, "out of memory");
        return NULL;
    }
    eng_sampling_params sp = r->sp;
    for (int i = 0; i < c->n_prompts; i++) {
        char id[160];
        snprintf(id, sizeof id, "%s-%d", base_id, i);
        c->ids[i] = strdup(id);
        srv_entry *en = calloc(1, sizeof *en);
        if (!c->ids[i] || !en) {
            free(en);
            srv_fail(err, 500, NULL, "out of memory");
            break;
        }
        if (!(en->id = strdup(id))) {
            free(en);
            srv_fail(err, 500, NULL, "out of memory");
            break;
        }
        en->call = c;
        en->prompt = i;
        en->remaining = c->n;
        pthread_mutex_lock(&s->mu);
        if (s->dead || s->stopping || s->closing) {
            pthread_mutex_unlock(&s->mu);
            free(en->id);
            free(en);
            srv_fail(err, 503, NULL, "%s%s", s->dead ? "The engine is not available: " : "The server is shutting down.",
                     s->dead ? s->dead_msg : "");
            break;
        }
        pthread_mutex_lock(&c->mu);
        c->refs++;
        pthread_mutex_unlock(&c->mu);
        unsigned h = hash(id);
        en->next = s->table[h];
        s->table[h] = en;
        sp.max_tokens = r->max_tokens[i];
        /* an adapter (r->lora, else NULL: the base model): each sequence takes its own reference */
        int rc = eng_add_lora(s->e, id, r->ids[i], r->len[i], &sp, r->priority, r->lora);
        if (rc) {
            srv_entry **link;
            if (find(s, id, &link)) *link = en->next;
            free(en->id);
            free(en);
            pthread_mutex_unlock(&s->mu);
            unref(c);
            srv_fail(err, rc == VC_ENOMEM ? 503 : 400, NULL, "%s", vc_errmsg());
            break;
        }
        pthread_cond_signal(&s->work);
        pthread_mutex_unlock(&s->mu);
    }
    if (err->status) { /* withdraw what was queued */
        for (int i = 0; i < c->n_prompts; i++)
            if (c->ids[i]) eng_abort(s->e, c->ids[i], -1, ENG_FINISH_ABORT);
        unref(c);
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    s->n_calls++;
    pthread_mutex_unlock(&s->mu);
    return c;
}

int fe_take(srv_call *c, srv_event **ev, int *n, int *status, char *msg, size_t msg_cap) {
    pthread_mutex_lock(&c->mu);
    *ev = c->ev;
    *n = c->nev;
    c->ev = NULL;
    c->nev = c->cap = 0;
    int failed = c->fail_status != 0;
    if (failed) {
        *status = c->fail_status;
        snprintf(msg, msg_cap, "%s", c->fail_msg);
    }
    pthread_mutex_unlock(&c->mu);
    return failed ? -1 : 0;
}

void fe_attach(srv_server *s, srv_call *c, srv_conn *w) {
    pthread_mutex_lock(&s->wake_mu);
    c->waiter = w;
    pthread_mutex_unlock(&s->wake_mu);
}

static void fail_live(srv_server *s, int status, const char *msg) { /* s->mu held */
    for (int b = 0; b < SRV_BUCKETS; b++)
        for (srv_entry *en = s->table[b]; en; en = en->next) {
            eng_abort(s->e, en->id, -1, ENG_FINISH_ABORT);
            fail_call(s, en->call, status, msg);
        }
}

static void fail_in_flight(srv_server *s, int status, const char *msg) {
    pthread_mutex_lock(&s->mu);
    fail_live(s, status, msg);
    pthread_mutex_unlock(&s->mu);
}

void fe_fail_calls(srv_server *s, int status, const char *msg) {
    pthread_mutex_lock(&s->mu);
    s->closing = 1; /* no call may start after this one ended the live ones */
    fail_live(s, status, msg);
    pthread_mutex_unlock(&s->mu);
}

void fe_abort(srv_server *s, srv_call *c, int prompt, int index, eng_finish why) {
    for (int i = 0; i < c->n_prompts; i++)
        if ((prompt < 0 || prompt == i) && c->ids[i]) eng_abort(s->e, c->ids[i], index, why);
}

void fe_release(srv_server *s, srv_call *c) {
    fe_attach(s, c, NULL);
    pthread_mutex_lock(&s->mu);
    s->n_calls--;
    pthread_mutex_unlock(&s->mu);
    unref(c);
}
