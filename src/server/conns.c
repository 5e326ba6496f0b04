/* conns: open connections, the watcher thread and the workers (see conns.h). */
#include "server/conns.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "base/err.h"

typedef struct work_item {
    struct work_item *next;
    srv_work_fn fn;
    srv_conn *c;
} work_item;

static double env_seconds(const char *name, double def, double lo, double hi) {
    const char *v = getenv(name);
    char *end;
    if (!v || !*v) return def;
    double d = strtod(v, &end);
    if (*end || d < lo || d > hi) {
        fprintf(stderr, "WARNING vllmc: %s=%s is not a number in [%g, %g]; using %g\n", name, v, lo, hi, def);
        return def;
    }
    return d;
}

/* Connections need file descriptors: take the hard limit (as servers do), keep
 * some for the model's files, the engine and the log. */
static void set_limits(struct srv_http *h) {
    struct rlimit rl;
    long fds = 1024;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        if (rl.rlim_cur < rl.rlim_max) {
            struct rlimit want = {rl.rlim_max, rl.rlim_max};
            if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 1048576) want.rlim_cur = 1048576;
            if (!setrlimit(RLIMIT_NOFILE, &want)) rl.rlim_cur = want.rlim_cur;
        }
        fds = rl.rlim_cur == RLIM_INFINITY ? 1048576 : (long)rl.rlim_cur;
    }
    long hard = fds - 256;
    if (hard > 1000000) hard = 1000000;
    if (hard < 16) hard = 16;
    long soft = (long)env_seconds("VLLMC_HTTP_MAX_CONNECTIONS", (double)(hard - hard / 8), 1, (double)hard);
    h->hard_limit = (int)hard;
    h->soft_limit = (int)soft;
    h->keep_alive = (unsigned)env_seconds("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", 5, 1, 86400);
    h->read_timeout = env_seconds("VLLMC_HTTP_READ_TIMEOUT", 30, 0.1, 86400);
    h->io_timeout = (unsigned)env_seconds("VLLMC_HTTP_IO_TIMEOUT", 60, 1, 86400);
}

/* ---- open connections ---- */

void conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                  enum MHD_ConnectionNotificationCode toe) {
    srv_server *s = cls;
    struct srv_http *h = s->http;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_rec *r = calloc(1, sizeof *r);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = r;
        pthread_mutex_lock(&h->conn_mu);
        h->n_conns++;
        if (r) {
            r->fd = ci ? ci->connect_fd : -1;
            r->t_read = fe_now();
            r->reading = 1;
            r->next = h->conns;
            if (h->conns) h->conns->prev = r;
            h->conns = r;
        }
        pthread_mutex_unlock(&h->conn_mu);
        return;
    }
    /* closed: libmicrohttpd closes the socket after this returns, so the watcher (which shuts sockets
     * down under conn_mu) never touches a descriptor that another connection may reuse */
    conn_rec *r = *socket_context;
    pthread_mutex_lock(&h->conn_mu);
    h->n_conns--;
    if (r) {
        if (r->prev) r->prev->next = r->next;
        else h->conns = r->next;
        if (r->next) r->next->prev = r->prev;
    }
    pthread_mutex_unlock(&h->conn_mu);
    free(r);
    *socket_context = NULL;
}

int conns_count(struct srv_http *h) {
    pthread_mutex_lock(&h->conn_mu);
    int n = h->n_conns;
    pthread_mutex_unlock(&h->conn_mu);
    return n;
}

void conns_read_done(struct srv_http *h, conn_rec *r) {
    if (!r) return;
    pthread_mutex_lock(&h->conn_mu);
    r->reading = 0;
    pthread_mutex_unlock(&h->conn_mu);
}

void conns_read_again(struct srv_http *h, conn_rec *r) {
    if (!r) return;
    pthread_mutex_lock(&h->conn_mu);
    r->reading = 1;
    r->t_read = fe_now();
    pthread_mutex_unlock(&h->conn_mu);
}

/* ---- suspend and wake ---- */

