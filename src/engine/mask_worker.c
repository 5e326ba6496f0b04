#include "engine/mask_worker.h"

#include <pthread.h>
#include <stdlib.h>

#include "base/err.h"

enum { MW_IDLE, MW_JOB, MW_DONE };

struct eng_mask_worker {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int (*fn)(void *);
    void *arg;
    int state, rc, quit;
};

static void *run(void *p) {
    eng_mask_worker *w = p;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->state != MW_JOB && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
        if (w->quit) break;
        pthread_mutex_unlock(&w->mu);
        int rc = w->fn(w->arg);
        pthread_mutex_lock(&w->mu);
        w->rc = rc;
        w->state = MW_DONE;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int mw_start(eng_mask_worker **out) {
    *out = NULL;
    eng_mask_worker *w = calloc(1, sizeof *w);
    if (!w) return vc_errf(VC_ENOMEM, "out of memory");
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->th, NULL, run, w)) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return vc_errf(VC_EIO, "engine: cannot start the grammar mask thread");
    }
    *out = w;
    return 0;
}

void mw_free(eng_mask_worker *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void mw_submit(eng_mask_worker *w, int (*fn)(void *), void *arg) {
    pthread_mutex_lock(&w->mu);
    w->fn = fn;
    w->arg = arg;
    w->state = MW_JOB;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int mw_wait(eng_mask_worker *w) {
    pthread_mutex_lock(&w->mu);
    while (w->state == MW_JOB) pthread_cond_wait(&w->cv, &w->mu);
    w->state = MW_IDLE;
    int rc = w->rc;
    pthread_mutex_unlock(&w->mu);
    return rc;
}
