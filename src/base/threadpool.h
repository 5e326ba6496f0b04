/* threadpool: a fixed team of compute threads that run one parallel task at a time.
 *
 * tp_run() hands fn(arg, ith, nth) to every thread of the team (the caller is
 * thread 0) and returns when all have finished. Between tasks workers spin for
 * a short while before sleeping on a condition variable, because a decode step
 * is hundreds of short tasks and a futex wake-up per task would dominate.
 * One task at a time: tp_run() is not re-entrant and must be called from one
 * thread (the engine thread).
 *
 * Placement follows vLLM's VLLM_CPU_OMP_THREADS_BIND:
 *   "auto"    one thread per allowed core, pinned in order (the default)
 *   "all"     every allowed CPU, pinned
 *   "nobind"  as many threads as allowed CPUs, not pinned
 *   "0-3,6"   exactly these CPUs, one pinned thread each; "0-3|4-7" (vLLM's
 *             one-list-per-rank form) is accepted and the first list is used
 * "auto" counts one CPU per (physical_package_id, core_id) in sysfs, or every
 * allowed CPU if the topology is unreadable. nthreads > 0 overrides the count
 * for auto/all/nobind (pinned modes then reuse the CPUs round-robin); it is
 * ignored for an explicit list. Thread 0 (the caller) is pinned to the first
 * CPU on its first tp_run() and its old affinity is restored by tp_free(). */
#ifndef VLLMC_BASE_THREADPOOL_H
#define VLLMC_BASE_THREADPOOL_H

typedef struct tp_pool tp_pool;
typedef void (*tp_fn)(void *arg, int ith, int nth);

/* bind: a VLLM_CPU_OMP_THREADS_BIND value, or NULL for "auto".
 * A malformed bind string is VC_EINVAL with a message quoting it. */
int tp_create(tp_pool **out, int nthreads, const char *bind);
void tp_run(tp_pool *p, tp_fn fn, void *arg);
int tp_nthreads(const tp_pool *p);
/* Placement as text: "2 threads pinned to CPUs 0,1", "8 threads unbound". */
const char *tp_describe(const tp_pool *p);
void tp_free(tp_pool *p);

/* Parse a CPU list like "0-3,6" into cpus[] (at most max entries). Returns the
 * count, or VC_EINVAL. Exposed for tests. */
int tp_parse_cpulist(const char *s, int *cpus, int max);

#endif
