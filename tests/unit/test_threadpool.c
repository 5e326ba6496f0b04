/* test_threadpool: CPU list parsing, every VLLM_CPU_OMP_THREADS_BIND mode,
 * pinning, and many short tasks (the decode-step pattern) plus tasks separated
 * by sleeps (workers fall asleep and must be woken). */
#include "base/threadpool.h"
#include "base/err.h"
#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static void test_parse(void) {
    int c[64];
    CHECK(tp_parse_cpulist("0", c, 64) == 1 && c[0] == 0);
    CHECK(tp_parse_cpulist("0-3,6", c, 64) == 5 && c[0] == 0 && c[3] == 3 && c[4] == 6);
    CHECK(tp_parse_cpulist("5,1", c, 64) == 2 && c[0] == 5 && c[1] == 1);
    CHECK(tp_parse_cpulist("7-7", c, 64) == 1 && c[0] == 7);
    CHECK(tp_parse_cpulist("10-12,2,40-41", c, 64) == 6 && c[2] == 12 && c[3] == 2 && c[5] == 41);
    CHECK(tp_parse_cpulist("0-3", c, 4) == 4);
    static const char *bad[] = {"",     "a",    "1-",   "-1",  "3-1",  "1,,2",  "1,",       ",1",  "1 ,2",
                                " 1",   "1 ",   "0,0",  "0-2,1", "1-2-3", "99999999", "0x1", "1;2",  "+1",
                                "1|2",  "1-a",  "0-3,2-5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = tp_parse_cpulist(bad[i], c, 64);
        CHECK_MSG(r == VC_EINVAL, "\"%s\" -> %d", bad[i], r);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
        CHECK_MSG(strstr(vc_errmsg(), quoted) != NULL, "message for \"%s\": %s", bad[i], vc_errmsg());
    }
    CHECK(tp_parse_cpulist("0-4", c, 4) == VC_EINVAL); /* more than max */
    CHECK(tp_parse_cpulist(NULL, c, 4) == VC_EINVAL);
}

/* ---- tasks ---- */

typedef struct {
    atomic_long runs[64];   /* per ith */
    atomic_int bad_nth;
    int want_nth;
    long data[4096];        /* each thread fills its slice */
    int pinned_cpu[64];     /* the single CPU a thread may run on, -1 if several */
} task_state;

static void count_task(void *arg, int ith, int nth) {
    task_state *s = arg;
    if (nth != s->want_nth || ith < 0 || ith >= nth) atomic_fetch_add(&s->bad_nth, 1);
    else atomic_fetch_add_explicit(&s->runs[ith], 1, memory_order_relaxed);
}

static void fill_task(void *arg, int ith, int nth) {
    task_state *s = arg;
    int lo = 4096 * ith / nth, hi = 4096 * (ith + 1) / nth;
    for (int i = lo; i < hi; i++) s->data[i] += i;
}

static void affinity_task(void *arg, int ith, int nth) {
    task_state *s = arg;
    (void)nth;
    cpu_set_t set;
    CPU_ZERO(&set);
    s->pinned_cpu[ith] = -2;
    if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) != 0) return;
    s->pinned_cpu[ith] = -1;
    if (CPU_COUNT(&set) == 1)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set)) s->pinned_cpu[ith] = c;
}

static void check_pool(tp_pool *p, int runs, int sleepy) {
    static task_state s;
    memset(&s, 0, sizeof s);
    int n = tp_nthreads(p);
    s.want_nth = n;
    for (int i = 0; i < runs; i++) {
        tp_run(p, count_task, &s);
        if (sleepy && i % 10 == 0) usleep(2000); /* past the spin window: workers sleep */
    }
    for (int i = 0; i < 100; i++) tp_run(p, fill_task, &s);
    CHECK(atomic_load(&s.bad_nth) == 0);
    for (int i = 0; i < n && i < 64; i++) CHECK_MSG(atomic_load(&s.runs[i]) == runs, "thread %d ran %ld of %d", i,
                                                   (long)atomic_load(&s.runs[i]), runs);
    int bad = 0;
    for (int i = 0; i < 4096; i++) bad += s.data[i] != 100L * i;
    CHECK(bad == 0);
}

/* CPUs this thread may use, ascending */
static int allowed_cpus(int *cpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 1024; c++)
        if (CPU_ISSET(c, &set)) cpus[n++] = c;
    return n;
}

