/* internal: the server's shared state, the engine thread's request channels,
 * and the pieces of the HTTP layer (see server.h for the thread model). */
#ifndef VLLMC_SERVER_INTERNAL_H
#define VLLMC_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "backend/backend.h"
#include "engine/engine.h"
#include "model/model.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/server.h"

/* One engine output for an HTTP request, copied out of the engine. */
typedef struct {
    int prompt, index;           /* engine request (prompt) and completion */
    int has_token;
    int32_t token;
    float lp;                    /* logprob of the token (requests with logprobs) */
    int rank;
    int n_top;
    int32_t *top_ids;            /* [n_top] owned */
    float *top_vals;
    eng_finish finish;
    int32_t stop_token;
    int n_cached;
    int plp_k;                   /* prompt logprobs (first event of a prompt that asked): -1 none */
    int n_prompt;
    int32_t *plp_ids;            /* [n_prompt * plp_k] */
    float *plp_vals;
    float *plp_tok;              /* [n_prompt] */
    int *plp_rank;               /* [n_prompt] */
} srv_event;

void srv_event_free(srv_event *ev);

/* An HTTP request's channel to the engine: n_prompts engine requests with n
 * completions each. The engine thread appends events; the HTTP thread takes
 * them. Freed when both sides let go. */
typedef struct srv_call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_event *ev;
    int nev, cap;
    int refs;                    /* under mu */
    int failed;                  /* the engine died */
    int n_prompts, n;
    char **ids;                  /* engine request ids */
    double arrival;
    /* engine thread only: per completion */
    double *t_first, *t_last;
    int *n_out;
} srv_call;

typedef struct srv_entry {
    char *id;
    srv_call *call;
    int prompt;
    int remaining;               /* completions not finished */
    struct srv_entry *next;
} srv_entry;

#define SRV_BUCKETS 1024

typedef struct {
    srv_config cfg;
    const char *dir;             /* the model folder */
    be_backend *be;              /* be, m, tok, e: the stack's (cfg.stk), not owned */
    mdl_model *m;
    tok_tokenizer *tok;
    tmpl_template *tmpl;
    char *bos, *eos, *unk, *pad;
    eng_engine *e;
    srv_ctx ctx;
    mt_metrics metrics;
    const char *name;            /* the first served model name */
    char model_root[4096];
    long created;
    /* engine thread */
    pthread_t thread;
    pthread_mutex_t mu;          /* registry, flags */
    pthread_cond_t work;
    int stopping, dead, draining;
    char dead_msg[512];
    srv_entry *table[SRV_BUCKETS];
    int n_calls;                 /* live calls (HTTP side holds them) */
} srv_server;

/* frontend.c */
int fe_start(srv_server *s);
/* Abort everything, let the engine finish, join the thread. */
void fe_stop(srv_server *s);
/* Queue every prompt of r (id base: "cmpl-..."); the call is returned with one
 * reference for the caller. */
srv_call *fe_submit(srv_server *s, const srv_request *r, const char *base_id, srv_error *err);
/* Wait up to timeout_ms for events; hands over what is pending (caller frees
 * each with srv_event_free, then the array). Returns -1 if the engine died. */
int fe_take(srv_call *c, int timeout_ms, srv_event **ev, int *n);
void fe_abort(srv_server *s, srv_call *c, int prompt, int index, eng_finish why);
void fe_release(srv_server *s, srv_call *c);
double fe_now(void);

#endif
