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

typedef struct srv_conn srv_conn; /* http.c: one HTTP request's state */

/* An HTTP request's channel to the engine: n_prompts engine requests with n
 * completions each. The engine thread appends events and wakes the request's
 * connection (srv_wake); the HTTP side takes them without blocking. Freed when
 * both sides let go. */
typedef struct srv_call {
    pthread_mutex_t mu;
    srv_event *ev;
    int nev, cap;
    int refs;                    /* under mu */
    int fail_status;             /* under mu: 500 the engine died, 503 the server is shutting down; 0 none */
    char fail_msg[448];
    srv_conn *waiter;            /* under the server's wake_mu: whom to wake when events come */
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
    int tmpl_format;                /* SRV_CONTENT_* that --chat-template-content-format auto picks for tmpl */
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
    int stopping, dead, draining, closing;
    char dead_msg[400];
    srv_entry *table[SRV_BUCKETS];
    int n_calls;                 /* live calls (HTTP side holds them) */
    /* the HTTP layer (http.c, conns.c) */
    pthread_mutex_t wake_mu;     /* suspend/resume state of every request, srv_call.waiter */
    struct srv_http *http;
    /* LoRA (lora.c): the name of every adapter id requests have run with, for vllm:lora_requests_info
     * (an adapter unloaded while its requests still run keeps its name there); ids are never reused */
    pthread_mutex_t lora_mu;
    struct srv_lora_name *lora_seen;
    int n_lora_seen, cap_lora_seen;
} srv_server;

/* frontend.c */
int fe_start(srv_server *s);
/* Abort everything, let the engine finish, join the thread. */
void fe_stop(srv_server *s);
/* Queue every prompt of r (id base: "cmpl-..."); the call is returned with one
 * reference for the caller. */
srv_call *fe_submit(srv_server *s, const srv_request *r, const char *base_id, srv_error *err);
/* Hand over what is pending, without waiting (caller frees each with
 * srv_event_free, then the array). Returns -1 once the call has failed (the
 * answer is then the failure, whatever the events say): *status and msg say why. */
int fe_take(srv_call *c, srv_event **ev, int *n, int *status, char *msg, size_t msg_cap);
/* Make w the one to wake when events come (NULL: nobody; the HTTP side
 * detaches before it frees w). */
void fe_attach(srv_server *s, srv_call *c, srv_conn *w);
void fe_abort(srv_server *s, srv_call *c, int prompt, int index, eng_finish why);
/* Fail every live call with status and msg (a final error event or answer),
 * and abort their engine requests: the shutdown's end of draining. */
void fe_fail_calls(srv_server *s, int status, const char *msg);
void fe_release(srv_server *s, srv_call *c);
double fe_now(void);

/* http.c: something happened for w (events, a finished parse, a client gone):
 * resume its connection if suspended, else its next suspend returns at once.
 * Any thread. */
void srv_wake(srv_server *s, srv_conn *w);

#endif