static void test_modes(void) {
    int allowed[1024];
    int nallowed = allowed_cpus(allowed);
    CHECK(nallowed >= 1);
    tp_pool *p;
    static task_state s;

    /* auto: pinned, one per core (<= allowed CPUs), distinct CPUs */
    const char *autos[] = {NULL, "auto", ""};
    for (int i = 0; i < 3; i++) {
        CHECK(tp_create(&p, 0, autos[i]) == 0);
        int n = tp_nthreads(p);
        CHECK(n >= 1 && n <= nallowed);
        CHECK(strstr(tp_describe(p), "pinned to CPU") != NULL);
        memset(&s, 0, sizeof s);
        tp_run(p, affinity_task, &s);
        for (int a = 0; a < n; a++) {
            CHECK(s.pinned_cpu[a] >= 0);
            for (int b = 0; b < a; b++) CHECK(s.pinned_cpu[a] != s.pinned_cpu[b]);
        }
        if (i == 0) printf("auto: %s\n", tp_describe(p));
        check_pool(p, 1000, 0);
        tp_free(p);
    }
    /* the caller's affinity is back after tp_free */
    int again[1024];
    CHECK(allowed_cpus(again) == nallowed);

    /* all: every allowed CPU, in order */
    CHECK(tp_create(&p, 0, "all") == 0);
    CHECK(tp_nthreads(p) == nallowed);
    memset(&s, 0, sizeof s);
    tp_run(p, affinity_task, &s);
    for (int a = 0; a < nallowed && a < 64; a++) CHECK(s.pinned_cpu[a] == allowed[a]);
    check_pool(p, 1000, 0);
    tp_free(p);

    /* nobind: count of allowed CPUs, not pinned */
    CHECK(tp_create(&p, 0, "nobind") == 0);
    CHECK(tp_nthreads(p) == nallowed);
    CHECK(strstr(tp_describe(p), "unbound") != NULL);
    memset(&s, 0, sizeof s);
    tp_run(p, affinity_task, &s);
    if (nallowed > 1)
        for (int a = 0; a < nallowed && a < 64; a++) CHECK(s.pinned_cpu[a] == -1);
    check_pool(p, 1000, 0);
    tp_free(p);

    /* nthreads overrides the count for auto/all/nobind */
    CHECK(tp_create(&p, 3, "nobind") == 0);
    CHECK(tp_nthreads(p) == 3);
    CHECK(strcmp(tp_describe(p), "3 threads unbound") == 0);
    check_pool(p, 1000, 0);
    tp_free(p);
    CHECK(tp_create(&p, 5, "all") == 0);
    CHECK(tp_nthreads(p) == 5);
    check_pool(p, 1000, 0);
    tp_free(p);
    CHECK(tp_create(&p, 1, NULL) == 0);
    CHECK(tp_nthreads(p) == 1);
    check_pool(p, 1000, 0);
    tp_free(p);

    /* explicit lists: the first allowed CPU, the last one first, and per-rank syntax */
    char list[64], want[96];
    snprintf(list, sizeof list, "%d", allowed[0]);
    CHECK(tp_create(&p, 4, list) == 0); /* nthreads ignored for a list */
    CHECK(tp_nthreads(p) == 1);
    snprintf(want, sizeof want, "1 thread pinned to CPU %d", allowed[0]);
    CHECK_MSG(strcmp(tp_describe(p), want) == 0, "%s", tp_describe(p));
    check_pool(p, 100, 0);
    tp_free(p);
    if (nallowed >= 2) {
        snprintf(list, sizeof list, "%d,%d|%d", allowed[nallowed - 1], allowed[0], allowed[0]);
        CHECK_MSG(tp_create(&p, 0, list) == 0, "%s", vc_errmsg());
        CHECK(tp_nthreads(p) == 2);
        snprintf(want, sizeof want, "2 threads pinned to CPUs %d,%d", allowed[nallowed - 1], allowed[0]);
        CHECK_MSG(strcmp(tp_describe(p), want) == 0, "%s", tp_describe(p));
        memset(&s, 0, sizeof s);
        tp_run(p, affinity_task, &s);
        CHECK(s.pinned_cpu[0] == allowed[nallowed - 1] && s.pinned_cpu[1] == allowed[0]);
        check_pool(p, 1000, 1);
        tp_free(p);
    }

    /* bad bind strings: VC_EINVAL and the string quoted */
    static const char *bad[] = {"0-", "abc", "0,0", "1023", "0|x", "|", "Auto", "0-1 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = (tp_pool *)1;
        int r = tp_create(&p, 0, bad[i]);
        CHECK_MSG(r == VC_EINVAL && p == NULL, "\"%s\" -> %d", bad[i], r);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
        CHECK_MSG(strstr(vc_errmsg(), quoted) != NULL, "message for \"%s\": %s", bad[i], vc_errmsg());
    }
}

static void test_many_tasks(void) {
    tp_pool *p;
    CHECK(tp_create(&p, 0, NULL) == 0);
    check_pool(p, 100000, 0); /* a decode step is hundreds of short tasks */
    check_pool(p, 300, 1);    /* with pauses: workers go to sleep and wake up */
    tp_free(p);
    /* more threads than CPUs (oversubscribed spinning must still finish) */
    CHECK(tp_create(&p, 4, "nobind") == 0);
    check_pool(p, 20000, 0);
    tp_free(p);
}

int main(void) {
    test_parse();
    test_modes();
    test_many_tasks();
    TEST_END();
}
