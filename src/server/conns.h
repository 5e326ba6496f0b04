/* conns: the HTTP layer's bookkeeping around libmicrohttpd.
 *
 * libmicrohttpd runs a small pool of event-loop threads (epoll on Linux, poll
 * elsewhere) that only move bytes: no handler blocks. A request whose answer
 * must wait (a body to parse and tokenize, the engine's tokens) suspends its
 * connection and is resumed by whoever has something for it (srv_wake). This
 * module holds what that needs:
 *   - every open connection (conn_rec): the connection limit (over the soft
 *     limit requests get 503, /health and /ping still answer) and the read
 *     deadline (a client must finish sending a request within read_timeout);
 *   - the watcher thread: reaps connections past their read deadline and
 *     notices clients that went away while their request is suspended;
 *   - the worker threads that parse, template and tokenize request bodies.
 * Limits and how each is enforced: docs/ARCHITECTURE.md, "Limits". */
#ifndef VLLMC_SERVER_CONNS_H
#define VLLMC_SERVER_CONNS_H

#include <microhttpd.h>
#include <pthread.h>

#include "base/sbuf.h"
#include "server/internal.h"
#include "server/openai.h"

/* One open connection (libmicrohttpd's socket context). */
typedef struct conn_rec {
    struct conn_rec *prev, *next;
    int fd;
    double t_read;               /* when reading the current request began (seconds, fe_now) */
    int reading;                 /* until the request's body is complete */
    int reaped;                  /* shut down for missing its read deadline */
} conn_rec;

enum {
    PH_BODY,                     /* reading the body */
    PH_WORK,                     /* a worker parses it */
    PH_WAIT,                     /* a non-streaming job runs in the engine */
    PH_STREAM,                   /* a streaming job is ready to answer */
    PH_STREAMING,                /* its SSE response is queued; the content reader runs it */
    PH_REPLY,                    /* out or err holds the answer */
};

/* One HTTP request (libmicrohttpd's con_cls), from its headers to its completion. */
struct srv_conn {
    srv_server *s;
    struct MHD_Connection *conn;
    conn_rec *rec;               /* NULL if it could not be allocated */
    const char *method, *url, *version; /* libmicrohttpd's, valid until completion */
    int route;
    sbuf body;
    int too_large;
    int phase;                   /* PH_*: under wake_mu while a worker holds the request (conns_done) */
    /* under s->wake_mu */
    int suspended, ready, gone, watch;
    struct srv_conn *wprev, *wnext; /* in the suspended list */
    /* the answer */
    oa_job *job;
    char *out;                   /* PH_REPLY: body (owned) with status code, or err */
    size_t out_n;
    int code;
    int out_plain;               /* out is plain text without a Content-Type (vLLM's LoRA routes), not JSON */
    srv_error err;
    sbuf sse;                    /* streaming: produced, not yet handed to libmicrohttpd */
    size_t sse_off;
    int sse_done;
    long fault;                  /* fault-injection builds: the allocation this request armed, else 0 */
};

typedef void (*srv_work_fn)(srv_conn *c);

struct srv_http {
    struct MHD_Daemon *d;
    int soft_limit, hard_limit;  /* connections: over soft, 503; at hard, libmicrohttpd refuses */
    double read_timeout;         /* s: from connection start (or the last answer) to a complete body */
    unsigned keep_alive;         /* s: idle time allowed between requests (VLLM_HTTP_TIMEOUT_KEEP_ALIVE) */
    unsigned io_timeout;         /* s: no progress while a request is read or answered */
    pthread_mutex_t conn_mu;     /* conns, n_conns */
    conn_rec *conns;
    int n_conns;
    srv_conn *waiting;           /* suspended requests (under s->wake_mu) */
    int closing;                 /* under wake_mu: nothing may suspend any more */
    pthread_t watcher;
    int watch_stop;              /* under conn_mu */
    pthread_cond_t watch_cv;
    /* workers */
    pthread_mutex_t work_mu;
    pthread_cond_t work_cv;
    struct work_item *head, *tail;
    int work_stop, n_workers, busy;
    pthread_t workers[16];
};

/* Start the bookkeeping: limits from the environment and the file-descriptor
 * limit (raised to its hard maximum), the watcher and n_workers workers. */
int conns_start(srv_server *s, struct srv_http *h, int n_workers);
/* Finish the queued work, stop the workers and the watcher; then wake every
 * suspended request as gone so libmicrohttpd can be stopped. */
void conns_stop(srv_server *s, struct srv_http *h);
void conns_free(struct srv_http *h);

/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback (cls: the server). */
void conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode toe);
int conns_count(struct srv_http *h);
/* The request's body is complete / the request was answered (the next one's reading begins). */
void conns_read_done(struct srv_http *h, conn_rec *r);
void conns_read_again(struct srv_http *h, conn_rec *r);

/* From a libmicrohttpd callback of c's connection: suspend it unless something
 * is ready for it. 1: suspended (return to libmicrohttpd); 0: go on. watch: the
 * watcher may check the client's socket while it waits. */
int conns_suspend(srv_conn *c, int watch);
/* A worker is done with c: set its phase and wake it. The worker must not
 * touch c afterwards (its request may be answered and freed at once). */
void conns_done(srv_conn *c, int phase);
/* c's phase as the last conns_done set it. */
int conns_phase(srv_conn *c);
/* Run fn(c) on a worker; c stays suspended until fn wakes it. -1: out of memory. */
int conns_work(struct srv_http *h, srv_work_fn fn, srv_conn *c);

#endif
