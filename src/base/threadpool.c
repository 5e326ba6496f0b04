/* threadpool: see threadpool.h.
 *
 * Protocol. The caller publishes (fn, arg), sets `pending` to the number of
 * workers and bumps `gen` (release). Each worker remembers the last generation
 * it ran; it spins on `gen` for TP_SPIN_NS, then sleeps on the condition
 * variable after announcing itself in `nsleep`. The caller only takes the
 * mutex to broadcast when someone announced sleep, so the hot path (workers
 * spinning) is two atomic stores and a cache-line round trip. `nsleep` and
 * `gen` are both seq_cst, so either the caller sees the sleeper or the sleeper
 * sees the new generation before it waits (and it checks under the mutex, so a
 * broadcast cannot slip in between). A worker finishes with a release
 * decrement of `pending`; the caller's acquire load of 0 makes every write of
 * the task visible to it. The caller cannot start the next task before every
 * worker has decremented, so each worker sees each generation exactly once. */
#include "base/threadpool.h"

#include "base/err.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TP_STACK_BYTES ((size_t)8 << 20)

#if !defined(__linux__)
/* macOS and other systems without a CPU-affinity API: the online CPUs form
 * the allowed set and pinning is a no-op, so VLLM_CPU_OMP_THREADS_BIND still
 * sets the number of threads. */
#undef CPU_SETSIZE
#undef CPU_ZERO
#undef CPU_SET
#undef CPU_ISSET
#define cpu_set_t vc_cpu_set_t
#define sched_getaffinity vc_sched_getaffinity
#define pthread_attr_setaffinity_np vc_pthread_attr_setaffinity_np
#define pthread_setaffinity_np vc_pthread_setaffinity_np
#define pthread_getaffinity_np vc_pthread_getaffinity_np
#define CPU_SETSIZE 1024
typedef struct {
    unsigned char bits[CPU_SETSIZE / 8];
} cpu_set_t;
#define CPU_ZERO(s) memset((s), 0, sizeof *(s))
#define CPU_SET(c, s) ((s)->bits[(c) / 8] |= (unsigned char)(1u << ((c) % 8)))
#define CPU_ISSET(c, s) (((s)->bits[(c) / 8] >> ((c) % 8)) & 1)
static int sched_getaffinity(int pid, size_t size, cpu_set_t *s) {
    (void)pid;
    (void)size;
    CPU_ZERO(s);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < n && i < CPU_SETSIZE; i++) CPU_SET(i, s);
    return 0;
}
static int pthread_attr_setaffinity_np(pthread_attr_t *a, size_t size, const cpu_set_t *s) {
    (void)a, (void)size, (void)s;
    return 0;
}
static int pthread_setaffinity_np(pthread_t t, size_t size, const cpu_set_t *s) {
    (void)t, (void)size, (void)s;
    return 0;
}
static int pthread_getaffinity_np(pthread_t t, size_t size, cpu_set_t *s) {
    (void)t;
    return sched_getaffinity(0, size, s);
}
#endif

#define TP_SPIN_NS 300000ull /* how long an idle worker (or the waiting caller) spins */
#define TP_MAX_LIST 65536    /* largest CPU number tp_parse_cpulist accepts + 1 */

typedef struct {
    pthread_t th;
    tp_pool *pool;
    int ith;
    int started;
} tp_worker;

struct tp_pool {
    _Alignas(64) atomic_uint gen;  /* task generation; bumped per tp_run */
    _Alignas(64) atomic_int pending; /* workers still running the current task */
    _Alignas(64) atomic_int nsleep;  /* workers blocked (or about to block) on cv */
    atomic_int stop;
    tp_fn fn; /* written by the caller before the release of gen */
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;         /* threads including the caller */
    uint64_t spin_ns; /* TP_SPIN_NS, or 0 when threads outnumber the CPUs */
    int pinned;    /* threads pinned to cpus[] */
    int *cpus;     /* n entries when pinned */
    tp_worker *w;  /* n entries; w[0] is the caller and has no thread */
    /* the caller (thread 0) is pinned on its first tp_run and restored by tp_free */
    int caller_pinned;
    pthread_t caller;
    char desc[512];
};