static void unlink_waiting(struct srv_http *h, srv_conn *c) {
    if (c->wprev) c->wprev->wnext = c->wnext;
    else h->waiting = c->wnext;
    if (c->wnext) c->wnext->wprev = c->wprev;
    c->wprev = c->wnext = NULL;
}

int conns_suspend(srv_conn *c, int watch) {
    srv_server *s = c->s;
    struct srv_http *h = s->http;
    pthread_mutex_lock(&s->wake_mu);
    if (h->closing) c->gone = 1;
    int go = c->ready || c->gone;
    c->ready = 0;
    if (!go) {
        c->suspended = 1;
        c->watch = watch;
        MHD_suspend_connection(c->conn);
        c->wprev = NULL;
        c->wnext = h->waiting;
        if (h->waiting) h->waiting->wprev = c;
        h->waiting = c;
    }
    pthread_mutex_unlock(&s->wake_mu);
    return !go;
}

void srv_wake(srv_server *s, srv_conn *c) {
    c->ready = 1;
    if (!c->suspended) return;
    c->suspended = 0;
    unlink_waiting(s->http, c);
    MHD_resume_connection(c->conn);
}

void conns_done(srv_conn *c, int phase) {
    srv_server *s = c->s; /* c may be freed as soon as the lock is released */
    pthread_mutex_lock(&s->wake_mu);
    c->phase = phase;
    srv_wake(s, c);
    pthread_mutex_unlock(&s->wake_mu);
}

int conns_phase(srv_conn *c) {
    pthread_mutex_lock(&c->s->wake_mu);
    int ph = c->phase;
    pthread_mutex_unlock(&c->s->wake_mu);
    return ph;
}

/* ---- the watcher ---- */

/* Has the client of a suspended request gone away? (a closed socket reads as EOF) */
static int client_gone(const struct pollfd *p) {
    if (p->revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return 1;
    if (!(p->revents & POLLIN)) return 0;
    char b;
    ssize_t r = recv(p->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Look at the sockets of the suspended requests that wait on the engine. The
 * list is walked under wake_mu: a suspended connection cannot be closed, so
 * its descriptor stays valid while we hold the lock. */
static void check_waiting(srv_server *s, struct pollfd **pfd, size_t *cap) {
    struct srv_http *h = s->http;
    pthread_mutex_lock(&s->wake_mu);
    size_t n = 0;
    for (srv_conn *c = h->waiting; c; c = c->wnext) n += c->watch && c->rec;
    if (n > *cap) {
        struct pollfd *np = realloc(*pfd, n * sizeof *np);
        if (np) *pfd = np, *cap = n;
    }
    n = 0;
    for (srv_conn *c = h->waiting; c && n < *cap; c = c->wnext)
        if (c->watch && c->rec) (*pfd)[n++] = (struct pollfd){.fd = c->rec->fd, .events = POLLIN | POLLRDHUP};
    if (n && poll(*pfd, n, 0) > 0) {
        size_t i = 0;
        for (srv_conn *c = h->waiting, *next; c && i < n; c = next) {
            next = c->wnext;
            if (!(c->watch && c->rec)) continue;
            if (client_gone(&(*pfd)[i++])) {
                c->gone = 1;
                srv_wake(s, c);
            }
        }
    }
    pthread_mutex_unlock(&s->wake_mu);
}

/* Shut down the sockets of connections past their read deadline; libmicrohttpd
 * then sees the connection fail and closes it. */
static void reap(struct srv_http *h, double now) {
    pthread_mutex_lock(&h->conn_mu);
    for (conn_rec *r = h->conns; r; r = r->next)
        if (r->reading && !r->reaped && r->fd >= 0 && now - r->t_read > h->read_timeout) {
            shutdown(r->fd, SHUT_RDWR);
            r->reaped = 1;
        }
    pthread_mutex_unlock(&h->conn_mu);
}

static void *watch_main(void *arg) {
    srv_server *s = arg;
    struct srv_http *h = s->http;
    struct pollfd *pfd = NULL;
    size_t cap = 0;
    double last_reap = 0;
    for (;;) {
        pthread_mutex_lock(&h->conn_mu);
        if (!h->watch_stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&h->watch_cv, &h->conn_mu, &ts);
        }
        int stop = h->watch_stop;
        pthread_mutex_unlock(&h->conn_mu);
        if (stop) break;
        check_waiting(s, &pfd, &cap);
        double now = fe_now();
        if (now - last_reap >= 0.25) {
            reap(h, now);
            last_reap = now;
        }
    }
    free(pfd);
    return NULL;
}

/* ---- workers ---- */

static void *work_main(void *arg) {
    struct srv_http *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->work_mu);
        while (!h->head && !h->work_stop) pthread_cond_wait(&h->work_cv, &h->work_mu);
        work_item *w = h->head;
        if (w) {
            h->head = w->next;
            if (!h->head) h->tail = NULL;
            h->busy++;
        }
        pthread_mutex_unlock(&h->work_mu);
        if (!w) break; /* stopping and nothing queued */
        w->fn(w->c);
        free(w);
        pthread_mutex_lock(&h->work_mu);
        h->busy--;
        pthread_mutex_unlock(&h->work_mu);
    }
    return NULL;
}