/* The affinity a thread had before the first pool pinned it, and how many live
 * pools have pinned it: tp_create() on a pinned thread still sees the CPUs the
 * thread was allowed originally, and the last tp_free() restores them. */
static _Thread_local struct {
    int count, saved_ok;
    cpu_set_t saved;
} tls_pin;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Spin until gen != seen; returns the new value, or `seen` after spin_ns. */
static unsigned spin_for_gen(tp_pool *p, unsigned seen) {
    uint64_t t0 = 0;
    if (!p->spin_ns) return atomic_load_explicit(&p->gen, memory_order_acquire);
    for (;;) {
        for (int i = 0; i < 64; i++) {
            unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
            if (g != seen) return g;
            cpu_relax();
        }
        uint64_t t = now_ns();
        if (!t0) t0 = t;
        else if (t - t0 > p->spin_ns) return seen;
    }
}

static void *worker_main(void *argp) {
    tp_worker *w = argp;
    tp_pool *p = w->pool;
    unsigned seen = 0; /* gen is 0 when the workers start */
    for (;;) {
        unsigned g = spin_for_gen(p, seen);
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->nsleep, 1);
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->nsleep, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        seen = g;
        p->fn(p->arg, w->ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

/* ---- CPU lists ---- */

static int parse_num(const char **s, long *out) {
    const char *q = *s;
    long v = 0;
    if (*q < '0' || *q > '9') return -1;
    while (*q >= '0' && *q <= '9') {
        v = v * 10 + (*q - '0');
        if (v >= TP_MAX_LIST) return -1;
        q++;
    }
    *s = q;
    *out = v;
    return 0;
}

/* Parses s[0..len) (len < 0: up to the NUL); `whole` is quoted in messages. */
static int parse_cpulist_n(const char *s, long len, const char *whole, int *cpus, int max) {
    const char *why = NULL;
    unsigned char *seen = calloc(TP_MAX_LIST / 8, 1);
    if (!seen) return vc_errf(VC_ENOMEM, "out of memory");
    const char *end = len < 0 ? s + strlen(s) : s + len;
    int count = 0;
    const char *q = s;
    if (q == end) why = "empty list";
    while (!why && q < end) {
        long a, b;
        if (parse_num(&q, &a)) { why = "expected a CPU number"; break; }
        b = a;
        if (q < end && *q == '-') {
            q++;
            if (parse_num(&q, &b)) { why = "expected a CPU number after '-'"; break; }
            if (b < a) { why = "descending range"; break; }
        }
        for (long c = a; c <= b; c++) {
            if (seen[c / 8] & (1u << (c % 8))) { why = "CPU listed twice"; break; }
            seen[c / 8] |= (unsigned char)(1u << (c % 8));
            if (count >= max) { why = "too many CPUs"; break; }
            cpus[count++] = (int)c;
        }
        if (why) break;
        if (q == end) break;
        if (*q != ',' || q + 1 == end) { why = "expected ',' between entries"; break; }
        q++;
    }
    free(seen);
    if (why) return vc_errf(VC_EINVAL, "invalid CPU list \"%s\": %s", whole, why);
    return count;
}

int tp_parse_cpulist(const char *s, int *cpus, int max) {
    if (!s) return vc_errf(VC_EINVAL, "invalid CPU list \"(null)\": empty list");
    return parse_cpulist_n(s, -1, s, cpus, max);
}

/* "0,1,4-7" (ranges of 3 or more consecutive CPUs are collapsed). */
static void format_cpus(char *out, size_t cap, const int *cpus, int n) {
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && cpus[j + 1] == cpus[j] + 1) j++;
        int wrote;
        if (j - i >= 2) wrote = snprintf(out + len, cap - len, "%s%d-%d", i ? "," : "", cpus[i], cpus[j]);
        else {
            j = i;
            wrote = snprintf(out + len, cap - len, "%s%d", i ? "," : "", cpus[i]);
        }
        if (wrote < 0 || (size_t)wrote >= cap - len) { /* truncated: mark it */
            if (cap > 4) memcpy(out + cap - 4, "...", 4);
            return;
        }
        len += (size_t)wrote;
        i = j + 1;
    }
}

static int read_sys_int(int cpu, const char *leaf, long *out) {
    char path[128];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/%s", cpu, leaf);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int ok = fscanf(f, "%ld", out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

/* One CPU per physical core among allowed[0..n): the first of each
 * (package, core) pair. If the topology is unreadable, every CPU. */
static int dedupe_cores(const int *allowed, int n, int *out) {
    long *pkg = malloc(sizeof(long) * (size_t)(n ? n : 1));
    long *core = malloc(sizeof(long) * (size_t)(n ? n : 1));
    int m = 0, ok = pkg && core;
    for (int i = 0; ok && i < n; i++)
        if (read_sys_int(allowed[i], "physical_package_id", &pkg[i]) || read_sys_int(allowed[i], "core_id", &core[i]))
            ok = 0;
    if (ok) {
        for (int i = 0; i < n; i++) {
            int dup = 0;
            for (int j = 0; j < i && !dup; j++) dup = pkg[j] == pkg[i] && core[j] == core[i];
            if (!dup) out[m++] = allowed[i];
        }
    } else {
        memcpy(out, allowed, sizeof(int) * (size_t)n);
        m = n;
    }
    free(pkg);
    free(core);
    return m;
}

static void pool_destroy(tp_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; p->w && i < p->n; i++)
        if (p->w[i].started) pthread_join(p->w[i].th, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->w);
    free(p->cpus);
    free(p);
}