int conns_work(struct srv_http *h, srv_work_fn fn, srv_conn *c) {
    work_item *w = malloc(sizeof *w);
    if (!w) return -1;
    *w = (work_item){NULL, fn, c};
    pthread_mutex_lock(&h->work_mu);
    if (h->tail) h->tail->next = w;
    else h->head = w;
    h->tail = w;
    pthread_cond_signal(&h->work_cv);
    pthread_mutex_unlock(&h->work_mu);
    return 0;
}

int conns_start(srv_server *s, struct srv_http *h, int n_workers) {
    set_limits(h);
    h->watch_stop = -1; /* the watcher is not running */
    pthread_mutex_init(&h->conn_mu, NULL);
    pthread_mutex_init(&h->work_mu, NULL);
    pthread_cond_init(&h->work_cv, NULL);
    pthread_cond_init(&h->watch_cv, NULL);
    s->http = h;
    if (n_workers > (int)(sizeof h->workers / sizeof *h->workers)) n_workers = sizeof h->workers / sizeof *h->workers;
    for (; h->n_workers < n_workers; h->n_workers++)
        if (pthread_create(&h->workers[h->n_workers], NULL, work_main, h))
            return vc_errf(VC_EIO, "cannot start a request worker thread");
    h->watch_stop = 0;
    if (pthread_create(&h->watcher, NULL, watch_main, s)) {
        h->watch_stop = -1;
        return vc_errf(VC_EIO, "cannot start the connection watcher thread");
    }
    return VC_OK;
}

void conns_stop(srv_server *s, struct srv_http *h) {
    pthread_mutex_lock(&h->work_mu);
    h->work_stop = 1;
    pthread_cond_broadcast(&h->work_cv);
    pthread_mutex_unlock(&h->work_mu);
    for (int i = 0; i < h->n_workers; i++) pthread_join(h->workers[i], NULL);
    h->n_workers = 0;
    pthread_mutex_lock(&h->conn_mu);
    int started = h->watch_stop == 0;
    h->watch_stop = 1;
    pthread_cond_signal(&h->watch_cv);
    pthread_mutex_unlock(&h->conn_mu);
    if (started) pthread_join(h->watcher, NULL);
    /* libmicrohttpd must not be stopped with suspended connections: wake them all as gone */
    pthread_mutex_lock(&s->wake_mu);
    h->closing = 1;
    while (h->waiting) {
        srv_conn *c = h->waiting;
        c->gone = 1;
        srv_wake(s, c);
    }
    pthread_mutex_unlock(&s->wake_mu);
}

void conns_free(struct srv_http *h) {
    for (work_item *w = h->head, *n; w; w = n) {
        n = w->next;
        free(w);
    }
    pthread_mutex_destroy(&h->conn_mu);
    pthread_mutex_destroy(&h->work_mu);
    pthread_cond_destroy(&h->work_cv);
    pthread_cond_destroy(&h->watch_cv);
}