int tp_create(tp_pool **out, int nthreads, const char *bind) {
    *out = NULL;
    const char *mode = bind && *bind ? bind : "auto";
    cpu_set_t set;
    CPU_ZERO(&set);
    if (tls_pin.count > 0 && tls_pin.saved_ok) set = tls_pin.saved;
    else if (sched_getaffinity(0, sizeof set, &set) != 0)
        return vc_errf(VC_EIO, "sched_getaffinity: %s", strerror(errno));
    int allowed[CPU_SETSIZE], nallowed = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set)) allowed[nallowed++] = c;
    if (nallowed == 0) allowed[nallowed++] = 0; /* cannot happen; be safe */

    /* [0, CPU_SETSIZE): ours; the rest: scratch for the other ranks' lists. A list
     * longer than CPU_SETSIZE must repeat or name an unusable CPU: an error anyway. */
    int *list = malloc(sizeof(int) * 2 * CPU_SETSIZE);
    if (!list) return vc_errf(VC_ENOMEM, "out of memory");
    int nlist = 0, pinned = 1, n;
    if (!strcmp(mode, "auto")) {
        nlist = dedupe_cores(allowed, nallowed, list);
    } else if (!strcmp(mode, "all")) {
        memcpy(list, allowed, sizeof(int) * (size_t)nallowed);
        nlist = nallowed;
    } else if (!strcmp(mode, "nobind")) {
        pinned = 0;
        nlist = nallowed;
    } else {
        /* "0-3|4-7": one list per rank; every one must parse, the first is ours. */
        const char *seg = mode;
        for (int first = 1;; first = 0) {
            const char *bar = strchr(seg, '|');
            long len = bar ? (long)(bar - seg) : (long)strlen(seg);
            int r = parse_cpulist_n(seg, len, mode, first ? list : list + CPU_SETSIZE, CPU_SETSIZE);
            if (r < 0) {
                free(list);
                return vc_err_prefix(r, "VLLM_CPU_OMP_THREADS_BIND");
            }
            if (first) nlist = r;
            if (!bar) break;
            seg = bar + 1;
        }
        for (int i = 0; i < nlist; i++) {
            if (list[i] >= CPU_SETSIZE || !CPU_ISSET(list[i], &set)) {
                char allowed_s[256];
                format_cpus(allowed_s, sizeof allowed_s, allowed, nallowed);
                int c = list[i];
                free(list);
                return vc_errf(VC_EINVAL,
                               "VLLM_CPU_OMP_THREADS_BIND: invalid CPU list \"%s\": CPU %d is not allowed "
                               "for this process (allowed: %s)",
                               mode, c, allowed_s);
            }
        }
        nthreads = 0; /* an explicit list fixes the count */
    }
    n = nthreads > 0 ? nthreads : nlist;
    if (n < 1) n = 1;

    tp_pool *p = aligned_alloc(64, (sizeof(tp_pool) + 63) / 64 * 64);
    if (!p) {
        free(list);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    memset(p, 0, sizeof *p);
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->nsleep, 0);
    atomic_init(&p->stop, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->n = n;
    p->pinned = pinned;
    /* Spinning only pays when every thread has a CPU of its own; oversubscribed
     * threads would spin away the time slice the others need. */
    p->spin_ns = n > nlist ? 0 : TP_SPIN_NS;
    p->w = calloc((size_t)n, sizeof(tp_worker));
    p->cpus = pinned ? malloc(sizeof(int) * (size_t)n) : NULL;
    if (!p->w || (pinned && !p->cpus)) {
        free(list);
        pool_destroy(p);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    for (int i = 0; pinned && i < n; i++) p->cpus[i] = list[i % nlist];
    free(list);

    char cpus_s[400];
    if (pinned) {
        format_cpus(cpus_s, sizeof cpus_s, p->cpus, n);
        snprintf(p->desc, sizeof p->desc, "%d thread%s pinned to CPU%s %s", n, n == 1 ? "" : "s",
                 n == 1 ? "" : "s", cpus_s);
    } else {
        snprintf(p->desc, sizeof p->desc, "%d thread%s unbound", n, n == 1 ? "" : "s");
    }

    for (int i = 1; i < n; i++) {
        tp_worker *w = &p->w[i];
        w->pool = p;
        w->ith = i;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        /* the kernels keep panels on the stack (MXFP4: 256 KiB): the main thread's 8 MiB for every
         * worker, where macOS gives secondary threads 512 KiB */
        pthread_attr_setstacksize(&attr, TP_STACK_BYTES);
        if (pinned) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(p->cpus[i], &one);
            pthread_attr_setaffinity_np(&attr, sizeof one, &one);
        }
        int rc = pthread_create(&w->th, &attr, worker_main, w);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            pool_destroy(p);
            return vc_errf(VC_EIO, "pthread_create: %s", strerror(rc));
        }
        w->started = 1;
    }
    *out = p;
    return VC_OK;
}

void tp_run(tp_pool *p, tp_fn fn, void *arg) {
    if (p->pinned && !p->caller_pinned) {
        p->caller = pthread_self();
        if (tls_pin.count++ == 0)
            tls_pin.saved_ok = pthread_getaffinity_np(p->caller, sizeof tls_pin.saved, &tls_pin.saved) == 0;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(p->cpus[0], &one);
        pthread_setaffinity_np(p->caller, sizeof one, &one);
        p->caller_pinned = 1;
    }
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: publishes fn/arg/pending */
    if (atomic_load(&p->nsleep) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    uint64_t t0 = 0;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return;
            cpu_relax();
        }
        uint64_t t = now_ns();
        if (!t0) t0 = t;
        else if (t - t0 > p->spin_ns) sched_yield(); /* a worker was descheduled */
    }
}

int tp_nthreads(const tp_pool *p) { return p->n; }

const char *tp_describe(const tp_pool *p) { return p->desc; }

void tp_free(tp_pool *p) {
    if (!p) return;
    if (p->caller_pinned && pthread_equal(p->caller, pthread_self()) && --tls_pin.count == 0 && tls_pin.saved_ok)
        pthread_setaffinity_np(p->caller, sizeof tls_pin.saved, &tls_pin.saved);
    pool_destroy(p);
}
